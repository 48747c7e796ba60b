"""NodeState (core/node.py): feed events, assert the exact list of commands that comes back.

The shape follows dask's ``test_worker_state_machine``: each test builds a node, feeds it
stimuli one at a time with an explicit ``now``, and compares the whole command list.
``Like(cls, field=value)`` matches a command partially, for fields that are noise (work
objects, payload bytes); ``rng`` is a seeded ``random.Random``; no sockets, no sleeps.
"""

import random
from collections import Counter

import pytest

from p2pscoop.core import task as T
from p2pscoop.core.deque import Work
from p2pscoop.core.errors import LocalProtocolError, TaskLostError
from p2pscoop.core.messages import FAILED, OK, RAISED, Const, Encoded, Give, Hint, Results, Steal
from p2pscoop.core.node import (Cancel, Cancelled, Finished, Idle, NodeState, PeerDown, PeerUp,
                                Pop, Received, Resolve, Run, SendMsg, ShipResults, ShipWorks,
                                Submit, Tick, Unshippable, Wake)
from p2pscoop.core.commands import ConstAnswer
from p2pscoop.core.policy import StealConfig

ME = b"M" * 16
P1 = b"1" * 16
P2 = b"2" * 16
P3 = b"3" * 16


class Like:
    """Partial match of a command: its type, and only the fields given."""

    def __init__(self, cls, **fields):
        self.cls = cls
        self.fields = fields

    def __eq__(self, other):
        return type(other) is self.cls and all(
            getattr(other, k) == v for k, v in self.fields.items())

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.fields.items())
        return f"Like({self.cls.__name__}, {args})"


def spans(works):
    """``[(owner initial, job, lo, hi)]`` of a list of work items."""
    return [(w.owner[:1], w.job, w.lo, w.hi) for w in works]


def make_node(*peers, me=ME, seed=0, **config):
    n = NodeState(me, StealConfig(**config), random.Random(seed))
    for p in peers:
        assert n.handle(PeerUp(p), 0.0) == [Wake()]
    return n


def submit(n, count, fn=abs, now=0.0):
    work = n.new_job(fn, [(i,) for i in range(count)])
    n.handle(Submit(work), now)
    return work


def foreign(owner, job, lo, hi):
    return Work(owner, job, lo, hi, abs, [(i,) for i in range(lo, hi)], lo)


def give(victim_node_works, req):
    rows = [[w.owner, w.job, w.lo, w.hi, True] for w in victim_node_works]
    return Give(req, rows, payloads=[b"w"] * len(rows))


def receive(n, victim, works, req=0, now=0.0):
    """Feed ``n`` a Give from ``victim`` carrying ``works`` (all with payloads)."""
    return n.handle(Received(victim, give(works, req), works), now)


def results(*entries, owner=ME):
    """A RESULTS message of ``(job, index, status)`` entries of units ``owner`` owns."""
    return Results([[owner, *e] for e in entries],
                   payloads=[b"r%d" % i for i in range(len(entries))])


def states(n, job):
    return dict(sorted(n.jobs[job].states.items())) if job in n.jobs else {}


# -- the local path ---------------------------------------------------------------------

def test_submit_wakes_the_scheduler():
    n = make_node()
    work = n.new_job(abs, [(1,)])
    assert n.handle(Submit(work), 0.0) == [Wake()]
    assert n.deque.total == 1 and n.unit_state(0, 0) == T.PENDING


def test_pop_runs_newest_job_lowest_unit():
    n = make_node()
    a = submit(n, 2)
    b = submit(n, 2)
    assert n.handle(Pop(), 0.0) == [Run(b, 0)]
    assert n.handle(Pop(), 0.0) == [Run(b, 1)]
    assert n.handle(Pop(), 0.0) == [Run(a, 0)]
    assert n.unit_state(a.job, 0) == T.RUNNING and n.unit_state(a.job, 1) == T.PENDING
    assert n.handle(Pop(), 0.0) == [Run(a, 1)]
    assert n.handle(Pop(), 0.0) == []


def test_finished_local_unit_resolves_it_unencoded():
    n = make_node()
    w = submit(n, 2)
    n.handle(Pop(), 0.0)
    assert n.handle(Finished(ME, w.job, 0, OK, 42), 0.0) == [Resolve(w.job, 0, OK, 42, False)]
    n.handle(Pop(), 0.0)
    err = ValueError("x")
    assert n.handle(Finished(ME, w.job, 1, RAISED, err), 0.0) == [
        Resolve(w.job, 1, RAISED, err, False)]
    assert w.job not in n.jobs  # the record goes once every unit is resolved
    assert n.unit_state(w.job, 0) == T.DONE
    # a second Finished for a resolved unit is a counted duplicate
    assert n.handle(Finished(ME, w.job, 1, OK, 0), 0.0) == []
    assert n.counters.duplicates == 1


def test_finished_on_a_leased_unit_is_a_local_protocol_error():
    n = make_node(P1)
    w = submit(n, 1)
    n.handle(Received(P1, Steal(1)), 0.0)
    with pytest.raises(LocalProtocolError, match="LEASED"):
        n.handle(Finished(ME, w.job, 0, OK, 1), 0.0)


# -- the victim side of a steal ---------------------------------------------------------

def test_steal_request_from_a_peer_with_work_ships_half_and_leases_it():
    n = make_node(P1)
    w = submit(n, 10)
    cmds = n.handle(Received(P1, Steal(7)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P1, req=7)]
    assert spans(cmds[0].works) == [(b"M", 0, 5, 10)]
    assert states(n, w.job) == {**dict.fromkeys(range(5), T.PENDING),
                                **dict.fromkeys(range(5, 10), T.LEASED)}
    assert n.jobs[w.job].holders == dict.fromkeys(range(5, 10), P1)
    assert (n.counters.steals_granted, n.counters.units_given) == (1, 5)
    assert n.deque.total == 5


def test_steal_request_when_empty_is_denied_then_fed_when_work_comes():
    n = make_node(P1, P2)
    assert n.handle(Received(P1, Steal(3)), 0.0) == [SendMsg(P1, Give(3, []))]
    assert n.counters.steals_denied == 1
    # one new unit is not worth sharing (we would give away our only unit)...
    assert n.handle(Submit(n.new_job(abs, [(0,)])), 0.0) == [Wake()]
    # ...two are: the hungry thief gets its share pushed (a GIVE it did not ask for), once
    out = n.handle(Submit(n.new_job(abs, [(0,)])), 0.0)
    assert out == [Wake(), Like(ShipWorks, peer=P1, req=0)]
    assert [(w.job, w.lo, w.hi) for w in out[1].works] == [(0, 0, 1)]  # the oldest unit
    assert n.unit_state(0, 0) == T.LEASED and n.jobs[0].holders == {0: P1}
    assert n.counters.pushes == 1 and n.deque.total == 1
    assert n.handle(Submit(n.new_job(abs, [(0,)])), 0.0) == [Wake()]


def test_surplus_is_split_evenly_between_the_hungry_thieves_and_us():
    n = make_node(P1, P2, P3)
    for req, thief in enumerate((P1, P2, P3)):
        n.handle(Received(thief, Steal(req)), 0.0)  # all denied: on our lifeline
    out = n.handle(Submit(n.new_job(abs, [(i,) for i in range(8)])), 0.0)
    pushed = {c.peer: sum(w.units for w in c.works) for c in out if type(c) is ShipWorks}
    assert pushed == {P1: 2, P2: 2, P3: 2} and n.deque.total == 2
    # later thieves we fed get a fair share, not half: the others are likely to come back
    n.handle(Submit(n.new_job(abs, [(i,) for i in range(6)])), 0.0)  # 8 units here now
    out = n.handle(Received(P1, Steal(9)), 0.0)
    assert sum(w.units for w in out[-1].works) == 8 // 4  # P2, P3, P1 and us
    out = n.handle(Received(P2, Steal(9)), 0.0)
    assert sum(w.units for w in out[-1].works) == 6 // 3  # P3, P2 and us
    out = n.handle(Received(P3, Steal(9)), 0.0)
    assert sum(w.units for w in out[-1].works) == 2  # (4 + 1) // 2: half, as usual


