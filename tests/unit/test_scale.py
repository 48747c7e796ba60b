"""Scale by design: the partial view, locality and 1,000 simulated peers (``clustersim.py``).

* 1,000 peers join through random introducers with the real handshake, gossip and view;
  four owners map work over them while holders are killed, frozen past the failure
  detector (declared dead while alive) and cut off one way from the peer they got their
  units from: every result arrives exactly once, with its value, work travels more than
  two hops from its owner, and every peer, the program's origin and the owners included,
  stays within its view bound (leases chain along the steal path: no owner links to the
  peers its work reached; what only the origin says travels along the views). Then the
  origin ends the run: the SHUTDOWN reaches every live peer.
* 1,000 peers, then the origin dies: every peer learns it (ORIGIN_GONE along the views)
  and drops the program; a lost wave is caught by the origin's heartbeat count.
* Smaller runs check the parts one by one: a view never exceeds its bound without a lease,
  units passed on by peers that do not own them get home hop by hop with no new link, a
  PRUNE of a link that a lease needs is answered by a HELLO, and steals go to the same
  host first.
"""

from clustersim import ClusterSim

from p2pscoop.core.membership import PRUNED
from p2pscoop.core import messages as M
from p2pscoop.core.config import LivenessConfig, StealConfig

#: idle peers back off up to 5 s: a 1,000-peer run then takes seconds, not minutes
CALM = StealConfig(backoff_min=0.05, backoff_max=5.0, quiet_after=1)  # (two polling rounds)


def holders(sim, n, but=()):
    """Up to ``n`` live peers that are running a unit another peer owns."""
    found = [p for p in sim.live() if p not in but and sim.shells[p].current is not None
             and sim.shells[p].current[0].owner != p]
    return found[:n]


def lessor(sim, pid):
    """The peer the unit ``pid`` runs came from (its result goes back there)."""
    work, index, _ = sim.shells[pid].current
    return sim.shells[pid].node.lessors_of(work.owner, work.job, index)[0]



