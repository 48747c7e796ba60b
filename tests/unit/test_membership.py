"""The membership half of the core: handshake verdicts, WELCOME, heartbeats, deaths.

Tables of (event sequence -> exact commands), no sockets: ``core/membership.py`` through
``NodeState.handle`` as the runtime feeds it.
"""

import pytest

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.config import LivenessConfig
from p2pscoop.core.events import Bootstrap, Disconnected, EndRun, Leave, Received, Tick
from p2pscoop.core.membership import ALIVE, DEAD, JOINING, SUSPECT, Identity
from p2pscoop.core.node import NodeState

ME, A, B = b"m" * 16, b"a" * 16, b"b" * 16
LIVE = LivenessConfig(ping_interval=1.0, suspect_after=2.5, dead_after=4.5)


def ident(me=ME, rank=0, key=None, **kw):
    base = dict(address=f"tcp://h:{rank}", host="h", cluster="lab", python="cpython-3.11",
                pickle_protocol=5, version="1.0", size=3)
    base.update(kw)
    return Identity(me, rank, hello_key=key, **base)


def node(**kw):
    return NodeState(ME, identity=ident(**kw), liveness=LIVE)


def hello_of(peer, rank=1, key=None, **change):
    other = NodeState(peer, identity=ident(peer, rank, key=key))
    msg = other.members.hello()
    for k, v in change.items():
        setattr(msg, k, v)
    return msg


def test_a_matching_hello_admits_the_peer_and_answers_it():
    n = node()
    cmds = n.handle(Received(A, hello_of(A)), 0.0)
    assert cmds == [C.Admit(A), C.Connect(A, "tcp://h:1"), C.SendMsg(A, n.members.hello()),
                    C.Joined(A, 1, "h", "tcp://h:1"), C.Wake()]
    assert n.members.admitted(A) and A in n.peers


def test_a_newcomer_is_welcomed_with_the_other_members():
    n = node()
    n.handle(Received(A, hello_of(A, 1)), 0.0)
    cmds = n.handle(Received(B, hello_of(B, 2)), 0.0)
    welcome = [c for c in cmds if type(c) is C.SendMsg and type(c.msg) is M.Welcome]
    assert welcome == [C.SendMsg(B, M.Welcome(3, [[A, "tcp://h:1", 1, "h"]]))]


def test_a_welcome_makes_us_greet_every_member_we_do_not_know():
    n = node()
    n.handle(Bootstrap(A, "tcp://h:1"), 0.0)
    n.handle(Received(A, hello_of(A)), 0.0)
    cmds = n.handle(Received(A, M.Welcome(3, [[B, "tcp://h:2", 2, "h"], [ME, "x", 0, "h"],
                                              [A, "tcp://h:1", 1, "h"]])), 0.0)
    assert cmds == [C.Connect(B, "tcp://h:2"), C.SendMsg(B, n.members.hello())]
    assert n.members.members[B].state == JOINING
    assert not n.members.admitted(B)


def test_bootstrap_connects_and_says_hello_once():
    n = node()
    assert n.handle(Bootstrap(A, "tcp://h:1"), 0.0) == [C.Connect(A, "tcp://h:1"),
                                                        C.SendMsg(A, n.members.hello())]
    assert n.handle(Bootstrap(A, "tcp://h:1"), 0.0) == []
    # its HELLO back admits it without a second connection
    cmds = n.handle(Received(A, hello_of(A)), 0.0)
    assert C.Connect(A, "tcp://h:1") not in cmds and C.Admit(A) in cmds


@pytest.mark.parametrize("change, ours, theirs", [
    ({"cluster": "other"}, "another cluster", "you belong to another cluster"),
    ({"python": "cpython-3.12"}, "python cpython-3.12 there, cpython-3.11 here",
     "python cpython-3.11 there, cpython-3.12 here"),
    ({"version": "2.0"}, "p2pscoop 2.0 there, 1.0 here", "p2pscoop 1.0 there, 2.0 here"),
    ({"proto": M.PROTOCOL_VERSION + 1},
     f"protocol {M.PROTOCOL_VERSION + 1} there, {M.PROTOCOL_VERSION} here",
     f"protocol {M.PROTOCOL_VERSION} there, {M.PROTOCOL_VERSION + 1} here"),
    ({"incarnation": B}, "does not match", "does not match"),
])
def test_a_refusal_says_what_differs_on_both_sides(change, ours, theirs):
    n = node()
    cmds = n.handle(Received(A, hello_of(A, **change)), 0.0)
    assert [type(c) for c in cmds] == [C.Refused, C.SendRefuse]
    assert ours in cmds[0].reason and theirs in cmds[1].reason
    assert cmds[1].address == "tcp://h:1"
    assert not n.members.admitted(A) and A not in n.peers