def test_a_thief_left_without_a_share_stays_on_the_lifeline():
    n = make_node(P1, P2)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(Received(P2, Steal(1)), 0.0)
    out = n.handle(Submit(n.new_job(abs, [(0,), (1,)])), 0.0)
    assert out[:2] == [Wake(), Like(ShipWorks, peer=P1, req=0)] and n.deque.total == 1
    # one unit left, ours: a hint would only bring a STEAL to deny; P2 waits for more
    assert out[2:] == [] and list(n._hungry) == [P2]
    out = n.handle(Submit(n.new_job(abs, [(2,), (3,)])), 0.0)
    assert Like(ShipWorks, peer=P2, req=0) in out and not n._hungry


def test_a_suspect_alone_is_still_hinted_to_a_hungry_thief():
    n = make_node(P1, P2)
    n._hungry[P2] = None
    n.suspects.append((7, 0))  # a unit whose holder died; nothing else here
    assert n._hints() == [SendMsg(P2, Hint())] and not n._hungry


def test_surplus_passed_on_along_a_chain_is_hinted_but_pinned_work_is_not():
    n = make_node(P1, P2, P3)
    n._hungry[P3] = None
    pinned = Work(P2, 8, 0, 3, abs, [(0,), (1,), (2,)], stealable=False)
    n.deque.push(pinned)
    assert n._hints() == [] and P3 in n._hungry  # a hint would bring a STEAL to deny
    work = Work(P2, 7, 0, 3, abs, [(0,), (1,), (2,)])
    work.lessor = P1  # P1 passed P2's units on to us: we may pass them on (chains.py)
    n.deque.push(work)
    assert n._hints() == [SendMsg(P3, Hint(6))] and not n._hungry


def test_only_our_own_work_is_pushed_a_third_partys_is_hinted():
    n = make_node(P1, P2, P3)
    n.handle(Received(P3, Steal(1)), 0.0)
    # work of P2 that P2 gave us: P3 may take it, but only by asking (it may have found
    # work meanwhile, and what we pass on can go nowhere but home)
    assert receive(n, P2, [foreign(P2, 5, 0, 4)]) == [Wake(), SendMsg(P3, Hint(4))]
    assert n.counters.pushes == 0 and n.deque.total == 4


def test_a_pushed_give_is_work_like_any_other_and_its_giver_is_asked_first():
    n = make_node(P1, P2, P3, seed=3)
    w = foreign(P2, 0, 0, 4)
    assert n.handle(Received(P2, give([w], 0), [w]), 0.0) == [Wake()]
    assert n.deque.total == 4 and not n.stealing and not n.steal_rtts
    while n.deque.total:
        n.handle(Pop(), 0.0)
    assert n.handle(Idle(), 0.0) == [SendMsg(P2, Steal(1))]  # the last giver first
    out = n.handle(Received(P2, Give(1, [])), 0.0)  # then random ones (asked at once:
    assert out[0].peer in (P1, P3)                  # ``LifelineMixin._next_victim``)


def test_a_thief_that_gave_us_work_since_it_asked_is_hinted_not_pushed_to():
    # P1 asked us and was denied (remembered: our next surplus goes to it); then P1 sends
    # us work (a push at the start of its next fork-join): it has surplus, so our
    # children stay here; it is hinted, not forgotten (it may be quiet: a GIVE that
    # crossed our denial reset its rounds before the denial ended them)
    n = make_node(P1)
    assert n.handle(Received(P1, Steal(1)), 0.0) == [SendMsg(P1, Give(1, []))]
    w = foreign(P1, 0, 0, 1)
    assert receive(n, P1, [w]) == [Wake()] and list(n._hungry) == [P1]
    assert n.handle(Pop(), 0.0) == [Run(w, 0)]
    assert n.handle(Submit(n.new_job(abs, [(0,)])), 0.0) == [Wake()]
    assert n.handle(Submit(n.new_job(abs, [(1,)])), 0.0) == [Wake(), SendMsg(P1, Hint(2))]
    assert n.deque.total == 2 and n.counters.pushes == 0 and not n._hungry
    assert not n._fed_us  # (hinted: the mark goes with the memory of the thief)
    # asking again, it is a thief like any other: served, or denied and remembered,
    # and then pushed our next surplus
    assert n.handle(Received(P1, Steal(2)), 0.0) == [Like(ShipWorks, peer=P1, req=2)]
    n.handle(Pop(), 0.0)
    assert n.handle(Received(P1, Steal(3)), 0.0) == [SendMsg(P1, Give(3, []))]
    out = n.handle(Submit(n.new_job(abs, [(2,), (3,)])), 0.0)
    assert Like(ShipWorks, peer=P1, req=0) in out and n.counters.pushes == 1


def test_no_hint_to_a_hungry_thief_that_left():
    n = make_node(P1)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(PeerDown(P1), 0.0)
    assert n.handle(Submit(n.new_job(abs, [(0,), (1,)])), 0.0) == [Wake()]


def test_third_party_work_is_leased_on_and_answered_for_here():
    n = make_node(P1, P2)
    # we hold work of P2 (stolen from P2 earlier): a third thief may split it again; we
    # lease it on ourselves (no message to its owner) and keep it until its result is back
    receive(n, P2, [foreign(P2, 4, 0, 6)])
    cmds = n.handle(Received(P1, Steal(1)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P1, req=1)]
    assert spans(cmds[0].works) == [(b"2", 4, 3, 6)]
    rel = n.relays[(P2, 4)]
    assert rel.holders == dict.fromkeys(range(3, 6), P1)
    assert rel.lessors == dict.fromkeys(range(3, 6), (P2,)) and set(rel.works) == {3, 4, 5}
    # and P2, its owner, may take the rest back: it leased it to us itself
    cmds = n.handle(Received(P2, Steal(2)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P2, req=2)]
    assert spans(cmds[0].works) == [(b"2", 4, 1, 3)]
    assert set(n.relays[(P2, 4)].lessors) == {3, 4, 5}  # only what P1 holds is owed


def test_steal_takes_the_oldest_half_whoever_owns_it():
    n = make_node(P1, P2)
    receive(n, P1, [foreign(P1, 0, 0, 2)])  # oldest: P1's own (goes back without payload)
    receive(n, P2, [foreign(P2, 0, 0, 2)])  # P2's: leased on, answered for here
    w = submit(n, 4)
    cmds = n.handle(Received(P1, Steal(5)), 0.0)
    assert spans(cmds[0].works) == [(b"1", 0, 0, 2), (b"2", 0, 0, 2)]
    assert cmds[1:] == [] and n.relays[(P2, 0)].holders == {0: P1, 1: P1}
    assert states(n, w.job) == dict.fromkeys(range(4), T.PENDING)
    assert spans(n.deque) == [(b"M", w.job, 0, 4)]


def test_steal_respects_max_items_and_max_units():
    n = make_node(P1, max_items=2, max_units=3)
    for _ in range(4):
        submit(n, 1)
    cmds = n.handle(Received(P1, Steal(1)), 0.0)
    assert spans(cmds[0].works) == [(b"M", 0, 0, 1), (b"M", 1, 0, 1)]
    n2 = make_node(P1, max_units=3)
    submit(n2, 100)
    assert spans(n2.handle(Received(P1, Steal(1)), 0.0)[0].works) == [(b"M", 0, 97, 100)]


def test_messages_from_unknown_peers_are_dropped_and_counted():
    n = make_node(P1)
    submit(n, 4)
    assert n.handle(Received(P3, Steal(1)), 0.0) == []
    assert n.handle(Received(P3, results((0, 0, OK))), 0.0) == []
    assert n.counters.bad_messages == 2
    assert n.deque.total == 4


def test_every_message_type_has_exactly_one_handler():
    from p2pscoop.core import messages as M
    from p2pscoop.core.membership import Membership
    from p2pscoop.core.node import NodeState
    from p2pscoop.launch import node as supervisor
    node, members = set(NodeState.HANDLERS), set(Membership.HANDLERS)
    agent, answers = set(supervisor.HANDLERS), set(supervisor.ANSWERS)
    assert not node & members and not (node | members) & (agent | answers)
    assert node | members | agent | answers == set(M.REGISTRY.values())


