"""The origin's pushes sized by host, and a worker's row after a lost link to its origin.

Tables of (event sequence -> exact commands) through ``NodeState.handle``, no sockets:
``core/lifelines.py`` (``_host_shares``: what the origin pushes to the thieves waiting on
its lifeline when its view does not reach every peer of its program) and ``core/roster.py``
(a worker whose link to the origin died sends its row once the origin's fence is over).
"""

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.events import Received, Submit, Tick
from p2pscoop.core.membership import Identity
from p2pscoop.core.node import NodeState
from p2pscoop.core.roster import FENCE

from test_membership import LIVE, hello_of, peer_id

ME = b"m" * 16


def ident(rank=0, host="o"):
    return Identity(ME, rank, f"tcp://{host}:{rank}", host, "lab", "cpython-3.11", 5, "1.0",
                    size=3)


def origin_with_thieves(hosts, far, busy=()):
    """An origin (host o) linked to one peer per entry of ``hosts`` (its host), each of
    which (but those whose index is in ``busy``) asked for work and was denied; ``far``:
    {host: peers of the program there that the origin is not linked to} (ROSTER rows)."""
    n = NodeState(ME, identity=ident(), liveness=LIVE)
    links = [peer_id(i) for i in range(len(hosts))]
    for i, (peer, host) in enumerate(zip(links, hosts)):
        n.handle(Received(peer, hello_of(peer, i + 1, host=host)), 0.0)
    rows, k = [], 20
    for host, count in far.items():
        for _ in range(count):
            rows.append([peer_id(k), f"tcp://{host}:{k}", k, host])
            k += 1
    if rows:
        n.handle(Received(links[0], M.Roster(rows, [])), 0.1)
    for peer in [p for i, p in enumerate(links) if i not in busy]:
        assert n.handle(Received(peer, M.Steal(1)), 0.2) == [
            C.SendMsg(peer, M.Give(1, []))]
    return n, links


def pushed(cmds):
    return {c.peer: sum(w.units for w in c.works) for c in cmds
            if type(c) is C.ShipWorks and c.req == 0}


def test_the_origin_pushes_each_host_its_peers_share_through_its_links_there():
    # links: its host mate (o), two peers of host a, one of host b; host a has 8 more
    # peers the origin is not linked to. Weights: mate 1, each link on a 10/2, b 1, the
    # origin 1 (13 in all): of 130 units, 50 to each link on a, 10 to the others and us
    n, (mate, a1, a2, b) = origin_with_thieves(["o", "a", "a", "b"], {"a": 8})
    assert n.program_size() == 13
    cmds = n.handle(Submit(n.new_job(abs, [(i,) for i in range(130)])), 1.0)
    assert pushed(cmds) == {mate: 10, a1: 50, a2: 50, b: 10} and n.deque.total == 10


def test_a_busy_link_still_feeds_its_host_so_the_hungry_ones_get_no_more():
    # a2 asked for nothing: a1 is one of two links to host a (weight 10/2), not its only
    # way; of 80 units, 50 to a1, 10 to the mate, to b and to us
    n, (mate, a1, a2, b) = origin_with_thieves(["o", "a", "a", "b"], {"a": 8}, busy=(2,))
    cmds = n.handle(Submit(n.new_job(abs, [(i,) for i in range(80)])), 1.0)
    assert pushed(cmds) == {mate: 10, a1: 50, b: 10} and n.deque.total == 10


def test_pushes_as_before_when_the_origin_reaches_every_peer():
    n, links = origin_with_thieves(["o", "a", "a", "b"], {})
    cmds = n.handle(Submit(n.new_job(abs, [(i,) for i in range(100)])), 1.0)
    assert sorted(pushed(cmds).values()) == [20, 20, 20, 20] and n.deque.total == 20


def test_a_worker_whose_link_to_the_origin_died_sends_its_row_after_the_fence():
    # the origin declared us dead (a link muted one way) and struck us from its count:
    # our rows within FENCE ping intervals of that are taken for late ones, so our next
    # row goes after the fence, not at once (nor a whole refresh later)
    w = NodeState(ME, identity=ident(rank=5, host="a"), liveness=LIVE)
    origin, other = peer_id(0), peer_id(1)
    w.handle(Received(origin, hello_of(origin, 0)), 0.0)
    w.handle(Received(other, hello_of(other, 1)), 0.0)
    w.handle(Received(other, M.Ping([], origin, 1, 1, 3)), 0.5)
    w.handle(Received(other, M.Ping([], origin, 5, 1, 3)), 4.0)  # the origin is alive
    cmds = w.handle(Tick(), 5.0)  # our link to it: silent for 5 s, dead
    assert any(type(c) is C.Left and c.peer == origin for c in cmds)
    assert not [c for c in cmds if type(c) is C.SendMsg and type(c.msg) is M.Roster]
    assert w._announce_at == 5.0 + (FENCE + 1) * LIVE.ping_interval
    late = w.handle(Received(other, M.Ping([], origin, 9, 1, 3)), 9.5)
    assert [c.peer for c in late if type(c) is C.SendMsg and type(c.msg) is M.Roster] == [
        other]