def test_with_a_cluster_key_only_a_signed_hello_is_admitted():
    n = node(key=b"k" * 32)
    assert type(n.handle(Received(A, hello_of(A)), 0.0)[0]) is C.Refused  # unsigned
    assert type(n.handle(Received(B, hello_of(B, key=b"x" * 32)), 0.0)[0]) is C.Refused
    assert n.handle(Received(A, hello_of(A, key=b"k" * 32)), 0.0)[0] == C.Admit(A)


def test_messages_before_a_valid_hello_are_dropped_and_counted():
    n = node()
    for msg in (M.Steal(1), M.Ping(), M.Bye(), M.Welcome(1, []),
                M.Const("c", payloads=[b"x"]), M.Shutdown(0)):
        assert n.handle(Received(A, msg), 0.0) == []
    assert n.counters.bad_messages == 6


def test_a_refuse_from_anyone_is_reported():
    n = node()
    assert n.handle(Received(A, M.Refuse("python 3.12 there")), 0.0) == [
        C.RefusedBy(A, "python 3.12 there")]


def admitted_node():
    n = node()
    n.handle(Received(A, hello_of(A)), 0.0)
    return n


def test_heartbeats_then_suspicion_then_death():
    n = admitted_node()
    assert n.next_tick(0.0) == 1.0
    # the origin (rank 0) says who it is, its heartbeat count, distance 0 and the
    # program's size (itself and A)
    assert n.handle(Tick(), 1.0) == [C.SendMsg(A, M.Ping([], ME, 1, 0, 2))]
    assert n.handle(Tick(), 2.6) == [C.Suspected(A, 1, 2.6),
                                     C.SendMsg(A, M.Ping([], ME, 2, 0, 2))]
    assert n.members.members[A].state == SUSPECT and n.members.admitted(A)
    cmds = n.handle(Tick(), 4.6)
    assert cmds[:2] == [C.Drop(A), C.Left(A, 1, "silent for 4.6 s")]
    assert n.members.members[A].state == DEAD and A not in n.peers


def test_any_message_is_a_sign_of_life():
    n = admitted_node()
    n.handle(Tick(), 2.6)
    assert n.members.members[A].state == SUSPECT
    n.handle(Received(A, M.Ping()), 3.0)
    assert n.members.members[A].state == ALIVE
    assert not [c for c in n.handle(Tick(), 5.0) if type(c) in (C.Drop, C.Left)]


def test_a_lost_connection_or_a_bye_is_death_at_once():
    n = admitted_node()
    assert n.handle(Disconnected(A), 0.5)[:2] == [C.Drop(A), C.Left(A, 1, "connection lost")]
    m = admitted_node()
    assert m.handle(Received(A, M.Bye()), 0.5)[:2] == [C.Drop(A), C.Left(A, 1, "it left")]


def test_a_dead_incarnation_is_never_admitted_again():
    n = admitted_node()
    n.handle(Disconnected(A), 0.5)
    cmds = n.handle(Received(A, hello_of(A)), 1.0)
    assert type(cmds[0]) is C.Refused and "declared dead" in cmds[0].reason


def test_the_leases_of_a_dead_peer_go_back_to_their_owner():
    from p2pscoop.core.events import Submit
    n = admitted_node()
    work = n.new_job(abs, [(i,) for i in range(4)])
    n.handle(Submit(work), 0.0)
    n.handle(Received(A, M.Steal(1)), 0.0)
    assert n.deque.total < 4
    n.handle(Tick(), 4.6)  # silent: dead
    assert n.deque.total + len(n.suspects) == 4


def test_a_peer_that_says_bye_hands_its_leases_back_as_plain_work():
    from p2pscoop.core.events import Submit
    n = admitted_node()
    work = n.new_job(abs, [(i,) for i in range(4)])
    n.handle(Submit(work), 0.0)
    n.handle(Received(A, M.Steal(1)), 0.0)
    n.handle(Received(A, M.Bye()), 0.1)
    assert n.deque.total == 4 and not n.suspects  # runnable here again, no death counted
    assert all(not rec.deaths for rec in n.jobs.values())


def test_end_run_and_leave_reach_every_admitted_peer():
    n = admitted_node()
    n.handle(Bootstrap(B, "tcp://h:2"), 0.0)  # joining, not admitted: not told
    assert n.handle(EndRun(3), 0.0) == [C.SendMsg(A, M.Shutdown(3))]
    assert n.handle(Leave(), 0.0) == [C.SendMsg(A, M.Bye())]