def test_a_constant_from_a_peer_is_published_once_first_definition_wins():
    from p2pscoop.core.commands import PublishConst
    n = make_node(P1, P2)
    # (and passed on to the links that may not know it: the flood along the views)
    assert n.handle(Received(P1, Const("c", payloads=[b"x"])), 0.0) == [
        SendMsg(P2, Const("c", payloads=[b"x"])), PublishConst("c", b"x")]
    assert n.handle(Received(P2, Const("c", payloads=[b"y"])), 0.0) == []
    assert n.consts == {"c": b"x"}


def test_constants_travel_before_the_work_that_may_need_them():
    from p2pscoop.core.node import DefineConst
    n = make_node()
    # no peer yet: nobody to tell; decided here (a test node has rank 0: the arbiter)
    assert n.handle(DefineConst("k", b"v", 1), 0.0) == [ConstAnswer(1, "k", True)]
    n.handle(PeerUp(P1), 0.0)
    submit(n, 4)
    cmds = n.handle(Received(P1, Steal(1)), 0.0)
    assert [type(c).__name__ for c in cmds] == ["SendMsg", "ShipWorks"]
    assert cmds[0] == SendMsg(P1, Const("k", payloads=[b"v"]))
    # told once: the next steal carries no constant
    cmds = n.handle(Received(P1, Steal(2)), 0.0)
    assert [type(c).__name__ for c in cmds] == ["ShipWorks"]


def test_a_defined_constant_is_sent_to_every_peer():
    from p2pscoop.core.node import DefineConst
    n = make_node(P1, P2)
    assert n.handle(DefineConst("k", b"v", 4), 0.0) == [
        SendMsg(P1, Const("k", payloads=[b"v"])), SendMsg(P2, Const("k", payloads=[b"v"])),
        ConstAnswer(4, "k", True)]


# -- the thief side of a steal ----------------------------------------------------------

def test_idle_without_peers_does_nothing():
    n = make_node()
    assert n.handle(Idle(), 0.0) == []
    assert n.next_deadline(0.0) is None


def test_idle_with_work_just_wakes():
    n = make_node(P1)
    submit(n, 1)
    assert n.handle(Idle(), 0.0) == [Wake()]


def test_idle_steals_then_runs_what_it_got():
    n = make_node(P1)
    assert n.handle(Idle(), 0.0) == [SendMsg(P1, Steal(1))]
    assert n.stealing and n.counters.steals_sent == 1
    assert n.handle(Idle(), 0.1) == []  # one request at a time
    got = foreign(P1, 3, 10, 12)
    assert n.handle(Received(P1, give([got], 1), [got]), 0.2) == [Wake()]
    assert not n.stealing
    assert n.counters.units_received == 2
    assert n.handle(Pop(), 0.2) == [Run(got, 10)]
    assert 3 not in n.jobs  # foreign work has no record here


def test_a_starved_peer_asks_the_next_victim_as_the_denial_comes():
    n = make_node(P1, P2, seed=1)
    first = n.handle(Idle(), 0.0)
    assert first == [Like(SendMsg, msg=Steal(1))]
    victim = first[0].peer
    other = P2 if victim == P1 else P1
    # no round trip through the scheduler: the thread that read the denial asks on
    assert n.handle(Received(victim, Give(1, [])), 0.0) == [SendMsg(other, Steal(2))]
    assert (n.counters.steals_failed, n.counters.steals_denied) == (1, 0)
    assert n.handle(Idle(), 0.0) == []  # one request at a time
    # the round is over: the scheduler is woken to compute its wait
    assert n.handle(Received(other, Give(2, [])), 0.0) == [Wake()]
    assert n.handle(Idle(), 0.0) == [] and n.policy.failures == 1


def test_a_denied_early_ask_only_wakes_the_scheduler():
    # a peer still running its last unit asked early; denied, it asks again only once idle
    n = make_node(P1, P2, seed=1)
    submit(n, 1)
    out = n.handle(Pop(), 0.0)
    assert [type(c) for c in out] == [SendMsg, Run]
    victim = out[0].peer
    assert n.handle(Received(victim, Give(1, [])), 0.0) == [Wake()]
    assert n.handle(Idle(), 0.0) == [SendMsg(P2 if victim == P1 else P1, Steal(2))]


def test_victim_choice_and_backoff_follow_the_seeded_rng():
    cfg = dict(backoff_min=0.01, backoff_max=0.03, quiet_after=4)  # 4 rounds of polling
    n = make_node(P1, P2, P3, seed=42, **cfg)
    peers = [P1, P2, P3]
    mirror = random.Random(42)  # replays StealPolicy.choose_victim's draws
    now, req = 0.0, 0
    for rnd, delay in enumerate([0.01, 0.02, 0.03, 0.03]):
        fresh = list(peers)
        cmds = n.handle(Idle(), now)
        while fresh:  # each denial sends the next request at once (``_next_victim``)
            req += 1
            want = fresh[mirror.randrange(len(fresh))]
            assert cmds == [SendMsg(want, Steal(req))]
            cmds = n.handle(Received(want, Give(req, [])), now)
            fresh.remove(want)
        assert cmds == [Wake()]
        # a whole round of denials: back off, exponentially, capped at backoff_max
        assert n.handle(Idle(), now) == []
        assert n.policy.failures == rnd + 1
        assert n.next_deadline(now) == pytest.approx(now + delay)
        assert n.handle(Idle(), now + delay * 0.99) == []
        now += delay
    # a lifeline hint resets the backoff at once
    assert n.handle(Idle(), now) == [Like(SendMsg, msg=Steal(req + 1))]  # a fresh round
    n.handle(Received(n._steal[0], Give(req + 1, [])), now)
    assert n.policy.denied
    assert n.handle(Received(P1, Hint()), now) == [Wake()]
    assert n.policy.failures == 0 and n.policy.not_before == 0.0


def test_hint_resets_backoff_so_the_thief_asks_at_once():
    n = make_node(P1, backoff_min=1.0, backoff_max=1.0)
    assert n.handle(Idle(), 0.0) == [SendMsg(P1, Steal(1))]
    n.handle(Received(P1, Give(1, [])), 0.0)
    assert n.handle(Idle(), 0.0) == []  # round over: back off for a second
    assert n.handle(Idle(), 0.5) == []
    assert n.handle(Received(P1, Hint()), 0.5) == [Wake()]
    assert n.handle(Idle(), 0.5) == [SendMsg(P1, Steal(2))]


def test_steal_request_timeout():
    n = make_node(P1, request_timeout=1.0)
    assert n.handle(Idle(), 0.0) == [SendMsg(P1, Steal(1))]
    assert n.next_deadline(0.0) == 1.0
    assert n.handle(Idle(), 0.999) == []
    assert n.handle(Tick(), 0.999) == [] and n.stealing
    assert n.handle(Tick(), 1.0) == [] and not n.stealing
    assert n.handle(Idle(), 1.0) == [SendMsg(P1, Steal(2))]
    # Idle alone also notices the timeout
    assert n.handle(Idle(), 2.5) == [SendMsg(P1, Steal(3))]


def test_a_late_reply_after_timeout_is_still_taken():
    """The victim leased the units: dropping its late reply would lose them."""
    n = make_node(P1, request_timeout=1.0)
    n.handle(Idle(), 0.0)
    n.handle(Idle(), 1.5)  # request 1 timed out, request 2 sent
    late = foreign(P1, 0, 0, 3)
    assert n.handle(Received(P1, give([late], 1), [late]), 1.6) == [Wake()]
    assert n.stealing  # request 2 is still outstanding
    assert n.deque.total == 3


def test_peer_down_forgets_the_outstanding_request():
    n = make_node(P1)
    n.handle(Idle(), 0.0)
    assert n.handle(PeerDown(P1), 0.1) == []
    assert not n.stealing and n.peers == []


