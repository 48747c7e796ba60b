"""The in-memory transport (``p2pscoop/transport/memory.py``) on its own.

Both modes deliver each link in order; the stepped mode picks links with the RNG given,
the timed mode by due time (jittered latency, never overtaking on a link). The faults do
what the simulators rely on: a killed node's links drop (or drain, then ``Disconnected``),
a cut loses both directions until healed, a mute loses one until a time, a frozen node
reads late but in order, a duplicate is marked. With ``connections`` the mesh's rules hold:
no send without ``connect``, no payload-carrying message before ``admit``.
"""

import pickle
import random

import pytest

from p2pscoop.core import messages as M
from p2pscoop.core.deque import Work
from p2pscoop.core.events import Disconnected, Received
from p2pscoop.transport.memory import MemoryNet

A, B, C = b"A" * 16, b"B" * 16, b"C" * 16


def net(*ids, **kw):
    n = MemoryNet(random.Random(kw.pop("seed", 1)), **kw)
    for pid in ids or (A, B, C):
        n.add(pid)
    return n


def drain(n, link=None):
    out = []
    while n.busy_links():
        if link is not None and link not in n.busy_links():
            break
        out.append(n.deliver(link))
    return out


def test_each_link_delivers_in_order_and_links_interleave_by_the_rng():
    n = net()
    for i in range(20):
        n.send(A, B, M.Steal(i))
        n.send(C, B, M.Steal(100 + i))
    got = drain(n)
    assert all(dst == B and type(ev) is Received for dst, ev in got)
    from_a = [ev.msg.req for _, ev in got if ev.peer == A]
    from_c = [ev.msg.req for _, ev in got if ev.peer == C]
    assert from_a == list(range(20)) and from_c == list(range(100, 120))
    order = [ev.peer for _, ev in got]
    assert order != [A] * 20 + [C] * 20  # interleaved
    # same seed, same order and the same trace
    m = net()
    for i in range(20):
        m.send(A, B, M.Steal(i))
        m.send(C, B, M.Steal(100 + i))
    assert [ev.peer for _, ev in drain(m)] == order and m.trace() == n.trace()
    assert n.sent["Steal"] == 40 and n.delivered == 40


def test_a_give_is_decoded_with_the_loads_given():
    def dumps(w):
        return pickle.dumps((w.fn, w.items[w.lo - w.base:w.hi - w.base]))

    def loads(payload, owner, job, lo, hi):
        fn, items = pickle.loads(payload)
        return Work(owner, job, lo, hi, fn, items, lo)

    n = net(loads=loads)
    mine = Work(B, 3, 0, 2, abs, [(-1,), (-2,)])
    theirs = Work(C, 4, 5, 7, abs, [(-5,), (-6,), (-7,)], 5)
    msg, bad = M.give_message(9, [mine, theirs], B, dumps)
    assert not bad
    n.send(A, B, msg)
    (dst, ev), = drain(n)
    assert dst == B and ev.msg.req == 9
    own, stolen = ev.works
    assert (own.owner, own.job, own.lo, own.hi, own.fn) == (B, 3, 0, 2, None)
    assert (stolen.owner, stolen.lo, stolen.hi, stolen.items) == (C, 5, 7, [(-5,), (-6,)])
    assert stolen is not theirs and stolen.args_of(5) == (-5,)


def test_kill_without_drain_loses_its_messages_and_tells_everyone_at_once():
    n = net()
    n.send(A, B, M.Hint())
    n.send(B, A, M.Hint())
    n.send(C, B, M.Hint())
    told = n.kill(A)
    assert told == [(B, Disconnected(A)), (C, Disconnected(A))]
    assert [(d, ev.peer) for d, ev in drain(n)] == [(B, C)]
    assert not n.send(B, A, M.Hint()) and n.lost["to the dead"] == 1


def test_kill_with_drain_delivers_what_it_sent_then_disconnected():
    n = net()
    n.send(A, B, M.Steal(1))
    n.send(A, B, M.Steal(2))
    assert n.kill(A, drain=True) == []
    got = drain(n, (A, B))
    assert [type(ev) for _, ev in got] == [Received, Received, Disconnected]
    assert [(A, C)] == n.busy_links()


def test_a_cut_loses_both_directions_until_healed():
    n = net()
    n.send(A, B, M.Hint())
    n.send(B, A, M.Hint())
    assert n.cut(A, B) == [(A, Disconnected(B)), (B, Disconnected(A))]
    assert not n.busy_links() and n.is_cut(B, A)
    assert not n.send(A, B, M.Hint()) and n.lost["cut"] == 1
    n.send(A, C, M.Hint())
    n.heal(B, A)
    assert n.send(A, B, M.Hint())
    assert sorted(ev.peer + d for d, ev in drain(n)) == sorted([A + C, A + B])


