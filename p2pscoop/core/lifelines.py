"""Lifelines (Saraswat et al., "Lifeline-based global load balancing", PPoPP 2011): where
the surplus of a peer goes without being asked for, and how much a thief may take. A mixin
of ``NodeState`` (``node.py``): it reads and writes the same tables, kept apart for size.

A victim that denies a thief remembers it (``_hungry``). When the victim gets surplus (two
units or more: a submission, a GIVE, units back from a dead or silent holder), ``_hints``
serves every remembered thief at once, so an idle peer need not poll for work
(``policy.py`` lets it go quiet):

    surplus of ...        the remembered thief gets
    our own work          its share, pushed: a GIVE with request 0 (one message instead of
                          HINT, STEAL, GIVE); the surplus is split evenly between the
                          thieves and us, at least one unit each while we have two
                          (the origin, when its view does not reach every peer of its
                          program, splits it by host instead: ``_host_shares``)
    anything else         a HINT: it resets its backoff and asks us first (a third party's
                          units wait for a thief that asks: pushed to a thief that found
                          work meanwhile, they would only lengthen the chain they travel)

A lone unit is no surplus: its owner keeps it for itself (it is about to run it, often
work-first, in ``result()``). But an owner may never get to it soon: blocked outside our
scheduler (the stdlib's ``concurrent.futures.wait``), or busy in a long task. So when
thieves wait (``_hungry``) and the deque has not changed for ``stale_after`` (``_stale``,
seen at each tick: its size, its newest item's job and lowest unit; no unit started, none
queued), what is queued is surplus, even one unit: the thieves that could take any of
it (not only their own units, which go home from their lessor only) are served as above,
with nothing kept. Once per state of the deque: a thief denied again waits for its next
change. Without it a quiet thief (``policy.py``) waited ``quiet_wait`` for a lone submit.

Thieves we pushed work to are likely to come back soon (``_coming``); until they do, a
thief that asks takes an even share with them, not half (``_share``). Half is right for
one thief; with many, it leaves the first thief most of a flat map and the others only
what they take from it in turn, each a hop further from home (``chains.py``), and the map
waits on a few long queues and long chains. A hinted thief is not counted: it is hungry
at every victim that denied it, hears a HINT from each that gets surplus and takes work
from the first it asks, so counting it everywhere split each hinter's surplus between
thieves that mostly never came (the 32-peer map with the origin linked to 16 of them: the
16 others got 7-9 units each from peers holding 117, and stole again and again).

The steal exchange itself lives here too: ``_on_steal`` (the victim's side: what to give,
or a denial that remembers the thief, and in broker mode a pull: ``broker.py``), ``_grant``
(leasing what goes, asked for or pushed: our own units, or another owner's, which we then
answer for: ``chains.py``) and ``_on_give`` (the thief's side: a GIVE of map ranges is
queued oldest last, so that it runs first and the owner's ordered map, waiting for its
oldest results, gets them first; ``core/ranges.py`` sends them home a range at a time).

Granularity (``_cheap``, ``_holding``): the units of a map whose function's recent runs
here (``unit_lengths``, the scheduler's table) took less than ``StealConfig.ship_unit``
stay here while we run through them (one started within ``drain_window``, or results of
such a map of ours arrived or were consumed within it: ``_resolving``, ``consuming``:
working through its results is working through the map too, and work shipped meanwhile
only brings more results to resolve): pickling them
and their results and resolving them would cost us more than running them, so sharing a
map of no-ops slows it down whatever the thief does. Such work is no surplus then either: a
thief denied for it stays remembered (no HINT, no push), and is served as before as soon
as a unit that is not cheap starts here (``_drained``: it may be long). A peer that runs no
cheap unit (a long task, a program busy elsewhere) gives cheap work as before, so steals
answered during long tasks still get work. A lone ``submit`` always travels. Units of a
function not run here yet travel ``probe_units`` at most per GIVE (``_cap``: a map's first
steals come before its victim ran any of it); a suspect travels alone, as before.

A remembered thief that sends us work (a GIVE, asked for or pushed) has surplus now:
our next surplus sends it a HINT, not a share (``_fed_us``, until it asks again). A push
went to a peer busy with work of its own: a nested fib's worker, denied at the origin's
end of one run, pushed half of its first subtree of the next run back to the busy
origin, a parent on one peer waiting for its child on the other at the top of the tree;
the run's end then waited for one more hop of results each way. It is not forgotten
either: a GIVE that reached it while its request to us was on the way reset its rounds
before our denial ended them again, and forgotten here, it waited ``quiet_wait`` with
nobody to hint it (the same worker sat out whole runs so); hinted, it asks again.

Invariants: a thief is remembered until it is served (pushed or hinted) or gone; pushed
units are leased exactly as stolen ones (``_grant``), so the lease and fault rules
(``leases.py``) hold for them unchanged; nothing is pushed by a leaving node.
"""