def test_a_peer_that_joins_after_the_end_of_the_run_is_told_to_stop_too():
    """A HELLO that crosses the SHUTDOWNs (a remote peer slow to start): the peer is
    admitted and told to stop at once, so the origin does not wait for it in vain."""
    n = node()
    assert n.handle(EndRun(0), 0.0) == []
    cmds = n.handle(Received(A, hello_of(A)), 0.1)
    assert cmds[-1] == C.SendMsg(A, M.Shutdown(0))
    assert C.Admit(A) in cmds and n.members.admitted(A)


def test_a_joining_peer_is_greeted_again_then_given_up_and_reported():
    n = node()
    n.handle(Bootstrap(A, "tcp://h:1"), 0.0)
    assert n.handle(Tick(), 1.0) == [C.SendMsg(A, n.members.hello())]  # HELLO again
    assert n.handle(Tick(), 1.5) == []
    assert n.handle(Tick(), 3 * 4.5 + 0.1) == [C.Drop(A), C.Unreachable(A, "tcp://h:1", 13.6)]
    assert not n.members.admitted(A) and A not in n.peers


# -- the partial view (docs/scale.md) --------------------------------------------------------

def peer_id(i):
    return bytes([0x70 + i]) * 16


VIEW = LivenessConfig(ping_interval=1.0, suspect_after=2.5, dead_after=4.5, view_size=2,
                      view_target=1, gossip=2)


def view_node(n_peers, **kw):
    kw.setdefault("rank", 5)  # not the origin: the origin never closes links
    n = NodeState(ME, identity=ident(**kw), liveness=VIEW)
    for i in range(n_peers):
        n.handle(Received(peer_id(i), hello_of(peer_id(i), i + 1)), 0.0)
    return n


def sent(cmds, cls):
    return [c.peer for c in cmds if type(c) is C.SendMsg and type(c.msg) is cls]


def test_links_past_view_size_are_pruned_unless_a_lease_needs_them():
    from p2pscoop.core.events import Submit
    n = view_node(1)
    work = n.new_job(abs, [(i,) for i in range(8)])
    n.handle(Submit(work), 0.0)
    n.handle(Received(peer_id(0), M.Steal(1)), 0.0)  # peer 0 now holds leased units
    for i in range(1, 4):  # three more greet us: past the view bound (2)
        n.handle(Received(peer_id(i), hello_of(peer_id(i), i + 1)), 0.5)
    # past the bound, a new link gets no lease (the trim will close it) ...
    assert n.handle(Received(peer_id(1), M.Steal(2)), 0.5) == [
        C.SendMsg(peer_id(1), M.Give(2, []))]
    # ... a link that is pinned already still may
    assert [type(c) for c in n.handle(Received(peer_id(0), M.Steal(3)), 0.5)] == [
        C.ShipWorks]
    assert not sent(n.handle(Tick(), 0.6), M.Prune)  # too young to prune
    cmds = n.handle(Tick(), 1.5)
    pruned = sent(cmds, M.Prune)
    assert len(pruned) == 2 and peer_id(0) not in pruned
    assert not [c for c in cmds if type(c) in (C.Left, C.Drop)]  # not a death
    for p in pruned:
        assert p not in n.peers and n.members.admitted(p)  # in flight: still read
    assert n.members.links() == 2
    # after one ping interval the pruned links are closed and their peers remembered
    cmds = n.handle(Tick(), 2.6)
    assert sorted(c.peer for c in cmds if type(c) is C.Drop) == sorted(pruned)
    assert set(pruned) <= set(n.members.known)


def test_a_prune_of_a_link_we_need_is_answered_with_a_hello():
    from p2pscoop.core.events import Submit
    n = view_node(1)
    work = n.new_job(abs, [(i,) for i in range(4)])
    n.handle(Submit(work), 0.0)
    n.handle(Received(peer_id(0), M.Steal(1)), 0.0)  # it holds our units
    cmds = n.handle(Received(peer_id(0), M.Prune()), 0.1)
    assert cmds == [C.SendMsg(peer_id(0), n.members.hello())]
    assert peer_id(0) in n.peers and n.members.view.kept == 1