# -- results ----------------------------------------------------------------------------

def test_results_from_a_thief_resolve_once_and_duplicates_are_counted():
    n = make_node(P1)
    w = submit(n, 4)
    n.handle(Received(P1, Steal(1)), 0.0)  # leases units 2 and 3
    msg = results((w.job, 2, OK), (w.job, 3, RAISED))
    assert n.handle(Received(P1, msg), 0.0) == [
        Resolve(w.job, 2, OK, b"r0", True), Resolve(w.job, 3, RAISED, b"r1", True)]
    assert states(n, w.job) == {0: T.PENDING, 1: T.PENDING}
    assert n.jobs[w.job].holders == {}
    assert n.handle(Received(P1, msg), 0.0) == []
    assert n.counters.duplicates == 2


def test_results_for_unknown_or_finished_jobs():
    n = make_node(P1)
    w = submit(n, 1)
    n.handle(Pop(), 0.0)
    n.handle(Finished(ME, w.job, 0, OK, 1), 0.0)
    assert n.handle(Received(P1, results((w.job, 0, OK))), 0.0) == []  # job finished
    assert n.counters.duplicates == 1
    assert n.handle(Received(P1, results((99, 0, OK))), 0.0) == []  # never made
    assert n.counters.bad_messages == 1


def test_result_for_an_index_outside_a_live_job_is_dropped():
    n = make_node(P1)
    w = submit(n, 2)
    assert n.handle(Received(P1, results((w.job, 7, OK))), 0.0) == []
    assert states(n, w.job) == {0: T.PENDING, 1: T.PENDING}


def test_results_are_batched_per_owner_up_to_result_batch():
    n = make_node(P1, P2, result_batch=3, result_delay=1.0, result_at_once=False)
    works = [foreign(P1, 0, 0, 10), foreign(P2, 0, 0, 10)]
    n.handle(Received(P1, give(works[:1], 0), works[:1]), 0.0)
    n.handle(Received(P2, give(works[1:], 0), works[1:]), 0.0)
    assert n.handle(Finished(P1, 0, 0, OK, "a"), 0.0) == []
    assert n.handle(Finished(P2, 0, 0, FAILED, "x"), 0.1) == []
    assert n.handle(Finished(P1, 0, 1, OK, "b"), 0.2) == []
    assert n.handle(Finished(P1, 0, 2, RAISED, "c"), 0.3) == [
        ShipResults(P1, [(P1, 0, 0, OK, "a"), (P1, 0, 1, OK, "b"), (P1, 0, 2, RAISED, "c")])]
    assert n.handle(Tick(), 0.99) == []
    assert n.handle(Tick(), 1.0) == [ShipResults(P2, [(P2, 0, 0, FAILED, "x")])]


def test_results_are_flushed_after_result_delay():
    n = make_node(P1, result_batch=100, result_delay=0.5, result_at_once=False)
    w = foreign(P1, 2, 0, 10)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    assert n.handle(Finished(P1, 2, 0, OK, 0), 1.0) == []
    assert n.handle(Finished(P1, 2, 1, OK, 1), 1.2) == []
    assert n.handle(Tick(), 1.49) == []
    assert n.handle(Tick(), 1.5) == [ShipResults(P1, [(P1, 2, 0, OK, 0), (P1, 2, 1, OK, 1)])]
    assert n.handle(Tick(), 3.0) == []
    # a Finished past the delay flushes on the spot
    assert n.handle(Finished(P1, 2, 2, OK, 2), 4.0) == []
    assert n.handle(Finished(P1, 2, 3, OK, 3), 4.5) == [
        ShipResults(P1, [(P1, 2, 2, OK, 2), (P1, 2, 3, OK, 3)])]


def test_results_are_flushed_when_the_deque_runs_dry():
    n = make_node(P1, result_batch=100, result_delay=10.0, result_at_once=False)
    w = foreign(P1, 0, 0, 2)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    assert n.handle(Pop(), 0.0) == [Run(w, 0)]
    assert n.handle(Finished(P1, 0, 0, OK, 0), 0.0) == []
    assert n.handle(Pop(), 0.0) == [Run(w, 1)]  # (not our unit: no request before it)
    assert n.handle(Finished(P1, 0, 1, OK, 1), 0.0) == [
        ShipResults(P1, [(P1, 0, 0, OK, 0), (P1, 0, 1, OK, 1)])]


def test_pop_and_idle_flush_pending_results():
    n = make_node(P1, result_batch=100, result_delay=10.0, result_at_once=False)
    w = foreign(P1, 0, 0, 3)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    n.handle(Pop(), 0.0)
    n.handle(Finished(P1, 0, 0, OK, 0), 0.0)
    n.deque.discard(w)  # the rest went away (as if cancelled)
    assert n.handle(Pop(), 0.0) == [ShipResults(P1, [(P1, 0, 0, OK, 0)])]
    n2 = make_node(P1, result_batch=100, result_delay=10.0, result_at_once=False)
    w2 = foreign(P1, 0, 0, 3)
    n2.handle(Received(P1, give([w2], 0), [w2]), 0.0)
    n2.handle(Pop(), 0.0)
    n2.handle(Finished(P1, 0, 0, OK, 0), 0.0)
    assert n2.handle(Idle(), 0.0) == [ShipResults(P1, [(P1, 0, 0, OK, 0)]), Wake()]



def test_a_result_after_a_quiet_spell_ships_at_once_then_results_batch():
    n = make_node(P1, P2, result_batch=100, result_delay=0.5)
    other = foreign(P2, 3, 0, 10)  # work of another owner keeps this peer busy
    n.handle(Received(P2, give([other], 0), [other]), 0.0)
    w = foreign(P1, 2, 0, 5)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    for _ in range(5):
        n.handle(Pop(), 0.0)  # all of P1's running (none waits here: no linger)
    # its owner may be parked on it: it goes now
    assert n.handle(Finished(P1, 2, 0, OK, 0), 1.0) == [ShipResults(P1, [(P1, 2, 0, OK, 0)])]
    assert n.handle(Finished(P1, 2, 1, OK, 1), 1.1) == []  # a stream: batched
    assert n.handle(Finished(P1, 2, 2, OK, 2), 1.2) == []
    assert n.handle(Tick(), 1.6) == [ShipResults(P1, [(P1, 2, 1, OK, 1), (P1, 2, 2, OK, 2)])]
    assert n.handle(Finished(P1, 2, 3, OK, 3), 1.7) == []  # (0.1 s after the last RESULTS)
    assert n.handle(Tick(), 2.2) == [ShipResults(P1, [(P1, 2, 3, OK, 3)])]
    assert n.handle(Finished(P1, 2, 4, OK, 4), 2.8) == [ShipResults(P1, [(P1, 2, 4, OK, 4)])]
    assert n.counters.results_at_once == 2


def test_results_linger_while_more_of_their_owners_units_wait_here():
    n = make_node(P1, result_batch=100, result_delay=0.002, result_linger=0.05)
    w = foreign(P1, 2, 0, 3)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    assert n.handle(Pop(), 1.0) == [Run(w, 0)]
    assert n.handle(Finished(P1, 2, 0, OK, 0), 1.02) == []  # 2 more of P1's wait here
    assert n.next_tick(1.02) == 1.02 + 0.05
    n.handle(Pop(), 1.02)
    assert n.handle(Finished(P1, 2, 1, OK, 1), 1.04) == []
    assert n.handle(Tick(), 1.07) == [ShipResults(P1, [(P1, 2, 0, OK, 0), (P1, 2, 1, OK, 1)])]
    n.handle(Pop(), 1.07)  # the last of P1's units here: its result goes at once
    assert n.handle(Finished(P1, 2, 2, OK, 2), 1.09) == [ShipResults(P1, [(P1, 2, 2, OK, 2)])]