from __future__ import annotations

from collections import Counter
from itertools import islice
from types import MappingProxyType
from typing import Any, Mapping

from . import task as T
from .commands import SendMsg, ShipWorks, Wake
from .messages import Give, Hint, Steal


#: ``_cap`` looks at this many queued items at most (a flat loop of submits queues many)
SCAN = 256


class LifelineMixin:
    """The lifeline half of ``NodeState``: ``_hints`` and ``_share``."""

    peers: list
    deque: Any
    counters: Any
    config: Any
    me: bytes
    leaving: bool
    _hungry: dict
    _coming: dict
    is_origin: bool  # (``origin.py``)
    jobs: dict
    suspects: Any
    #: id(function) -> its recent run length here, seconds (the scheduler's table, set
    #: by the runtime; empty in the core's tests: every unit is worth shipping)
    unit_lengths: Mapping[int, float] = MappingProxyType({})
    #: when a unit too cheap to ship last started here (``_drained``)
    _cheap_at: float = float("-inf")
    #: thieves are remembered while cheap work was kept from them (``_drained``)
    _kept_back: bool = False
    #: the deque as ``_stale_at`` last saw it with thieves waiting (size, newest item's
    #: owner, job and lowest unit), since when, and whether they were served in that state
    _seen: tuple | None = None
    _seen_at: float = 0.0
    _seen_served: bool = False

    def _cheap(self, work: Any) -> bool:
        """Are ``work``'s units a map's (not a lone submit) whose function ran faster
        here than ``ship_unit``?"""
        length = self.unit_lengths.get(id(work.fn))
        items = work.items  # (None for a work that could not be decoded: ``payload.py``)
        return (length is not None and length < self.config.ship_unit and items is not None
                and len(items) > 1)

    def _holding(self, now: float | None) -> bool:
        """Do cheap units stay here now? Only while we run through them: one started
        within ``drain_window`` (a peer in a long task, or whose program does not wait
        for its futures, gives them as before)."""
        return now is not None and now - self._cheap_at < self.config.drain_window

    def _drained(self, work: Any, now: float) -> list:
        """A unit of ``work`` starts here (``_on_Pop``). A cheap one: we are running
        through cheap work (``_holding``). Another while thieves wait that were denied
        cheap work: it may be long, so they are served now, as without the rule."""
        if not self.unit_lengths:
            return []
        if self._cheap(work):
            self._cheap_at = now
            return []
        if self._kept_back and self._hungry and self.deque.total >= 2:
            return self._hints()
        return []

    def _resolving(self, job: int, now: float) -> None:
        """Results of our own ``job`` arrived from a thief (``chains.py``). A cheap map's:
        resolving them is running through it (``_holding``): while the owner is busy with
        its map's results, its cheap units stay, rather than go out and come back as more
        results to resolve (the no-op map's runs that shipped thousands of units)."""
        rec = self.jobs.get(job)
        if rec is not None and self.unit_lengths and len(rec.items) > 1:
            length = self.unit_lengths.get(id(rec.fn))
            if length is not None and length < self.config.ship_unit:
                self._cheap_at = now

    def consuming(self, fn: Any, now: float) -> None:
        """The program issues or consumes a map of ``fn`` (``futures.map``: each chunk it
        queues, every ``MAP_CHUNK`` results it reads): of a cheap one, that is running
        through it too (``_holding``). Otherwise its units, queued while the program
        queues the rest or reads the results run before them, would leave the moment
        the program is slower than ``drain_window``, half of them at a time, and come
        back as results to resolve."""
        length = self.unit_lengths.get(id(fn))
        if length is not None and length < self.config.ship_unit:
            self._cheap_at = now

    def _cap(self, eligible: Any, units: int, parts: int = 2, holding: bool = False) -> int:
        """At most ``units``; at most ``probe_units`` if the oldest item a steal with
        ``eligible`` would take is of a function not run here yet; and, ``holding`` cheap
        units back, at most a ``parts``-th of those that may go (the steal's half, or a
        push's even share, counts what may travel, not what stays). Looks at ``SCAN``
        items at most: the rest counts as eligible."""
        lengths = self.unit_lengths
        if not lengths:
            return units
        first, may, seen = None, 0, 0
        for n, work in enumerate(self.deque):
            if n == SCAN:
                may += self.deque.total - seen
                break
            if work.cancelled or work.lo >= work.hi:
                continue
            seen += work.hi - work.lo
            if work.stealable and eligible(work):
                may += work.hi - work.lo
                if first is None:
                    first = work
                    if not holding:
                        break
        if first is not None and id(first.fn) not in lengths:
            units = min(units, self.config.probe_units)
        if holding and may < self.deque.total:
            units = min(units, max(1, -(-may // parts)))
        return units

    def _hints(self, now: float | None = None, keep: int = 1) -> list:
        """Lifelines: we have surplus, and the thieves in ``_hungry`` asked us for work and
        got none. Each gets a HINT (it resets its backoff and asks us first), or, for work
        we own, its share at once (a GIVE with request 0: one message instead of HINT,
        STEAL, GIVE): our surplus split evenly between them and us, at least one unit while
        we have two. Only our own work is pushed: a thief may have found work since it
        asked, and a third party's units pushed to it would wait there, one hop further
        from home, so those wait for a thief that asks (``_share``). While we run
        through cheap units (``_holding(now)``), they are no surplus."""
        # What a hinted thief could take: our spare units (we keep ``keep``: one, except
        # for the broker's pull, fetched for the thief alone) and the suspects (each
        # travels alone). A hint beyond that brings a STEAL that must be denied and
        # puts the thief back on our lifeline; it stays there instead, unhinted.
        holding, cheap = self._holding(now), self._cheap
        if holding and not any(w.stealable and not w.cancelled and w.lo < w.hi
                               and not cheap(w) for w in self.deque):
            self._kept_back = True  # only cheap work: they stay remembered (``_drained``)
            return []
        self._kept_back = False
        budget = max(self._spare(holding) - keep, 0) + len(self.suspects)
        if budget <= 0:
            return []
        # (a link our trim closed in this very tick is still in ``peers`` until its turn
        # in ``NodeState._membership``: pushed to, its peer would re-open it, past our bound)
        peers, closing = self.peers, self.members.pruned
        hungry = [p for p in self._hungry if p in peers and not closing(p)]
        self._hungry.clear()
        pinned = self._past_view() if hungry else None
        if pinned is not None:  # past the view bound: no new lease link (``chains.py``);
            # the others stay remembered for our next surplus (forgotten here, they were
            # the origin's only way out: its quiet links do not ask it again soon)
            self._hungry.update((p, None) for p in hungry if p not in pinned)
            hungry = [p for p in hungry if p in pinned]
        out: list = []
        me = self.me
        eligible = lambda w: w.owner == me and not (holding and cheap(w))  # noqa: E731
        own = not self.leaving and any(eligible(w) for w in self.deque)
        fed = self._fed_us
        shares = self._host_shares(hungry) if own and len(hungry) > 1 else None
        for i, thief in enumerate(hungry):
            works: list = []
            if own and self.deque.total >= 2 and thief not in fed:
                share = max(1, self.deque.total // (len(hungry) - i + 1) if shares is None
                            else shares[i])
                cap = self._cap(eligible, min(share, self.config.max_units),
                                len(hungry) - i + 1, holding)
                works = self.deque.steal(eligible, self.config.max_items, cap)
                if shares is not None:  # a host's share may be more than half of ours
                    works += self._rest(eligible, cap - sum(w.units for w in works),
                                        self.config.max_items - len(works))
                works = [part for work in works for part in self._live_parts(work)]
            if works:
                self.counters.pushes += 1
                budget -= sum(w.units for w in works)
                out += self._grant(thief, 0, works)
            elif budget > 0:
                budget -= 1
                out.append(SendMsg(thief, Hint(self.deque.total)))
                continue  # hinted, not coming for sure (``_share``)
            else:  # nothing left for it: remembered for our next surplus
                self._hungry.update(dict.fromkeys(hungry[i:]))
                break
            self._coming[thief] = None
        for thief in [t for t in fed if t not in self._hungry]:
            del fed[thief]  # hinted (or gone): a mark lasts while its thief is remembered
        return out

    def _stale_at(self, now: float) -> float | None:
        """When what is queued here counts as surplus (module docstring: ``stale_after``
        after the deque was last seen to change while thieves wait), or None. Looks at the
        deque: call it where the node's deadlines are read (``next_tick``) and at ticks."""
        deque = self.deque
        if not self._hungry or not deque.total or self.leaving:
            self._seen = None
            return None
        top = deque.peek()  # (no ``id(top)``: a unit queued after another left reuses it)
        seen = (deque.total, top.owner, top.job, top.lo) if top is not None else None
        if seen != self._seen:
            self._seen, self._seen_at, self._seen_served = seen, now, False
        return None if self._seen_served else self._seen_at + self.config.stale_after

    def _stale(self, now: float) -> list:
        """A tick: if what is queued has been left alone for ``stale_after`` while thieves
        wait, serve the thieves that could take any of it, keeping nothing back."""
        due = self._stale_at(now)
        if due is None or now < due:
            return []
        self._seen_served = True
        works = [w for w in islice(self.deque, SCAN)
                 if w.stealable and not w.cancelled and w.lo < w.hi]
        hungry = self._hungry
        able = {t: None for t in hungry
                if any(w.owner != t or w.lessor == t for w in works)}
        if not able:
            return []
        rest = [t for t in hungry if t not in able]
        self._hungry = able
        out = self._hints(now, keep=0)
        self._hungry.update(dict.fromkeys(rest))
        return out

    def tick_soon(self) -> bool:
        """Must the comm thread read ``next_tick`` again now (after a submit from the main
        thread)? Thieves wait and work is queued: ``_stale_at`` may be due soon."""
        return bool(self._hungry) and self.deque.total > 0

    def _next_victim(self, now: float) -> list:
        """A denial: a starved peer (its scheduler idle since its last ``Pop``, nothing
        queued, no request pending) asks its next victim at once, on the thread that read
        the denial; only when the policy asks nobody now (the round is over: a backoff or
        quiet) is the scheduler woken, to compute its wait. Waking it to ask cost a round
        trip between the threads per denial: two more wake-ups (the scheduler, then the
        comm thread for its post) and a GIL hand-off, at the map's end for every peer at
        once. A peer that still runs a unit (a denied early ask) just wakes its
        scheduler, which asks again only once idle (``NodeState.ask_early``)."""
        if self.starved and self._steal is None and not self.deque.total:
            out = self._ask(now)
            if out:
                return out
        return [Wake()]  # the scheduler may ask another victim or compute its backoff

    def _rest(self, eligible: Any, units: int, items: int) -> list:
        """Up to ``units`` more eligible units (``deque.steal`` takes half at most)."""
        out: list = []
        while units > 0 and items > 0 and self.deque.total >= 2:
            more = self.deque.steal(eligible, items, units)
            if not more:
                break
            out += more
            units -= sum(w.units for w in more)
            items -= len(more)
        return out

    def _host_shares(self, hungry: list) -> list | None:
        """The origin's pushes when its view does not reach every peer of its program: a
        hungry link's share is for itself and for the peers of its host that none of our
        links is (they steal from their host mates first: ``policy.py``), i.e. our units x
        (the program's peers on its host / our links there) / (that summed over the hungry
        links, plus one: ours). The origin knows its program's peers and their
        hosts (``roster.py``). Even shares sent each host work in proportion to our links
        there, not to its peers: an origin linked to its 9 host mates and to 2 peers of a
        host of 10 sent 9/17 of a map to its own host and 2/17 to that one, which then
        spread it by halves, share after share (the 32-peer simulator with constant units:
        1.07x ideal, 1.04x with these shares). None (even shares) for any other peer, or
        when every peer is linked to us."""
        if not self.is_origin or not self.roster:
            return None
        on_host = Counter(row[1] for row in self.roster.values())
        if sum(on_host.values()) <= len(self.peers):
            return None
        host_of = self.members.host_of
        links = Counter(host_of(p) for p in self.peers)  # (busy links feed their host too)
        weights = [on_host.get(host_of(t), 0) / max(links[host_of(t)], 1) or 1.0
                   for t in hungry]
        total, whole = self.deque.total, 1.0 + sum(weights)
        return [int(total * w / whole) for w in weights]

    def _spare(self, holding: bool = False) -> int:
        """Units a thief could take from us: stealable, not cancelled, and, while we run
        through cheap units (``holding``), not cheap. A hint for more than that would send
        a remembered thief a STEAL that must be denied and put it back on our lifeline:
        three messages for nothing, per thief and per surplus."""
        cheap = self._cheap
        return sum(w.units for w in self.deque if w.stealable and not w.cancelled
                   and not (holding and cheap(w)))

    def _share(self, thief: bytes) -> int:
        """How many units ``thief`` may take: half of ours (classic work stealing), but
        when other thieves we fed are likely to come back, an equal share with each of
        them and us. Half would leave the first thief most of the work and the others only
        what they take from it in turn, a hop further from home each time: the flat map
        of a large cluster would wait on a few peers' long queues and long chains."""
        coming = self._coming
        coming.pop(thief, None)
        if not coming:
            return self.config.max_units
        if not self.deque.total:
            coming.clear()
            return self.config.max_units
        peers = self.peers
        others = sum(1 for p in coming if p in peers)
        return min(self.config.max_units, max(1, -(-self.deque.total // (others + 2))))

    def _on_steal(self, thief: bytes, msg: Steal, works: list, now: float) -> list:
        self._fed_us.pop(thief, None)  # (it asks: hungry again, if we deny it)
        if self.leaving:
            return []  # no lease for a peer that will not be there to answer for it
        pinned = self._past_view()
        if pinned is not None and thief not in pinned:
            # a link past our view bound, which the next trim closes: no lease over it
            # (remembered: if the trim keeps it, our next surplus goes to it)
            self.counters.steals_denied += 1
            self._hungry[thief] = None
            return [SendMsg(thief, Give(msg.req, []))]
        suspect = self._next_suspect(thief)
        if suspect is not None:
            # A unit whose holder died travels alone, so that a second death is blamed on
            # that unit only (a poison task is isolated, innocent units are not).
            works = [suspect]
        else:
            # anything, except the thief's own units that reached us along a chain: those
            # go home only from the peer their owner leased them to (``chains.py``); while
            # we run through cheap units, those stay (module docstring), but never its own
            holding, cheap = self._holding(now), self._cheap
            if holding:
                eligible = lambda w: (w.lessor == thief if w.owner == thief  # noqa: E731
                                      else not cheap(w))
            else:
                eligible = lambda w: w.owner != thief or w.lessor == thief  # noqa: E731
            works = self.deque.steal(eligible, self.config.max_items,
                                     self._cap(eligible, self._share(thief), 2, holding))
            works = [part for work in works for part in self._live_parts(work)]
            if not works and holding and self.deque.total:
                self._kept_back = True
        if not works:
            self.counters.steals_denied += 1
            self._hungry[thief] = None
            return [SendMsg(thief, Give(msg.req, [])), *self.pull_for(thief, now)]
        self.counters.steals_granted += 1
        self._hungry.pop(thief, None)  # served: no push to it on our next surplus
        return self._grant(thief, msg.req, works)

    def _grant(self, thief: bytes, req: int, works: list) -> list:
        """Lease ``works`` to ``thief`` (GIVE ``req``; 0: pushed, not asked for)."""
        me = self.me
        out: list = self._consts_for(thief)
        out.append(ShipWorks(thief, req, works, self.deque.total))
        for work in works:
            self.counters.units_given += work.units
            if work.owner == me:
                self._set_range(work, T.LEASE, thief)
            elif work.owner != thief and work.lessor != thief:  # we answer for it
                self._lease_on(thief, work)
            else:  # back to the peer that leased it to us
                self._going_home(work, thief)
        return out

    def _on_give(self, victim: bytes, msg: Give, works: list, now: float) -> list:
        if msg.works and victim not in self.peers:
            # pushed on a link we were closing: re-open it, the results go back there
            members = self.members
            return (members.bootstrap(victim, members.address_of(victim), now) +
                    self._take_given(victim, msg, works, now))
        return self._take_given(victim, msg, works, now)

    def _take_given(self, victim: bytes, msg: Give, works: list, now: float) -> list:
        if self._pull is not None and self.pulled(victim, msg.req):
            # the coordinator's pull (core/broker.py): queue it, tell the hungry at once
            out = self._take_works(victim, works, msg.suspects) if msg.works else []
            if msg.works and self._hungry and self.deque.total < 2:
                out.extend(self._hints(keep=0))
            return out
        if self._steal is not None and self._steal[1] == msg.req:
            self.steal_rtts.append(now - self._steal[2])
            self._steal = None
        if not msg.works:
            self.counters.steals_failed += 1
            self.policy.on_denied(victim)
            return self._next_victim(now)
        me = self.me
        if victim in self._hungry:  # it has surplus now: hinted, not pushed to (docstring)
            self._fed_us[victim] = None
        self.policy.on_success(victim, next((w.owner for w in works if w.owner != me), None))
        self.policy.on_load(victim, msg.left)
        if len(works) > 1 and all(w.hi - w.lo > 1 and w.owner != me for w in works):
            # ranges of maps: the oldest runs first (queued last), so the owner's ordered
            # map gets its next results first and consumes them while we run the rest
            works = works[::-1]
        return self._take_works(victim, works, msg.suspects)
