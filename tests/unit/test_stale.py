"""Quiet thieves and the work an owner leaves alone (``core/lifelines.py``, ``_stale``), and
a quiet peer's rounds after work of its own (``core/policy.py``, ``own_work``).

An owner keeps its last queued unit for itself; a thief denied goes quiet after
``quiet_after`` rounds and waits for a lifeline. When the owner does not run that unit
(its program blocks in a foreign wait, or runs a long task), the thief must still get it,
well before its ``quiet_wait``."""

from __future__ import annotations


from p2pscoop.core.messages import Give, Hint, Steal
from p2pscoop.core.node import Idle, Pop, Received, SendMsg, ShipWorks, Tick
from p2pscoop.core.policy import StealConfig

from sim import Sim, square
from test_node import P1, P2, foreign, make_node, submit

STALE = StealConfig().stale_after


def deny(n, thief, req=1, now=0.0):
    """``thief`` asks ``n`` for work and is denied: ``n`` remembers it as hungry."""
    assert n.handle(Received(thief, Steal(req)), now) == [SendMsg(thief, Give(req, []))]
    assert thief in n._hungry


def test_a_lone_unit_left_alone_is_hinted_to_a_waiting_thief():
    n = make_node(P1)
    deny(n, P1)
    submit(n, 1)  # one unit: kept for ourselves, no hint yet
    assert P1 in n._hungry and n.deque.total == 1
    due = n.next_tick(0.0)
    assert due is not None and due <= STALE
    assert n.handle(Tick(), due / 2) == []  # not left alone long enough
    assert n.handle(Tick(), due) == [SendMsg(P1, Hint(1))]
    assert not n._hungry
    # the hinted thief takes it
    cmds = n.handle(Received(P1, Steal(2)), due)
    assert [type(c) for c in cmds] == [ShipWorks] and cmds[0].works[0].units == 1


def test_work_the_owner_runs_through_is_not_stale():
    n = make_node(P1)
    deny(n, P1)
    now = 0.0
    for _ in range(4):  # a unit starts, another is queued, every half ``stale_after``
        submit(n, 1, now=now)
        assert n.handle(Tick(), now) == []
        now += STALE / 2
        n.next_tick(now)  # (the comm thread reads the deadlines at every wake-up)
        assert type(n.handle(Pop(), now)[-1]).__name__ == "Run"
    submit(n, 1, now=now)
    n.next_tick(now)
    assert n.handle(Tick(), now + STALE * 0.9) == [] and P1 in n._hungry


def test_thieves_are_served_once_per_state_of_the_deque():
    n = make_node(P1, P2)
    deny(n, P1)
    deny(n, P2)
    submit(n, 1)
    n.next_tick(0.0)
    assert n.handle(Tick(), STALE) == [SendMsg(P1, Hint(1))]  # one unit, one hint
    assert list(n._hungry) == [P2]
    for k in range(2, 5):  # the same deque: P2 is not hinted again and again
        n.next_tick(k * STALE)
        assert n.handle(Tick(), k * STALE) == []
    cmds = n.handle(Received(P1, Steal(2)), 5 * STALE)  # the hinted thief takes it
    assert [type(c) for c in cmds] == [ShipWorks]
    submit(n, 1, now=6 * STALE)  # a new state of the deque: P2's turn
    n.next_tick(6 * STALE)
    assert n.handle(Tick(), 7 * STALE) == [SendMsg(P2, Hint(1))]


def test_a_thief_is_not_hinted_to_its_own_units_it_may_not_take():
    # units of P1's that reached us from P2 go home from P2 only (``chains.py``)
    n = make_node(P1, P2)
    deny(n, P1)
    deny(n, P2, req=1)
    mine = foreign(P1, 0, 0, 1)
    mine.lessor = P2
    n.deque.push(mine)
    n.next_tick(0.0)
    assert n.handle(Tick(), STALE) == [SendMsg(P2, Hint(1))]
    assert list(n._hungry) == [P1]  # still remembered, for work it may take


def test_a_quiet_thief_gets_a_lone_unit_its_blocked_owner_never_runs():
    """The simulator: the owner submits one unit and its program blocks (it never acts
    again); the other peers went quiet long before. One of them runs the unit, well
    before a quiet peer asks again (``quiet_wait``)."""
    cfg = StealConfig(quiet_after=1, quiet_wait=2.0)
    for seed in range(6):
        sim = Sim(3, seed=seed, config=cfg)
        owner = sim.ids[0]
        for _ in range(400):  # everyone idle: the thieves' rounds end, they go quiet
            sim.step()
        assert all(sim.peers[p].node.policy.failures > cfg.quiet_after for p in sim.ids[1:])
        start = sim.clock
        sim.blocked.add(owner)
        sim.submit(owner, square, [(7,)])
        sim.run_until_quiet(max_steps=20_000)
        assert sim.resolved[(owner, 0, 0)] == ("ok", 49)
        assert sim.peers[owner].units_run == 0
        assert sim.clock - start < cfg.quiet_wait / 4, seed  # (the simulator's clock)


def test_a_quiet_peer_starts_afresh_after_work_of_its_own():
    n = make_node(P1, backoff_min=0.01, backoff_max=0.02, quiet_after=1, quiet_wait=5.0)
    now, req = 0.0, 0
    while True:  # two rounds of denials: quiet
        cmds = n.handle(Idle(), now)
        if cmds:
            req += 1
            n.handle(Received(P1, Give(req, [])), now)
        elif n.policy.failures > 1:
            break
        else:
            now = n.next_deadline(now)
    assert n.handle(Idle(), now) == [] and n.next_deadline(now) >= now + 4.0
    submit(n, 1, now=now)  # our own work...
    assert [type(c) for c in n.handle(Pop(), now)][-1].__name__ == "Run"
    # ... ran; dry again, we ask at once, not after ``quiet_wait``
    assert n.handle(Idle(), now) == [SendMsg(P1, Steal(req + 1))]
    assert n.policy.failures == 0