def test_results_of_long_units_or_one_unit_jobs_do_not_linger():
    n = make_node(P1, P2, result_batch=100, result_delay=0.002, result_linger=0.05)
    other = foreign(P2, 3, 0, 10)
    n.handle(Received(P2, give([other], 0), [other]), 0.0)
    w = foreign(P1, 2, 0, 3)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    n.handle(Pop(), 1.0)
    # the unit ran 0.5 s: a lingering result would wait for the next one, as long
    assert n.handle(Finished(P1, 2, 0, OK, 0), 1.5) == [ShipResults(P1, [(P1, 2, 0, OK, 0)])]
    root = foreign(P1, 4, 0, 1)  # a one-unit job (a subtree's root): its owner may wait on it
    n.handle(Received(P1, give([root], 0), [root]), 2.0)
    assert n.handle(Pop(), 2.0) == [Run(root, 0)]
    assert n.handle(Finished(P1, 4, 0, OK, 0), 2.01) == [ShipResults(P1, [(P1, 4, 0, OK, 0)])]


def test_a_thief_granted_work_is_no_longer_on_the_lifeline():
    # denied once, then granted: our next surplus is not pushed to it (it may be busy with
    # what it got; it asks again when it needs more)
    n = make_node(P1)
    n.handle(Received(P1, Steal(1)), 0.0)  # denied: remembered
    submit(n, 1)
    assert [type(c) for c in n.handle(Received(P1, Steal(2)), 0.0)] == [ShipWorks]
    assert n.handle(Submit(n.new_job(abs, [(0,), (1,)])), 0.0) == [Wake()]
    assert n.counters.pushes == 0 and n.deque.total == 2

def test_a_peer_asks_before_running_dry_but_only_once_and_not_after_a_denial():
    n = make_node(P1)
    submit(n, 2)
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]  # one unit still queued
    out = n.handle(Pop(), 0.0)  # the last one starts: ask now
    assert out[0] == SendMsg(P1, Steal(1)) and type(out[1]) is Run and n.stealing
    submit(n, 1)
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]  # one request at a time
    n.handle(Received(P1, Give(1, [])), 0.0)  # denied
    submit(n, 1)
    assert [type(c) for c in n.handle(Pop(), 0.0)] == [Run]  # a denial: no asking early
    assert n.counters.steals_early == 1 and n.counters.steals_sent == 1


def test_no_early_request_while_running_another_owners_unit():
    # it may be a suspect, which must run on a peer that holds nothing else
    n = make_node(P1, P2)
    w = foreign(P1, 3, 0, 1)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    assert n.handle(Pop(), 0.0) == [Run(w, 0)] and not n.stealing

# -- faults -----------------------------------------------------------------------------

def test_peer_down_makes_the_units_it_held_suspects():
    n = make_node(P1, P2)
    w = submit(n, 8)
    n.handle(Received(P1, Steal(1)), 0.0)  # [4, 8) -> P1
    n.handle(Received(P2, Steal(1)), 0.0)  # [2, 4) -> P2
    assert n.handle(PeerDown(P1), 1.0) == []  # nothing new to run here
    assert states(n, w.job) == {0: T.PENDING, 1: T.PENDING, 2: T.LEASED, 3: T.LEASED,
                                4: T.PENDING, 5: T.PENDING, 6: T.PENDING, 7: T.PENDING}
    assert n.jobs[w.job].holders == {2: P2, 3: P2}
    assert n.jobs[w.job].deaths == {4: 1, 5: 1, 6: 1, 7: 1}
    assert list(n.suspects) == [(w.job, i) for i in range(4, 8)]
    # the owner never runs a suspect itself: they may have killed P1
    assert spans(n.deque) == [(b"M", 0, 0, 2)]
    assert [n.handle(Pop(), 1.0)[-1].index for _ in range(2)] == [0, 1]
    assert n.handle(Pop(), 1.0) == []
    # a result from the dead peer is no longer accepted
    assert n.handle(Received(P1, results((w.job, 4, OK))), 1.0) == []
    assert n.handle(PeerDown(P3), 1.0) == []  # unknown: nothing to do


def test_a_suspect_travels_alone_and_fails_after_max_deaths():
    n = make_node(P1, P2, P3)
    w = submit(n, 4)
    n.handle(Received(P1, Steal(1)), 0.0)  # [2, 4) -> P1
    n.handle(PeerDown(P1), 1.0)  # 2 and 3 are suspects
    cmds = n.handle(Received(P2, Steal(2)), 1.0)
    assert cmds == [Like(ShipWorks, peer=P2, req=2)]
    assert [(x.lo, x.hi) for x in cmds[0].works] == [(2, 3)]  # one unit, nothing else
    n.handle(PeerDown(P2), 2.0)  # unit 2 killed a second holder
    assert n.jobs[w.job].deaths == {2: 2, 3: 1}
    cmds = n.handle(Received(P3, Steal(3)), 2.0)
    assert [(x.lo, x.hi) for x in cmds[0].works] == [(3, 4)]
    out = n.handle(Received(P3, results((w.job, 3, OK))), 2.0)
    assert out == [Like(Resolve, job=w.job, index=3, status=OK)]
    cmds = n.handle(Received(P3, Steal(4)), 2.0)
    assert [(x.lo, x.hi) for x in cmds[0].works] == [(2, 3)]
    out = n.handle(PeerDown(P3), 3.0)  # third death: the unit is lost, not retried
    assert out == [Like(Resolve, job=w.job, index=2, status=FAILED), Wake()]
    assert isinstance(out[0].value, TaskLostError)
    assert n.counters.units_lost == 1


def test_suspects_fail_when_no_peer_is_left():
    n = make_node(P1)
    w = submit(n, 2)
    n.handle(Received(P1, Steal(1)), 0.0)  # [1, 2) -> P1
    assert n.handle(PeerDown(P1), 1.0) == []
    assert n.next_tick(1.0) == 1.0 + n.config.alone_grace  # a replacement may still come
    assert n.handle(Tick(), 2.0) == []
    out = n.handle(Tick(), 1.0 + n.config.alone_grace)
    assert out == [Like(Resolve, job=w.job, index=1, status=FAILED), Wake()]
    assert isinstance(out[0].value, TaskLostError)
    assert [c.index for c in n.handle(Pop(), 20.0)] == [0]  # the innocent unit still runs


def test_suspects_wait_for_a_replacement_peer():
    n = make_node(P1)
    w = submit(n, 2)
    n.handle(Received(P1, Steal(1)), 0.0)  # [1, 2) -> P1
    n.handle(PeerDown(P1), 1.0)
    n.handle(PeerUp(P2), 2.0)  # a new peer joins in time
    assert n.handle(Tick(), 1.0 + n.config.alone_grace) == []
    cmds = n.handle(Received(P2, Steal(1)), 12.0)
    assert spans(cmds[0].works) == [(b"M", w.job, 1, 2)]


def test_peer_down_drops_results_owed_to_it():
    n = make_node(P1, result_batch=100, result_delay=10.0, result_at_once=False)
    w = foreign(P1, 0, 0, 3)
    n.handle(Received(P1, give([w], 0), [w]), 0.0)
    n.handle(Pop(), 0.0)
    n.handle(Finished(P1, 0, 0, OK, 0), 0.0)
    n.handle(PeerDown(P1), 0.0)
    assert n.handle(Tick(), 100.0) == [] and n.next_deadline(100.0) is None


def test_owner_steals_back_its_own_leased_units():
    owner = make_node(P1)
    w = submit(owner, 10)
    lease = owner.handle(Received(P1, Steal(1)), 0.0)[0].works  # [5, 10)
    # on the victim, the owner's units sit in the deque; the owner may take them back
    victim = make_node(ME, me=P1)
    shipped = [Work(ME, w.job, 5, 10, abs, [(i,) for i in range(5, 10)], 5)]
    victim.handle(Received(ME, give(shipped, 1), shipped), 0.0)
    victim.handle(Pop(), 0.0)  # the victim runs unit 5
    cmds = victim.handle(Received(ME, Steal(4)), 0.0)
    assert cmds == [Like(ShipWorks, peer=ME, req=4)]
    assert spans(cmds[0].works) == [(b"M", w.job, 8, 10)]
    # the owner receives placeholders for its own units and re-queues them
    assert spans(lease) == [(b"M", 0, 5, 10)]
    assert owner.handle(Idle(), 0.0) == [Wake()]
    rows = [[ME, w.job, 8, 10, False]]
    back = [Work(ME, w.job, 8, 10, None, None)]
    assert owner.handle(Received(P1, Give(4, rows), back), 0.0) == [Wake()]
    assert states(owner, w.job) == {**dict.fromkeys(range(5), T.PENDING),
                                    **dict.fromkeys(range(5, 8), T.LEASED),
                                    8: T.PENDING, 9: T.PENDING}
    assert owner.jobs[w.job].holders == dict.fromkeys(range(5, 8), P1)
    # ... as one item, as they left (``_reclaim_range``): run from its lowest unit
    assert [owner.handle(Pop(), 0.0) for _ in range(2)] == [
        [Like(Run, index=8)], [Like(Run, index=9)]]
    # the real payload stays on the owner: the placeholder is never run
    assert all(type(c[0].work.fn) is type(abs) for c in [owner.handle(Pop(), 0.0)])