def test_a_prune_of_a_link_we_do_not_need_forgets_it_without_fencing():
    n = view_node(1)
    assert n.handle(Received(peer_id(0), M.Prune()), 0.1) == []
    assert peer_id(0) not in n.peers and n.members.pruned(peer_id(0))
    # still read for one ping interval (a SHUTDOWN passed on), then forgotten
    assert n.members.admitted(peer_id(0))
    cmds = n.handle(Tick(), 1.1)
    assert C.Drop(peer_id(0)) in cmds and not n.members.admitted(peer_id(0))
    # not fenced: back in ``known``, from where this thin view dials it again at once
    assert C.Connect(peer_id(0), "tcp://h:1") in cmds and n.members.joining(peer_id(0))
    # it may link again later: a pruned peer is not a dead one
    cmds = n.handle(Received(peer_id(0), hello_of(peer_id(0), 1)), 5.0)
    assert cmds[0] == C.Admit(peer_id(0)) and peer_id(0) in n.peers


def test_a_pruned_link_reopened_by_either_side_greets_again():
    n = view_node(3)
    pruned = sent(n.handle(Tick(), 1.5), M.Prune)[0]
    # its HELLO (it needs the link after all) re-admits it, and we greet it back
    cmds = n.handle(Received(pruned, hello_of(pruned, 9)), 1.6)
    assert C.SendMsg(pruned, n.members.hello()) in cmds and pruned in n.peers


def test_the_origin_trims_its_view_like_any_peer_and_workers_leave_its_link_to_it():
    n = view_node(4, rank=0)
    assert len(sent(n.handle(Tick(), 1.5), M.Prune)) == 2  # 4 links, view_size 2
    assert n.members.links() == 2
    for seed in range(20):  # a worker closes any link but the origin's: the origin
        w = NodeState(ME, identity=ident(rank=5), liveness=VIEW)  # chooses its view
        w.members.rng.seed(seed)
        for i in range(4):
            w.handle(Received(peer_id(i), hello_of(peer_id(i), i)), 0.0)  # peer 0: rank 0
        pruned = sent(w.handle(Tick(), 1.5), M.Prune)
        assert len(pruned) == 2 and peer_id(0) not in pruned, seed
    # the origin's PRUNE closes the link (nothing pins it here): not a death
    out = w.handle(Received(peer_id(0), M.Prune()), 2.0)
    assert not sent(out, M.OriginGone) and not w.origin_gone and not w.leaving
    assert peer_id(0) not in w.peers


def test_the_origins_view_spans_the_hosts_evenly():
    # 9 links: 6 on host a, 2 on b, 1 on c; view_size 2 + the trims: the origin closes
    # links on the host it holds the most links to first
    n = NodeState(ME, identity=ident(rank=0), liveness=VIEW)
    hosts = ["a"] * 6 + ["b"] * 2 + ["c"]
    for i, host in enumerate(hosts):
        n.handle(Received(peer_id(i), hello_of(peer_id(i), i + 1, host=host)), 0.0)
    pruned = sent(n.handle(Tick(), 1.5), M.Prune)
    assert len(pruned) == 7
    kept = {hosts[i] for i in range(9) if peer_id(i) in n.peers}
    assert kept == {"b", "c"} or kept == {"a", "b"} or kept == {"a", "c"}, kept
    assert sum(1 for i in range(9) if peer_id(i) in n.peers and hosts[i] == "a") <= 1


def test_the_origin_dials_a_peer_on_a_host_its_view_lacks():
    # three links on host a, none on host b (a peer it knows of by a ROSTER row): the
    # origin dials it (its next trim then closes one on host a: the view spans the hosts)
    cfg = LivenessConfig(ping_interval=1.0, suspect_after=2.5, dead_after=4.5, view_size=4,
                         view_target=1, gossip=2)
    n = NodeState(ME, identity=ident(rank=0), liveness=cfg)
    for i in range(3):
        n.handle(Received(peer_id(i), hello_of(peer_id(i), i + 1, host="a")), 0.0)
    row = [peer_id(7), "tcp://b:7", 7, "b"]
    assert n.handle(Received(peer_id(0), M.Roster([row], [])), 0.1) == [
        C.Joined(peer_id(7), 7, "b", "tcp://b:7")]
    cmds = n.handle(Tick(), 1.0)
    assert C.Connect(peer_id(7), "tcp://b:7") in cmds
    assert n.program_size() == 5


def test_ping_gossip_fills_known_and_a_thin_view_dials_from_it():
    n = view_node(1)
    rows = [[peer_id(5), "tcp://h:5", 5, "h2"], [ME, "tcp://h:0", 0, "h"]]
    n.handle(Received(peer_id(0), M.Ping(rows)), 0.5)
    assert list(n.members.known) == [peer_id(5)]
    n.handle(Disconnected(peer_id(0)), 0.6)  # its only link dies
    cmds = n.handle(Tick(), 1.0)
    assert C.Connect(peer_id(5), "tcp://h:5") in cmds and n.members.view.dials == 1


