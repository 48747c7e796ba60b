"""The loaded link first (``core/policy.py``, ``_loaded``; protocol 8): a GIVE and a HINT
say how many units their sender still has queued (``left``); a thief's next round asks
first the link that said most, a denial forgets what it said, and a link that said too
little (``StealConfig.loaded_min``) is asked in the usual order."""

from __future__ import annotations

import random

from p2pscoop.core import messages as M
from p2pscoop.core.config import StealConfig
from p2pscoop.core.messages import Give, Steal
from p2pscoop.core.node import Idle, Received, SendMsg, ShipWorks, Submit
from p2pscoop.core.policy import StealPolicy

from test_node import P1, P2, P3, foreign, give, make_node, submit


def policy(**config):
    return StealPolicy(StealConfig(**config), random.Random(0))


def test_the_link_that_said_most_is_asked_first_and_forgotten_once_it_denies():
    p = policy()
    p.on_load(P2, 3)
    p.on_load(P3, 12)
    assert p.choose_victim([P1, P2, P3], 0.0) == P3
    p.on_denied(P3)  # it had nothing after all: what it said is forgotten
    assert P3 not in p.loads
    assert p.choose_victim([P1, P2, P3], 0.0) == P2
    p.on_denied(P2)
    assert p.choose_victim([P1, P2, P3], 0.0) == P1  # the last one left in the round
    p.on_denied(P1)
    p.choose_victim([P1, P2, P3], 0.0)  # (ends the round)
    assert not p.loads


def test_a_link_with_too_little_or_gone_is_asked_in_the_usual_order():
    p = policy(loaded_min=4)
    p.on_load(P3, 3)  # below loaded_min: it is no better than any other link
    p.source = P1
    assert p.choose_victim([P1, P2, P3], 0.0) == P1  # the source, as before
    p.on_load(P2, 0)  # said it has nothing left
    assert P2 not in p.loads
    p.on_load(P2, 9)
    p.forget_peer(P2)
    assert P2 not in p.loads
    off = policy(loaded_min=0)
    off.on_load(P2, 50)
    off.source = P1
    assert off.choose_victim([P1, P2], 0.0) == P1


def test_a_hint_says_how_much_its_sender_holds():
    p = policy()
    p.on_hint(P2, 7)
    p.on_hint(P3)  # (0: not said)
    assert p.loads == {P2: 7}


def test_a_victim_says_what_it_has_left_and_the_thief_asks_it_first_next_time():
    victim = make_node(P1)
    submit(victim, 10)
    cmds = victim.handle(Received(P1, Steal(1)), 0.0)
    ship = [c for c in cmds if type(c) is ShipWorks]
    assert len(ship) == 1 and ship[0].left == victim.deque.total > 0
    given = sum(w.units for w in ship[0].works)
    assert ship[0].left == 10 - given
    # the GIVE on the wire carries it
    msg, bad = M.give_message(1, ship[0].works, P1, lambda w: b"w", ship[0].left)
    assert not bad and M.decode(M.encode(msg)).left == ship[0].left

    thief = make_node(P1, P2, P3)
    out = thief.handle(Idle(), 0.0)
    (ask,) = [c for c in out if type(c) is SendMsg]
    req = ask.msg.req
    works = [foreign(P2, 5, 0, 1)]
    msg = give(works, req)
    msg.left = 6
    thief.handle(Received(ask.peer, msg, works), 0.0)
    assert thief.policy.loads == {ask.peer: 6}


def test_a_push_says_what_is_left_after_it():
    n = make_node(P1)
    assert n.handle(Received(P1, Steal(1)), 0.0) == [SendMsg(P1, Give(1, []))]
    work = n.new_job(abs, [(i,) for i in range(6)])
    out = n.handle(Submit(work), 0.0)  # our own work: the remembered thief's share, pushed
    (push,) = [c for c in out if type(c) is ShipWorks]
    assert push.req == 0 and push.left == n.deque.total == 6 - sum(w.units for w in push.works)