def test_give_back_of_units_no_longer_leased_is_ignored():
    owner = make_node(P1)
    w = submit(owner, 2)
    owner.handle(Received(P1, Steal(1)), 0.0)  # unit 1 -> P1
    owner.handle(Received(P1, results((w.job, 1, OK))), 0.0)
    back = [Work(ME, w.job, 1, 2, None, None)]
    assert owner.handle(Received(P1, Give(9, [[ME, w.job, 1, 2, False]]), back), 0.0) == [
        Wake()]
    assert owner.deque.total == 1 and states(owner, w.job) == {0: T.PENDING}


def test_late_result_after_redispatch_wins_and_the_requeued_copy_is_dropped():
    """PENDING --result--> DONE: the holder was declared dead, came back, and answered.

    Regression: the re-queued copy stayed in the deque and a later steal leased a unit that
    was already resolved (KeyError in NodeState._set_range).
    """
    n = make_node(P1, P2)
    w = submit(n, 1)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(PeerDown(P1), 1.0)
    n.handle(PeerUp(P1), 2.0)
    assert n.unit_state(w.job, 0) == T.PENDING
    assert n.handle(Received(P1, results((w.job, 0, OK))), 3.0) == [
        Resolve(w.job, 0, OK, b"r0", True)]
    assert n.handle(Received(P2, Steal(5)), 3.0) == [SendMsg(P2, Give(5, []))]
    assert n.handle(Pop(), 3.0) == []


def test_steal_leases_only_the_still_pending_units():
    n = make_node(P1, P2)
    w = submit(n, 4)
    n.handle(Received(P1, Steal(1)), 0.0)  # [2, 4) -> P1
    n.handle(PeerDown(P1), 0.0)  # 2 and 3 become suspects
    n.handle(PeerUp(P1), 0.0)
    n.handle(Received(P1, results((w.job, 3, OK))), 0.0)  # 3's late result wins
    cmds = n.handle(Received(P2, Steal(2)), 0.0)
    assert spans(cmds[0].works) == [(b"M", 0, 2, 3)]  # the live suspect, alone
    cmds = n.handle(Received(P2, Steal(3)), 0.0)  # then the deque's oldest half
    assert spans(cmds[0].works) == [(b"M", 0, 1, 2)]


def test_result_of_a_dead_holder_while_a_new_holder_runs_it():
    n = make_node(P1, P2)
    w = submit(n, 1)
    n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(PeerDown(P1), 0.0)
    n.handle(PeerUp(P1), 0.0)
    assert n.handle(Pop(), 0.0) == []  # never run here: it is a suspect
    assert spans(n.handle(Received(P2, Steal(2)), 0.0)[0].works) == [(b"M", 0, 0, 1)]
    assert n.handle(Received(P1, results((w.job, 0, OK))), 0.0) == [
        Resolve(w.job, 0, OK, b"r0", True)]
    assert n.handle(Received(P2, results((w.job, 0, OK))), 0.0) == []  # P2's run lost
    assert n.counters.duplicates == 1


def test_unshippable_works_come_back_pinned():
    n = make_node(P1, P2)
    w = submit(n, 4)
    shipped = n.handle(Received(P1, Steal(1)), 0.0)[0].works
    assert n.handle(Unshippable(P1, shipped), 0.0) == [Wake()]
    assert states(n, w.job) == dict.fromkeys(range(4), T.PENDING)
    assert n.jobs[w.job].holders == {}
    assert spans(n.deque) == [(b"M", 0, 2, 4), (b"M", 0, 0, 2)]
    assert not n.deque._items[0].stealable
    cmds = n.handle(Received(P2, Steal(1)), 0.0)
    assert spans(cmds[0].works) == [(b"M", 0, 0, 2)]  # the pinned item stays
    assert spans(n.deque) == [(b"M", 0, 2, 4)]
    assert n.handle(Received(P2, Steal(2)), 0.0) == [SendMsg(P2, Give(2, []))]


def test_unshippable_foreign_work_stays_here():
    n = make_node(P1, P2)
    got = foreign(P2, 0, 0, 2)
    n.handle(Received(P2, give([got], 0), [got]), 0.0)
    shipped = n.handle(Received(P2, Steal(1)), 0.0)[0].works
    assert n.handle(Unshippable(P2, shipped), 0.0) == [Wake()]
    assert n.deque.total == 2
    assert spans(n.handle(Received(P2, Steal(2)), 0.0)[0].works) == [(b"2", 0, 0, 1)]
    assert n.handle(Received(P2, Steal(3)), 0.0) == [SendMsg(P2, Give(3, []))]
    assert spans(n.deque) == [(b"2", 0, 1, 2)]


# -- cancel and membership ---------------------------------------------------------------

def test_cancel_a_pending_submit():
    n = make_node()
    w = submit(n, 1)
    assert n.handle(Cancel(w.job), 0.0) == [Cancelled(w.job, True)]
    assert n.deque.total == 0 and n.handle(Pop(), 0.0) == []
    assert w.job not in n.jobs


def test_cancel_a_queued_job_of_many_units():
    n = make_node()
    w = submit(n, 3)
    assert n.handle(Cancel(w.job), 0.0) == [Cancelled(w.job, True)]
    assert n.deque.total == 0 and n.handle(Pop(), 0.0) == [] and w.job not in n.jobs


def test_cancel_of_a_job_partly_started_cancels_what_is_queued_only():
    """An abandoned map: its queued units go; one running and one leased end as usual."""
    n = make_node(P1)
    w = submit(n, 6)
    lent = n.handle(Received(P1, Steal(1)), 0.0)[0].works  # the oldest half, leased
    ran = n.handle(Pop(), 0.0)[-1].index  # one running here
    assert n.handle(Cancel(w.job), 0.0) == [Cancelled(w.job, False)]
    assert n.deque.total == 0 and n.handle(Pop(), 0.0) == []
    leased = [i for work in lent for i in range(work.lo, work.hi)]
    assert sorted(n.jobs[w.job].states) == sorted([ran, *leased])
    n.handle(Finished(ME, w.job, ran, OK, 0), 0.0)
    for i in leased:
        n.handle(Received(P1, Results([[ME, w.job, i, OK]], payloads=[b"x"])), 0.0)
    assert w.job not in n.jobs


@pytest.mark.parametrize("setup", ["running", "leased", "done", "unknown"])
def test_cancel_refused(setup):
    n = make_node(P1)
    w = submit(n, 1)
    if setup == "running":
        n.handle(Pop(), 0.0)
    elif setup == "leased":
        n.handle(Received(P1, Steal(1)), 0.0)
    elif setup == "done":
        n.handle(Pop(), 0.0)
        n.handle(Finished(ME, w.job, 0, OK, 0), 0.0)
    job = 77 if setup == "unknown" else w.job
    assert n.handle(Cancel(job), 0.0) == [Cancelled(job, False)]


def test_peer_up_is_idempotent_and_ignores_self():
    n = make_node(P1)
    assert n.handle(PeerUp(P1), 0.0) == []
    assert n.handle(PeerUp(ME), 0.0) == []
    assert n.peers == [P1]