def test_a_peer_without_a_host_name_dials_known_peers_too():
    # local runs name no host: every known peer has host "" like us, and none is a
    # "host mate" (those need a name); a peer whose links were all closed must still
    # dial them (it used to find no one and stay alone: it missed the SHUTDOWN wave)
    n = NodeState(ME, identity=ident(rank=5, host=""), liveness=VIEW)
    n.handle(Received(peer_id(0), hello_of(peer_id(0), 1, host="")), 0.0)
    n.handle(Received(peer_id(0), M.Ping([[peer_id(5), "tcp://h:5", 5, ""]])), 0.5)
    assert list(n.members.known) == [peer_id(5)] and not n.members.mates
    n.handle(Received(peer_id(0), M.Prune()), 1.6)  # its only link is closed
    cmds = n.handle(Tick(), 2.6)  # (read one more ping interval, then forgotten)
    assert [c for c in cmds if type(c) is C.Connect] in (
        [C.Connect(peer_id(5), "tcp://h:5")], [C.Connect(peer_id(0), "tcp://h:1")]), cmds
    assert n.members.view.dials == 1


def test_a_ping_carries_a_sample_of_our_other_links():
    n = view_node(2)
    cmds = n.handle(Tick(), 1.0)
    pings = {c.peer: c.msg for c in cmds if type(c) is C.SendMsg and type(c.msg) is M.Ping}
    assert [r[0] for r in pings[peer_id(0)].peers] == [peer_id(1)]
    assert [r[0] for r in pings[peer_id(1)].peers] == [peer_id(0)]


def test_a_unit_passed_on_pins_the_links_to_both_ends_of_its_chain():
    """Leases chain (core/chains.py): a peer that passes on another owner's units is
    linked to the peer it got them from and to the peer it gave them to, and needs no
    link to their owner. Both links are pinned; the owner's is not."""
    from p2pscoop.core.deque import Work
    from p2pscoop.core.events import Finished
    n = view_node(2)
    owner = peer_id(6)  # not linked to us, and never will be
    lessor, thief = peer_id(0), peer_id(1)
    work = Work(owner, 3, 0, 2, abs, [(-1,), (-2,)])
    n.handle(Received(lessor, M.Give(0, [[owner, 3, 0, 2, True]]), [work]), 0.5)
    cmds = n.handle(Received(thief, M.Steal(1)), 0.5)
    assert [type(c) for c in cmds] == [C.ShipWorks]  # no MOVED, no dial to the owner
    n.handle(Received(peer_id(2), hello_of(peer_id(2), 3)), 0.5)  # one link too many
    assert n.lessors_of(owner, 3, 1) == (lessor,)
    cmds = n.handle(Tick(), 1.5)
    assert sent(cmds, M.Prune) == [peer_id(2)]  # the two ends of the chain stay
    assert not [c for c in cmds if type(c) is C.Connect]
    # the result comes back from the thief and goes on to the lessor, never the owner
    cmds = n.handle(Received(thief, M.Results([[owner, 3, 1, M.OK]], payloads=[b"r"])), 1.6)
    assert cmds == [C.ShipResults(lessor, [(owner, 3, 1, M.OK, M.Encoded(b"r"))])]
    # (nothing queued here: it ships at once)
    assert n.handle(Finished(owner, 3, 0, M.OK, 1), 1.7) == [
        C.ShipResults(lessor, [(owner, 3, 0, M.OK, 1)])]
    assert not n.relays  # nothing left to answer for: the links are free again


def test_results_for_a_link_being_reopened_wait_for_it():
    """A GIVE pushed on a link we had just closed (PRUNE crossed it): we re-open the link
    and its results wait for it, then ship; if it never comes back, they are dropped."""
    from p2pscoop.core.deque import Work
    from p2pscoop.core.events import Finished
    n = view_node(3)
    pruned = sent(n.handle(Tick(), 1.5), M.Prune)[0]
    owner = peer_id(6)
    work = Work(owner, 3, 0, 1, abs, [(-1,)])
    cmds = n.handle(Received(pruned, M.Give(0, [[owner, 3, 0, 1, True]]), [work]), 1.6)
    assert C.SendMsg(pruned, n.members.hello()) in cmds  # re-opened: JOINING
    assert n.handle(Finished(owner, 3, 0, M.OK, 1), 1.7) == []
    assert n._held == {pruned: [(owner, 3, 0, M.OK, 1)]}
    cmds = n.handle(Received(pruned, hello_of(pruned, 9)), 1.8)
    assert C.ShipResults(pruned, [(owner, 3, 0, M.OK, 1)]) in cmds and not n._held