def test_a_thousand_peers_every_result_exactly_once_under_kills_and_false_suspicions():
    sim = ClusterSim(1000, seed=7, steal=CALM, unit_time=0.1)
    owners = [sim.ids[0], sim.ids[1], sim.ids[2], sim.ids[3]]
    sim.start(owners[0])
    for k, o in enumerate(owners):
        if k:
            sim.start(o, owners[0])
        sim.submit(o, list(range(k * 1000, k * 1000 + 400)))
    sim.grow(996, 1.0)
    assert len(sim.live()) == 1000
    # the joins opened many links to the first peers (HELLOs are always accepted); those
    # that no lease pins are closed once a ping interval old: from then on, no peer holds
    # more than view_size links plus a few greeting it, the origin and owners included
    settled = sim.now + 1.5
    size = LivenessConfig().view_size
    most: dict = {}

    def sample():
        if sim.now >= settled:
            for p in sim.live():
                if sim.shells[p].frozen_until < sim.now - 0.5:
                    most[p] = max(most.get(p, 0), sim.links(p))

    # faults while leases are out: kills (connections break), freezes past dead_after
    # (the peer is declared dead while alive, then wakes up), a link muted one way
    kills, frozen, muted = [], [], []
    while len(kills) + len(frozen) + len(muted) < 10 and not sim.all_resolved():
        sim.run_for(0.1)
        for pid in holders(sim, 5 - len(kills), but=owners):
            sim.kill(pid)
            kills.append(pid)
        for pid in holders(sim, 3 - len(frozen), but=owners):
            sim.freeze(pid, 5.0)
            frozen.append(pid)
        for pid in holders(sim, 2 - len(muted), but=owners + frozen):
            sim.mute(pid, lessor(sim, pid), 5.0)  # its results' way home
            muted.append(pid)
    assert sim.faults == 10, (kills, frozen, muted)
    deadline = sim.now + 300
    while not sim.run_until(sim.all_resolved, min(deadline, sim.now + 0.25)):
        assert sim.now < deadline
        sample()
    sim.check()  # exactly once (a second Resolve fails at once), with the right value
    lost = sum(1 for v in sim.resolved.values() if v[0] == "failed")
    assert lost == 0, lost
    # the deaths were noticed, and the false ones too
    assert sim.news["Left"] >= 5
    assert sum(sim.shells[p].node.counters.units_lost for p in owners) == 0
    worst = max((n, sim.index[p]) for p, n in most.items())
    assert worst[0] <= size + 3, worst
    assert owners[0] in most  # the origin is held to the bound like any peer
    sim.run_for(5.0)
    for pid in sim.live():
        assert sim.links(pid) <= size + 1, (pid, sim.links(pid))
    links = sorted(sim.links(p) for p in sim.live())
    assert links[len(links) // 2] <= size
    # the origin counts its program along the views: the 5 killed peers are gone; the
    # rows lost with a frozen middle peer came again (refreshed), and the peer falsely
    # declared dead by a muted link counts again; a frozen one that dropped the program
    # on waking is gone too
    sim.run_for(6.0)
    counted = sim.shells[owners[0]].node.program_size()
    assert counted == 1000 - 5 - sum(1 for p in frozen if sim.dropped(p)), counted
    # the work spread further than two hops from its owners: with leases that went only
    # back to their owner (MOVED, lease links), 355 peers ran a unit at this seed
    ran = sum(1 for sh in sim.shells.values() if sh.units_run)
    assert ran > 355, ran
    assert sum(sim.shells[p].node.counters.results_forwarded for p in sim.live()) > 0
    # the end: the SHUTDOWN wave reaches every live peer along the views (a peer that was
    # frozen past dead_after may have dropped the program on waking instead: it lost its
    # links, the origin's among them, as a worker that loses its origin always did)
    sim.end(0)
    sim.run_for(3.0)
    for pid in sim.live():
        if pid != owners[0]:
            assert pid in sim.stopped or (pid in frozen and sim.dropped(pid)), sim.index[pid]
    assert not any(sim.dropped(p) for p in sim.live() if p not in frozen)


def test_a_thousand_peers_all_drop_the_program_when_the_origin_dies():
    sim = ClusterSim(1000, seed=11, steal=CALM, unit_time=0.1)
    origin = sim.ids[0]
    sim.start(origin)
    sim.grow(999, 1.0)
    sim.run_for(3.0)
    size = LivenessConfig().view_size
    assert sim.links(origin) <= size + 1
    far = [p for p in sim.live() if sim.shells[p].node.origin_hops() >= 3]
    assert far, "every peer is near the origin: the flood is not tested"
    sim.kill(origin)
    sim.run_for(6.0)  # dead_after (4.5 s) for its links to notice, then the flood
    live = sim.live()
    assert all(sim.dropped(p) for p in live), sum(1 for p in live if not sim.dropped(p))
    assert all(sim.shells[p].node.leaving for p in live)
    assert sim.news["Left"] >= len(live)  # each peer's launcher hears Left(origin)
    assert not sim.stopped


def test_a_peer_that_missed_the_shutdown_wave_drops_the_program_on_its_own():
    """The safety net: every message to one peer is lost while the SHUTDOWN wave passes;
    once the origin is gone its heartbeat count stops growing, and the peer, which hears
    nothing any more, drops the program anyway."""
    sim = small(60)
    origin = sim.ids[0]
    deaf = next(p for p in sim.live() if sim.shells[p].node.origin_hops() >= 2)
    for pid in sim.live():
        if pid != deaf:
            sim.mute(pid, deaf, 3.0)
    sim.end(0)
    sim.run_for(3.0)
    assert deaf not in sim.stopped and not sim.dropped(deaf)
    assert len(sim.stopped) == len(sim.live()) - 2  # all but the origin and the deaf peer
    sim.kill(origin)  # the origin's process exits
    sim.run_for(60.0)
    assert sim.dropped(deaf) and sim.shells[deaf].node.leaving


def small(n=40, **kw):
    sim = ClusterSim(n, seed=kw.pop("seed", 3), steal=CALM, **kw)
    sim.start(sim.ids[0])
    sim.grow(n - 1, 0.5)
    sim.run_for(3.0)
    return sim


def test_the_view_stays_bounded_and_connected_without_work():
    sim = small(60)
    size = LivenessConfig().view_size
    target = LivenessConfig().view_target
    for pid in sim.live():
        assert target <= sim.links(pid) <= size + 1, (pid, sim.links(pid))  # the origin too
        # beyond its links, a peer holds only connections it is closing (PRUNED this beat:
        # kept one ping interval for what is in flight on them)
        closing = sum(1 for m in sim.shells[pid].node.members.members.values()
                      if m.state == PRUNED)
        assert closing <= 3, (pid, closing)
        assert sim.connections(pid) <= size + 1 + closing
    # one component: every peer reaches every other through links
    seen, todo = {sim.ids[0]}, [sim.ids[0]]
    while todo:
        node = sim.shells[todo.pop()].node
        for m in node.members.alive():
            if m.id not in seen:
                seen.add(m.id)
                todo.append(m.id)
    assert len(seen) == 60


def test_a_dead_peer_leaves_the_views_and_is_replaced():
    sim = small(60)
    victim = sim.ids[30]
    had = [p for p in sim.live() if victim in {m.id for m in sim.shells[p].node.members.alive()}]
    assert had
    sim.kill(victim)
    sim.run_for(10.0)
    target = LivenessConfig().view_target
    for pid in had:
        node = sim.shells[pid].node
        assert victim not in {m.id for m in node.members.alive()}
        assert victim not in node.peers
        assert sim.links(pid) >= target  # refilled from known peers


def test_every_peer_reads_the_programs_size_counted_along_the_views():
    sim = ClusterSim(200, seed=5, steal=CALM)
    origin = sim.ids[0]
    sim.start(origin)
    sim.grow(199, 1.0)  # most peers greet another peer, never the origin
    sim.run_for(4.0)
    node = sim.shells[origin].node
    assert sim.links(origin) <= LivenessConfig().view_size + 1  # the origin is trimmed
    assert node.program_size() == 200  # ... and still counts every peer of its program
    assert set(node.roster) == set(sim.ids[1:])
    sim.run_for(4.0)  # the PINGs carry the count a hop per beat (a few hops at most)
    for pid in sim.live():
        assert sim.shells[pid].node.program_size() == 200, sim.index[pid]
    # deaths (not linked to the origin) are reported towards it by the dead peers' links
    far = [p for p in sim.live() if p != origin and not sim.shells[origin].node.members
           .admitted(p)][:5]
    assert len(far) == 5
    for pid in far:
        sim.kill(pid)
    sim.run_for(10.0)
    assert node.program_size() == 195
    assert not set(far) & set(node.roster)
    for pid in sim.live():
        assert sim.shells[pid].node.program_size() == 195, sim.index[pid]
    assert sim.news["Left"] >= 5  # the origin reported them too (telemetry's news)
    # one reporter is not believed (its link alone may be wrong); two are, and a late
    # join row of the dead peer does not bring it back
    x = next(p for p in sim.live() if p in node.roster and not node.members.admitted(p))
    a, b = sim.ids[1], sim.ids[2]
    row = [x, "sim://x", 9, "h9"]
    assert node._on_roster(a, M.Roster([], [[x, a]]), [], sim.now) == []
    assert x in node.roster
    left = node._on_roster(a, M.Roster([], [[x, b]]), [], sim.now)
    assert [(type(c).__name__, c.peer) for c in left] == [("Left", x)]
    assert node._on_roster(a, M.Roster([row], []), [], sim.now + 1.0) == []
    assert x not in node.roster
    # ... but a row well after that is the peer alive after all (a false report)
    joined = node._on_roster(a, M.Roster([row], []), [], sim.now + 10.0)
    assert [(type(c).__name__, c.peer) for c in joined] == [("Joined", x)]
    # middle peers pass each death on once, however many of its links report it
    assert sim.sent["Roster"] < 200 * 10, sim.sent["Roster"]


def test_units_passed_on_get_home_hop_by_hop_with_no_new_link():
    sim = small(60, unit_time=0.05)
    owner = sim.ids[1]
    linked, most = set(), 0
    sim.submit(owner, list(range(600)))
    while not sim.all_resolved():
        assert sim.run_until(sim.all_resolved, sim.now + 0.05) or sim.now < 120
        linked |= {m.id for m in sim.shells[owner].node.members.alive()}
        most = max(most, sim.links(owner))
    sim.check()
    size = LivenessConfig().view_size
    # units reached peers the owner was never linked to; their results came home through
    # the peers that passed them on, and the owner never linked to more than its view
    far = [p for p in sim.live() if sim.shells[p].units_run and p not in linked | {owner}]
    assert far, "no unit travelled beyond the owner's links"
    forwarded = sum(sim.shells[p].node.counters.results_forwarded for p in sim.live())
    assert forwarded > 0 and "Moved" not in sim.sent and "Holding" not in sim.sent
    assert most <= size + 1, most
    assert not any(sim.shells[p].node.relays for p in sim.live())  # nothing left owed


def test_steals_go_to_the_same_host_first():
    sim = small(64, per_host=8, unit_time=0.05)
    for k in range(8):
        sim.submit(sim.ids[k * 8], list(range(k * 100, k * 100 + 80)))
    assert sim.run_until(sim.all_resolved, sim.now + 120)
    sim.check()
    local = sum(sh.node.policy.local_steals for sh in sim.shells.values())
    assert local > 0
    # host mates find each other in their views (gossip, then dials to mates first) ...
    mates = [sum(1 for m in sim.shells[p].node.members.alive()
                 if m.host == sim.shells[p].host) for p in sim.live()]
    assert sum(mates) / len(mates) >= 4, mates  # of 7; a random view of 8 would hold ~1
    # ... and most granted steals stay on the host (7 of 63 peers: ~11 % if random)
    assert sim.local_gives > sim.remote_gives, (sim.local_gives, sim.remote_gives)


def test_the_policy_asks_host_mates_first_then_others():
    import random

    from p2pscoop.core.policy import StealPolicy
    hosts = {b"a": "h1", b"b": "h1", b"c": "h2", b"d": "h3"}
    pol = StealPolicy(StealConfig(), random.Random(1))
    pol.locate("h1", hosts.get)
    first = [pol.choose_victim(list(hosts), 0.0) for _ in range(3)]
    assert set(first) == {b"a", b"b"}  # only mates while a mate is left in the round
    pol.on_denied(b"a")
    pol.on_denied(b"b")
    assert pol.choose_victim(list(hosts), 0.0) in (b"c", b"d")
    assert pol.local_steals == 3 and pol.remote_steals == 1


def test_favoured_victims_come_first_within_their_tier():
    import random

    from p2pscoop.core.policy import StealPolicy
    hosts = {b"a": "h1", b"b": "h1", b"c": "h2", b"d": "h3", b"e": "h3"}
    pol = StealPolicy(StealConfig(), random.Random(1))
    pol.locate("h1", hosts.get)
    pol.on_success(b"c")  # c gave us work last: favoured, but mates still come first
    first = pol.choose_victim(list(hosts), 0.0)
    assert first in (b"a", b"b")
    pol.on_denied(b"a")
    pol.on_denied(b"b")
    assert pol.choose_victim(list(hosts), 0.0) == b"c"  # first among the others
    pol.on_denied(b"c")
    assert pol.choose_victim(list(hosts), 0.0) in (b"d", b"e") and not pol.favour
    pol.on_hint(b"b")  # a mate has work again: a new round, b first
    assert pol.choose_victim(list(hosts), 0.0) == b"b"


def test_the_owner_of_work_we_were_given_is_asked_first_near_or_far():
    import random

    from p2pscoop.core.policy import StealPolicy
    hosts = {b"a": "h1", b"b": "h1", b"c": "h2", b"o": "h3"}
    pol = StealPolicy(StealConfig(), random.Random(1))
    pol.locate("h1", hosts.get)
    pol.on_success(b"a", owner=b"o")  # a mate relayed us units of o's job
    assert pol.choose_victim(list(hosts), 0.0) == b"o"  # o holds the bulk: before mates
    pol.on_denied(b"o")  # o has nothing left: mates, then the others, as usual
    assert pol.source is None and pol.choose_victim(list(hosts), 0.0) == b"a"
    pol.on_success(b"c")  # our own work came back: no source
    assert pol.source is None


def test_a_new_peer_is_asked_once_without_resetting_the_backoff():
    import random

    from p2pscoop.core.policy import StealPolicy
    pol = StealPolicy(StealConfig(backoff_min=0.5, backoff_max=4.0, quiet_after=1),
                      random.Random(1))
    peers = [b"a"]
    pol.on_denied(pol.choose_victim(peers, 0.0))
    assert pol.choose_victim(peers, 0.0) is None  # round over: backing off
    pol.on_denied(pol.choose_victim(peers, 0.6))
    assert pol.choose_victim(peers, 0.6) is None and pol.failures == 2
    pol.peer_joined(b"z")
    assert pol.choose_victim(peers + [b"z"], 0.7) == b"z"  # asked at once, once
    assert pol.failures == 2 and pol.choose_victim(peers + [b"z"], 0.7) is None