def test_peer_up_resets_the_backoff():
    n = make_node(P1, backoff_min=5.0)
    n.handle(Idle(), 0.0)
    n.handle(Received(P1, Give(1, [])), 0.0)
    assert n.handle(Idle(), 0.0) == []
    assert n.handle(PeerUp(P2), 0.0) == [Wake()]
    assert n.handle(Idle(), 0.0) == [Like(SendMsg, msg=Steal(2))]


def test_next_deadline_and_next_tick():
    """``next_deadline``: when an idle scheduler calls ``Idle`` again; ``next_tick``: when
    the comm shell must ``Tick`` (a result batch to flush, a steal request to expire)."""
    n = make_node(P1, result_delay=0.25, request_timeout=2.0, result_at_once=False)
    assert (n.next_deadline(1.0), n.next_tick(1.0)) == (1.0, None)  # may steal now
    n.handle(Idle(), 1.0)
    assert (n.next_deadline(1.5), n.next_tick(1.5)) == (3.0, 3.0)  # request timeout
    w = foreign(P1, 0, 0, 4)
    n.handle(Received(P1, give([w], 9), [w]), 1.5)  # a stale reply: request 1 still out
    n.handle(Finished(P1, 0, 0, OK, 0), 1.5)
    assert (n.next_deadline(1.5), n.next_tick(1.5)) == (3.0, 1.75)  # result flush
    assert n.handle(Tick(), 1.75) == [ShipResults(P1, [(P1, 0, 0, OK, 0)])]
    assert n.next_tick(1.8) == 3.0
    n.handle(Tick(), 3.0)
    assert (n.next_deadline(3.5), n.next_tick(3.5)) == (3.5, None)
    n.handle(PeerDown(P1), 3.5)
    assert (n.next_deadline(3.5), n.next_tick(3.5)) == (None, None)


def test_next_deadline_waits_out_the_backoff():
    n = make_node(P1, backoff_min=0.5, backoff_max=1.0, quiet_after=1)  # (a polling round)
    n.handle(Idle(), 0.0)
    n.handle(Received(P1, Give(1, [])), 0.1)  # the round ends with its last denial
    assert n.handle(Idle(), 0.1) == []
    assert n.next_deadline(0.2) == 0.6
    assert n.handle(Idle(), 0.6) == [SendMsg(P1, Steal(2))]


def test_chained_work_goes_home_only_from_the_peer_its_owner_leased_it_to():
    n = make_node(P1, P2, P3)
    # P1 passes us work owned by P2: we may lease it on to P3 (leases chain) ...
    receive(n, P1, [foreign(P2, 4, 0, 6)])
    cmds = n.handle(Received(P3, Steal(1)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P3, req=1)] and spans(cmds[0].works) == [
        (b"2", 4, 3, 6)]
    # ... but not give it to P2, its owner, which leased it to P1, not to us: P1 waits for
    # its results through us
    assert n.handle(Received(P2, Steal(2)), 0.0) == [SendMsg(P2, Give(2, []))]
    # P1 may take it back (it leased it to us): we answer for nothing of it any more
    cmds = n.handle(Received(P1, Steal(3)), 0.0)
    assert cmds == [Like(ShipWorks, peer=P1, req=3)] and spans(cmds[0].works) == [
        (b"2", 4, 1, 3)]
    assert n.relays[(P2, 4)].lessors == dict.fromkeys((0, 3, 4, 5), (P1,))


def test_unshippable_chained_work_stays_and_is_answered_for_as_before():
    n = make_node(P1, P2, P3)
    receive(n, P3, [foreign(P2, 5, 0, 2)])
    works = n.handle(Received(P1, Steal(1)), 0.0)[0].works
    assert n.relays[(P2, 5)].holders == {1: P1}
    assert n.handle(Unshippable(P1, works), 0.0) == [Wake()]
    rel = n.relays[(P2, 5)]
    assert rel.holders == {} and rel.works == {} and rel.lessors == {0: (P3,), 1: (P3,)}
    assert [(w.lo, w.hi, w.stealable) for w in n.deque] == [(1, 2, False), (0, 1, True)]
    # straight from its owner: not shipped, nothing owed beyond the owner
    m = make_node(P1, P2)
    receive(m, P2, [foreign(P2, 5, 0, 2)])
    works = m.handle(Received(P1, Steal(1)), 0.0)[0].works
    assert m.handle(Unshippable(P1, works), 0.0) == [Wake()] and not m.relays
    # going back to the middle peer we got it from: we answer for it to that peer again
    k = make_node(P1, P2, P3)
    receive(k, P3, [foreign(P2, 5, 0, 2)])
    works = k.handle(Received(P3, Steal(1)), 0.0)[0].works
    assert k.relays[(P2, 5)].lessors == {0: (P3,)}  # unit 1 went back to P3
    assert k.handle(Unshippable(P3, works), 0.0) == [Wake()]
    assert k.relays[(P2, 5)].lessors == {0: (P3,), 1: (P3,)}


# -- chained leases (core/chains.py): each hop answers to the peer it got a unit from ------

P4 = b"4" * 16


def chain(seed=0):
    """ME got units [0, 4) of P2's job 7 from P1 and leased [2, 4) on to P3."""
    n = make_node(P1, P2, P3, P4, seed=seed)
    receive(n, P1, [foreign(P2, 7, 0, 4)])
    cmds = n.handle(Received(P3, Steal(1)), 0.0)
    assert spans(cmds[0].works) == [(b"2", 7, 2, 4)]
    return n


def test_a_result_is_forwarded_one_hop_towards_its_owner():
    n = chain()
    # P3's results come back to us and go on to P1 (whence we got the units) as they came
    cmds = n.handle(Received(P3, results((7, 2, OK), (7, 3, RAISED), owner=P2)), 1.0)
    assert cmds == [ShipResults(P1, [(P2, 7, 2, OK, Encoded(b"r0"))])]  # the first at once
    assert n.handle(Tick(), 1.01) == [ShipResults(P1, [(P2, 7, 3, RAISED, Encoded(b"r1"))])]
    assert n.counters.results_forwarded == 2 and set(n.relays[(P2, 7)].lessors) == {0, 1}
    # a second copy of a result is dropped here: the first went on already
    assert n.handle(Received(P3, results((7, 2, OK), owner=P2)), 1.1) == []
    assert n.counters.results_dropped == 1
    # our own runs of P2's units go the same way: to P1, never to P2 (no link needed)
    (run,) = n.handle(Pop(), 1.2)
    assert (run.work.owner, run.index) == (P2, 0)
    out = n.handle(Finished(P2, 7, 0, OK, 0), 2.0)
    assert out == [ShipResults(P1, [(P2, 7, 0, OK, 0)])]


def test_a_dead_sub_lessee_s_units_are_re_dispatched_by_the_middle_peer():
    n = chain()
    assert n.handle(PeerDown(P3), 1.0) == []  # suspects wait for a thief: no wake-up
    assert list(n.chain_suspects) == [(P2, 7, 2), (P2, 7, 3)]
    assert n.counters.units_redispatched == 2
    # not to its owner, which leased it to P1, not to us (P1 waits for it through us)
    assert n.handle(Received(P2, Steal(2)), 1.1) == [SendMsg(P2, Give(2, []))]
    # a suspect travels alone, to the next thief, and we answer for it again
    cmds = n.handle(Received(P4, Steal(3)), 1.1)
    assert cmds == [Like(ShipWorks, peer=P4, req=3)] and spans(cmds[0].works) == [
        (b"2", 7, 2, 3)]
    assert n.relays[(P2, 7)].holders == {2: P4} and n.relays[(P2, 7)].deaths == {2: 1, 3: 1}
    # our lessor dies: nothing of this job is owed to anyone any more
    n.handle(PeerDown(P1), 1.2)
    assert n.relays.get((P2, 7)) is None and n.deque.total == 0


def test_a_sub_lessee_that_leaves_hands_its_units_back_as_plain_work():
    m = chain()
    cmds = m._peer_down(P3, 1.0, graceful=True)  # (a BYE, through the membership)
    assert cmds == [Wake(), Wake()]
    assert [(w.owner, w.lo, w.hi, w.lessor) for w in m.deque][-2:] == [
        (P2, 2, 3, P1), (P2, 3, 4, P1)]