# -- the origin along the views (core/origin.py) -----------------------------------------

def linked(rank, *peers):
    """A node of ``rank`` linked to ``peers`` (id, rank) through the real handshake."""
    n = NodeState(ME, identity=ident(rank=rank), liveness=LIVE)
    for pid, r in peers:
        n.handle(Received(pid, hello_of(pid, r)), 0.0)
    return n


def test_a_ping_carries_the_origins_heartbeat_and_our_distance_to_it():
    O = peer_id(0)
    n = linked(3, (A, 1), (B, 2))  # not linked to the origin
    n.handle(Received(A, M.Ping([], O, 7, 1)), 0.5)
    n.handle(Received(B, M.Ping([], O, 6, 3)), 0.5)
    assert n.origin == O and n.origin_beat == 7 and n.origin_hops() == 2
    pings = [c for c in n.handle(Tick(), 1.0) if type(c) is C.SendMsg]
    assert [(c.peer, c.msg.origin, c.msg.beat, c.msg.hops) for c in pings] == [
        (A, O, 7, 2), (B, O, 7, 2)]


def test_the_shutdown_wave_goes_on_to_every_other_link_and_those_closing():
    O, P = peer_id(0), peer_id(5)
    n = linked(3, (O, 0), (A, 1), (B, 2), (P, 4))
    n.handle(Received(A, M.Ping([], O, 1, 1)), 0.5)  # A says it is linked to the origin:
    n.handle(Received(B, M.Ping([], O, 1, 2)), 0.5)  # (a beat old, maybe) told anyway
    n.handle(Received(P, M.Prune()), 0.55)  # P closed our link: still read this beat
    assert n.handle(Received(O, M.Shutdown(4)), 0.6) == [
        C.Stop(4), C.SendMsg(O, M.Bye()), C.SendMsg(A, M.Shutdown(4)),
        C.SendMsg(B, M.Shutdown(4)), C.SendMsg(P, M.Shutdown(4))]
    assert n.handle(Received(B, M.Shutdown(4)), 0.7) == []  # once
    # passed on by a peer before the origin's own arrives: the origin gets its BYE anyway
    n = linked(3, (O, 0), (A, 1), (B, 2))
    n.handle(Received(A, M.Ping([], O, 1, 1)), 0.5)
    n.handle(Received(B, M.Ping([], O, 1, 1)), 0.5)
    assert n.handle(Received(A, M.Shutdown(4)), 0.6) == [
        C.Stop(4), C.SendMsg(A, M.Bye()), C.SendMsg(O, M.Bye()), C.SendMsg(B, M.Shutdown(4))]
    assert n.handle(Received(O, M.Shutdown(4)), 0.7) == []


def test_a_forwarded_shutdown_is_acknowledged_to_the_peer_it_came_from():
    n = linked(3, (A, 1), (B, 2))  # never linked to the origin: distances unknown
    assert n.handle(Received(A, M.Shutdown(0)), 0.6) == [
        C.Stop(0), C.SendMsg(A, M.Bye()), C.SendMsg(B, M.Shutdown(0))]


def gone_sent(cmds):
    return [c for c in cmds if type(c) is C.SendMsg and type(c.msg) is M.OriginGone]


def test_the_origins_death_floods_once_and_drops_the_program():
    """Our link to the origin is lost: with other links, we first wait 2.5 beats for a
    later heartbeat count through them; none comes: the origin is gone, tell every link."""
    O = peer_id(0)
    n = linked(3, (O, 0), (A, 1), (B, 2))
    n.handle(Received(O, M.Ping([], O, 7, 0)), 0.5)
    assert n.handle(Disconnected(O), 1.0) == [C.Drop(O), C.Left(O, 0, "connection lost")]
    assert n.next_tick(1.0) <= 3.5
    assert not gone_sent(n.handle(Tick(), 3.4)) and not n.origin_gone
    assert gone_sent(n.handle(Tick(), 3.5)) == [
        C.SendMsg(A, M.OriginGone(O, 7)), C.SendMsg(B, M.OriginGone(O, 7))]
    assert n.origin_gone and n.leaving
    assert n.handle(Received(A, M.OriginGone(O, 7)), 3.6) == []


def test_a_lost_link_to_a_live_origin_ends_nothing():
    """The link broke, the origin did not: a later count comes through another link."""
    O = peer_id(0)
    n = linked(3, (O, 0), (A, 1))
    n.handle(Received(O, M.Ping([], O, 7, 0)), 0.5)
    n.handle(Disconnected(O), 1.0)
    n.handle(Received(A, M.Ping([], O, 8, 1)), 1.5)
    assert not gone_sent(n.handle(Tick(), 4.0)) and not n.origin_gone and not n.leaving