def test_a_duplicate_is_a_marked_copy_of_a_remembered_delivery():
    n = net(remember=lambda msg: type(msg) is M.Results)
    assert n.duplicate() is None
    n.send(A, B, M.Results([[B, 1, 0, M.OK]], payloads=[b"x"]))
    n.send(A, B, M.Hint())
    drain(n)
    copy = n.duplicate()
    assert copy.dup and copy.msg.entries == [[B, 1, 0, M.OK]]
    (dst, ev), = drain(n)
    assert dst == B and type(ev.msg) is M.Results and len(n.history) == 1


def test_a_one_way_mute_ends_at_its_time():
    n = net(latency=0.001)
    n.mute(A, B, until=1.0)
    assert not n.send(A, B, M.Hint(), now=0.5) and n.lost["muted"] == 1
    assert n.send(B, A, M.Hint(), now=0.5)
    assert n.send(A, B, M.Hint(), now=1.0)


def test_timed_links_stay_in_order_under_jitter():
    n = net(latency=0.01)
    for i in range(50):
        n.send(A, B, M.Steal(i), now=i * 1e-4)
        n.send(C, B, M.Steal(100 + i), now=i * 1e-4)
    got, now = [], 0.0
    while (due := n.next_due()) is not None:
        assert due >= now
        now = due
        got.append(n.pop(now))
    assert n.pop(now + 1) is None
    by = {A: [], C: []}
    for dst, ev in got:
        by[ev.peer].append(ev.msg.req)
    assert by[A] == list(range(50)) and by[C] == list(range(100, 150))
    assert [ev.peer for _, ev in got] != [A] * 50 + [C] * 50  # the jitter interleaves


def test_a_frozen_node_reads_late_and_in_order():
    n = net(latency=0.01)
    n.pause(B, until=5.0)
    for i in range(5):
        n.send(A, B, M.Steal(i), now=0.0)
    n.send(A, C, M.Steal(99), now=0.0)
    got = []
    while (due := n.next_due()) is not None:
        dst, ev = n.pop(due)
        if ev is not None:
            got.append((due, dst, ev.msg.req))
    assert got[0][1:] == (C, 99) and got[0][0] < 1
    assert [g[2] for g in got[1:]] == list(range(5)) and all(g[0] >= 5.0 for g in got[1:])


def test_what_is_sent_to_a_frozen_node_as_it_wakes_up_still_arrives_after_the_rest():
    """A message sent just before a frozen node wakes up, due just after it wakes up, must
    not overtake the messages that waited for it (found by test_scale's 1,000 peers)."""
    n = net(latency=0.01)
    n.rng.random = lambda: 0.5  # no jitter: a message is due 10 ms after it is sent
    n.pause(B, until=5.0)
    n.send(A, B, M.Steal(0), now=0.0)
    assert n.pop(0.01) == (B, None)  # due while frozen: deferred to its waking up (+10 µs)
    n.send(A, B, M.Steal(1), now=4.990005)  # due 5 µs after it wakes up
    got = []
    while (due := n.next_due()) is not None:
        dst, ev = n.pop(due)
        if ev is not None:
            got.append(ev.msg.req)
    assert got == [0, 1]


def test_connections_send_only_when_connected_and_read_payloads_only_when_admitted():
    n = net(latency=0.001, connections=True)
    assert not n.send(A, B, M.Hint()) and n.lost["unlinked"] == 1
    assert n.send(A, B, M.Refuse("no"), need_link=False)  # a throwaway connection
    n.connect(A, B)
    n.send(A, B, M.Hint())
    got = [n.pop(n.next_due()) for _ in range(2)]
    assert type(got[0][1].msg) is M.Refuse and got[1] == (B, None)  # not admitted
    assert n.lost["unadmitted"] == 1
    n.admit(B, A)
    n.send(A, B, M.Hint())
    assert type(n.pop(n.next_due())[1].msg) is M.Hint
    n.drop(A, B)
    assert not n.connected(A, B) and not n.send(A, B, M.Hint())


def test_a_killed_node_breaks_only_connections_to_it():
    n = net(latency=0.001, connections=True)
    n.connect(B, A)
    n.connect(A, C)  # C has no connection to A: it hears nothing
    n.kill(A, now=0.0, drain=True)
    got = []
    while (due := n.next_due()) is not None:
        got.append(n.pop(due))
    assert got == [(B, Disconnected(A))]
    assert n.connection_count(B) == 0


def test_killing_twice_is_a_bug():
    n = net()
    n.kill(A)
    with pytest.raises(AssertionError):
        n.kill(A)