def test_a_unit_failing_after_max_deaths_is_the_middle_peer_s_result():
    n = chain()
    n.config = StealConfig(max_deaths=1)
    cmds = [c for c in n.handle(PeerDown(P3), 1.0) if type(c) is ShipResults]
    assert [(c.peer, [e[:4] for e in c.entries]) for c in cmds] == [
        (P1, [(P2, 7, 2, FAILED)])]  # at once, the next one batched
    assert [e[:4] for e in n._outbox[P1]] == [(P2, 7, 3, FAILED)]
    assert type(cmds[0].entries[0][4]) is TaskLostError
    assert n.counters.units_lost == 2 and not n.chain_suspects


def test_the_middle_peer_dying_is_its_lessor_s_business_and_late_results_are_dropped():
    # the owner P2's side: it leased [0, 4) to ME, which died: P2 re-dispatches them all
    owner = make_node(ME, P3, me=P2)
    w = submit(owner, 4)
    owner.handle(Received(ME, Steal(1)), 0.0)
    assert owner.jobs[w.job].holders == dict.fromkeys(range(2, 4), ME)
    owner.handle(PeerDown(ME), 1.0)
    assert list(owner.suspects) == [(w.job, 2), (w.job, 3)]
    # the sub-lessee's side: P3 got units from ME, which is dead: it drops their results
    # (ME's lessor re-dispatched them), and drops what it still has queued of them
    t = make_node(ME, P2, me=P3)
    receive(t, ME, [foreign(P2, w.job, 2, 4)])
    t.handle(Pop(), 1.0)  # unit 2 runs
    assert t.handle(PeerDown(ME), 1.1) == []
    assert t.deque.total == 0 and t.counters.units_orphaned == 1
    assert t.handle(Finished(P2, w.job, 2, OK, 2), 1.2) == [
        ShipResults(P2, [(P2, w.job, 2, OK, 2)])]  # its owner is linked: it gets it
    u = make_node(ME, me=P3)  # not linked to the owner: dropped
    receive(u, ME, [foreign(P2, w.job, 2, 4)])
    u.handle(Pop(), 1.0)
    u.handle(PeerDown(ME), 1.1)
    assert u.handle(Finished(P2, w.job, 2, OK, 2), 1.2) == []
    assert u.counters.results_dropped == 1


def test_a_fenced_middle_peer_s_forwarded_result_is_ignored():
    # P2 owns the units, leased them to ME, declared ME dead (a false suspicion: ME was
    # frozen) and re-dispatched them; ME wakes up and passes on P3's result: not read
    owner = make_node(ME, P3, me=P2)
    w = submit(owner, 4)
    owner.handle(Received(ME, Steal(1)), 0.0)
    owner.handle(PeerDown(ME), 1.0)
    assert owner.handle(Received(ME, results((w.job, 2, OK), owner=P2)), 2.0) == []
    assert owner.counters.bad_messages == 1 and owner.unit_state(w.job, 2) == T.PENDING
    # its re-dispatched copy resolves the unit, once
    cmds = owner.handle(Received(P3, Steal(2)), 2.1)
    assert spans(cmds[0].works) == [(b"2", w.job, 2, 3)]
    out = owner.handle(Received(P3, results((w.job, 2, OK), owner=P2)), 2.2)
    assert [type(c) for c in out] == [Resolve]


def test_an_idle_peer_goes_quiet_after_a_few_rounds_until_a_hint():
    n = make_node(P1, P2, backoff_min=0.01, backoff_max=0.02, quiet_after=2, quiet_wait=5.0)
    now, req = 0.0, 0
    for delay, asks in ((0.01, 2), (0.02, 2), (5.0, 2), (5.0, 1), (5.0, 1)):
        cmds = n.handle(Idle(), now)
        for _ in range(asks):  # a round asks every peer; a quiet one asks only one
            req += 1
            assert cmds == [Like(SendMsg, msg=Steal(req))]
            cmds = n.handle(Received(cmds[0].peer, Give(req, [])), now)
        assert cmds == [Wake()] and n.handle(Idle(), now) == []
        assert n.next_deadline(now) == pytest.approx(now + delay)
        now += delay
    assert n.handle(Idle(), now - 4.0) == []  # quiet: nothing sent for seconds...
    assert n.handle(Received(P1, Hint()), now - 4.0) == [Wake()]  # ...until a lifeline
    assert n.handle(Idle(), now - 4.0) == [SendMsg(P1, Steal(req + 1))]  # the hinter first


def test_a_quiet_peer_asks_far_links_too():
    # a quiet round of one must reach every link in time, not only the host mates: the
    # origin, alone on its host with its work, was asked by nobody (lab map: 9-40 s)
    n = make_node(P1, P2, backoff_min=0.01, backoff_max=0.02, quiet_after=1, quiet_wait=1.0)
    n.policy.locate("here", lambda peer: "here" if peer == P1 else "far")
    now, req, asked = 0.0, 0, Counter()
    for _ in range(40):
        cmds = n.handle(Idle(), now)
        while cmds != [Wake()] and cmds:
            req += 1
            assert cmds == [Like(SendMsg, msg=Steal(req))]
            asked[cmds[0].peer] += 1
            cmds = n.handle(Received(cmds[0].peer, Give(req, [])), now)
        now = n.next_deadline(now)
    assert asked[P2] >= 5 and asked[P1] >= 5, asked


def test_a_thief_that_leaves_hands_a_leased_range_back_as_one_item():
    n = make_node(P1, P2)
    w = submit(n, 10)
    n.handle(Received(P1, Steal(1)), 0.0)  # [5, 10) -> P1
    assert n._peer_down(P1, 1.0, graceful=True) == [Wake(), Wake()]
    assert states(n, w.job) == dict.fromkeys(range(10), T.PENDING)
    assert not n.jobs[w.job].holders and n.counters.units_redispatched == 5
    assert spans(n.deque) == [(b"M", w.job, 0, 5), (b"M", w.job, 5, 10)]


def test_a_unit_that_comes_home_a_suspect_is_hinted_to_a_hungry_thief():
    # P1 held our lone unit and passed it on; its holder down the chain died, so P1
    # hands it back as a suspect. P2 was denied and went quiet: it must hear of it now
    # (found by Hypothesis: otherwise the unit waited for P2's ``quiet_wait``, 2 s)
    n = make_node(P1, P2)
    w = submit(n, 1)
    assert Like(ShipWorks, peer=P1) in n.handle(Received(P1, Steal(1)), 0.0)
    n.handle(Received(P2, Steal(2)), 0.0)  # denied: nothing left
    assert list(n._hungry) == [P2]
    home = Work(ME, w.job, 0, 1, None, None)  # (the shell's placeholder for our own unit)
    out = n.handle(Received(P1, Give(0, [[ME, w.job, 0, 1, False]], [[w.job, 0, 1]]),
                            [home]), 0.1)
    assert list(n.suspects) == [(w.job, 0)] and n.deque.total == 0
    assert SendMsg(P2, Hint()) in out and not n._hungry


def test_a_thief_that_dies_leaves_exactly_its_units_as_suspects():
    n = make_node(P1, P2)
    w = submit(n, 10)
    n.handle(Received(P1, Steal(1)), 0.0)  # [5, 10) -> P1
    n.handle(Received(P2, Steal(2)), 0.0)  # [2, 5) -> P2 (half of what is left)
    n.handle(PeerDown(P1), 1.0)
    assert sorted(n.suspects) == [(w.job, i) for i in range(5, 10)]
    assert states(n, w.job) == {**dict.fromkeys(range(2), T.PENDING),
                                **dict.fromkeys(range(2, 5), T.LEASED),
                                **dict.fromkeys(range(5, 10), T.PENDING)}
    assert n.jobs[w.job].holders == dict.fromkeys(range(2, 5), P2)
    assert n.jobs[w.job].deaths == dict.fromkeys(range(5, 10), 1)