def test_the_origins_death_with_no_other_link_drops_the_program_at_once():
    O = peer_id(0)
    n = linked(3, (O, 0))
    n.handle(Disconnected(O), 1.0)
    assert n.origin_gone and n.leaving


def test_a_closed_link_whose_connection_then_drops_is_not_a_death():
    """Both ends read a pruned link for one more beat; the first to drop it closes the
    connection, which the other sees as lost: a PRUNE, not a death (no fence, no Left;
    for the origin's link, no ORIGIN_GONE)."""
    O = peer_id(0)
    n = linked(3, (O, 0), (A, 1))
    n.handle(Received(A, M.Ping([], O, 3, 1)), 0.9)
    # our links learn at once that we no longer hear the origin (A: distance 1, so 2)
    assert n.handle(Received(O, M.Prune()), 1.0) == [C.SendMsg(A, M.Ping([], O, 3, 2))]
    assert n.handle(Disconnected(O), 1.2) == [C.Drop(O)]
    assert not n.origin_gone and not n.members.dead(O) and O in n.members.known


def test_the_origins_bye_is_its_death_too_but_its_prune_is_not():
    O = peer_id(0)
    n = linked(3, (O, 0), (A, 1))
    n.handle(Received(O, M.Prune()), 1.0)
    assert not n.origin_gone
    n = linked(3, (O, 0), (A, 1))
    cmds = n.handle(Received(O, M.Bye()), 1.0)
    assert C.SendMsg(A, M.OriginGone(O, 0)) in cmds and n.origin_gone


def test_a_heartbeat_that_stops_growing_means_the_origin_is_gone():
    """The safety net for a lost wave: PINGs keep coming, the origin's count does not."""
    O = peer_id(0)
    n = linked(3, (A, 1))
    n.handle(Received(A, M.Ping([], O, 5, 1)), 1.0)
    n.handle(Received(A, M.Ping([], O, 5, 1)), 1.0 + 3 * 4.5 - 0.1)
    assert not n.origin_gone
    assert n.handle(Received(A, M.Ping([], O, 5, 1)), 1.0 + 3 * 4.5) == [
        C.SendMsg(A, M.OriginGone(O, 5)),
        C.Left(O, 0, "its heartbeat has not reached us for 13.5 s")]
    assert n.origin_gone and n.leaving


def test_a_claim_older_than_what_we_heard_of_the_origin_is_ignored():
    """A peer frozen past dead_after (or cut off from the origin) declares the origin dead
    on waking: the peers that heard the origin since ignore its claim, and it alone drops
    the program, as a worker that lost its link to the origin always did."""
    O = peer_id(0)
    n = linked(3, (A, 1), (B, 2))
    n.handle(Received(A, M.Ping([], O, 34, 1)), 1.0)
    assert n.handle(Received(B, M.OriginGone(O, 20)), 1.1) == []  # stale: not passed on
    assert not n.origin_gone and n.counters.bad_messages == 0
    n.handle(Tick(), 1.2)
    assert not n.origin_gone  # no verdict on a bare tick
    assert n.handle(Received(B, M.OriginGone(O, 34)), 1.3) == [
        C.SendMsg(A, M.OriginGone(O, 34)), C.Left(O, 0, f"peer {B.hex()[:8]} says the origin died")]


def test_an_origin_gone_from_another_program_is_a_bad_message():
    O = peer_id(0)
    n = linked(3, (A, 1))
    n.handle(Received(A, M.Ping([], O, 5, 1)), 1.0)
    before = n.counters.bad_messages
    assert n.handle(Received(A, M.OriginGone(peer_id(9), 5)), 1.1) == []
    assert n.counters.bad_messages == before + 1 and not n.origin_gone


def test_a_burst_of_joins_does_not_close_the_origins_host_mate():
    # the origin's own worker (host h, like the origin) linked first; then six peers of
    # host far greet it at once: only the mate is old enough to close, but the far links
    # can make up the excess once they are: the origin waits for them (in the 32-peer lab
    # it closed its worker, whose re-dial went unheard for 14 s)
    n = NodeState(ME, identity=ident(rank=0), liveness=VIEW)
    mate = peer_id(0)
    n.handle(Received(mate, hello_of(mate, 1)), 0.0)
    for i in range(1, 7):
        n.handle(Received(peer_id(i), hello_of(peer_id(i), 1000 + i, host="far")), 2.0)
    assert not sent(n.handle(Tick(), 2.1), M.Prune)  # nothing but the mate is old enough
    pruned = sent(n.handle(Tick(), 3.1), M.Prune)
    assert len(pruned) == 5 and mate not in pruned and mate in n.peers
    # a peer with only host mates to close still closes them
    m = view_node(4)
    assert len(sent(m.handle(Tick(), 1.5), M.Prune)) == 2


def test_a_worker_closed_by_its_origin_does_not_dial_it_again():
    # the origin's links are its choice: its PRUNE is not undone by the worker's refill
    # (unless the worker knows nobody else)
    w = NodeState(ME, identity=ident(rank=5), liveness=VIEW)
    origin, other = peer_id(0), peer_id(1)
    w.handle(Received(origin, hello_of(origin, 0)), 0.0)
    w.handle(Received(other, hello_of(other, 1, host="far")), 0.0)
    w.handle(Received(origin, M.Prune()), 0.5)
    w.handle(Received(other, M.Prune()), 0.5)
    cmds = w.handle(Tick(), 1.6)  # both forgotten: the thin view dials
    assert C.Connect(other, "tcp://h:1") in cmds and not w.members.joining(origin)
    lone = NodeState(ME, identity=ident(rank=5), liveness=VIEW)
    lone.handle(Received(origin, hello_of(origin, 0)), 0.0)
    lone.handle(Received(origin, M.Prune()), 0.5)
    assert C.Connect(origin, "tcp://h:0") in lone.handle(Tick(), 1.6)


def test_no_lifeline_work_goes_to_a_link_closed_in_the_same_tick():
    # the origin (view_size 2) leased units to one peer; two thieves denied past its bound
    # wait on its lifeline. The holder falls silent: in one tick it is declared dead (its
    # units come back, surplus for the lifelines) and the trim closes one thief's link.
    # That thief must get nothing: a push over the link would make it dial the origin
    # again (a 1,000-peer run once held 27 links when thieves went quiet after one round)
    from p2pscoop.core.events import Submit
    n = NodeState(ME, identity=ident(rank=0), liveness=VIEW)
    holder, thieves = peer_id(0), [peer_id(i) for i in range(1, 4)]
    n.handle(Received(holder, hello_of(holder, 1)), 0.0)
    n.handle(Submit(n.new_job(abs, [(i,) for i in range(16)])), 0.0)
    n.handle(Received(holder, M.Steal(1)), 0.0)
    for i, t in enumerate(thieves):
        n.handle(Received(t, hello_of(t, i + 2)), 0.0)
        n.handle(Received(t, M.Steal(1)), 0.0)
    assert len(n._hungry) >= 2
    for t in thieves:
        n.handle(Received(t, M.Hint()), 4.0)  # alive
    cmds = n.handle(Tick(), 4.6)
    assert any(type(c) is C.Left and c.peer == holder for c in cmds)
    pruned = sent(cmds, M.Prune)
    assert pruned
    for p in pruned:
        after = cmds[cmds.index(C.SendMsg(p, M.Prune())) + 1:]
        assert not [c for c in after if getattr(c, "peer", None) == p], after
    # the others that waited still get their share or a hint
    assert [c for c in cmds if type(c) in (C.ShipWorks, C.SendMsg) and c.peer not in pruned
            and (type(c) is C.ShipWorks or type(c.msg) is M.Hint)]


def _ping_times(me, until=4.0, step=0.01):
    """When ``me`` (two links, neither of them silent) sends its PINGs: (time, links)."""
    n = NodeState(me, identity=ident(me, rank=5), liveness=LIVE)
    for i in range(2):
        n.handle(Received(peer_id(i), hello_of(peer_id(i), i + 1)), 0.0)
    out, t = [], 0.0
    while t < until:
        t = round(t + step, 2)
        for i in range(2):
            n.members.heard(peer_id(i), t)
        pinged = sent(n.handle(Tick(), t), M.Ping)
        if pinged:
            out.append((t, sorted(pinged)))
    return out


def test_each_peer_beats_on_its_own_phase_and_all_its_links_in_one_tick():
    beats = {me: _ping_times(me) for me in (b"p" * 16, b"q" * 16, b"r" * 16)}
    for times in beats.values():
        assert all(links == [peer_id(0), peer_id(1)] for _, links in times)
        gaps = [round(b - a, 2) for (a, _), (b, _) in zip(times, times[1:])]
        assert gaps and all(g == 1.0 for g in gaps[1:])  # one beat per interval
    # one clock for all (one host, or the lab's namespaces): different peers, different
    # instants, not one wake-up of every peer at once
    phases = {round(times[-1][0] % 1.0, 2) for times in beats.values()}
    assert len(phases) == 3
