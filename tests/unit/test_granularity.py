"""The victim's granularity rule (``core/lifelines.py``: ``_cheap``, ``_holding``, ``_cap``,
``_drained``).

A map's units whose function ran faster here than ``StealConfig.ship_unit`` stay on their
peer while it runs through them (one started within ``drain_window``): shipping them and
their results costs the victim more than running them. A peer that stopped running them
(a long task, a program busy elsewhere) gives them as before; a function not run here yet
travels ``probe_units`` at most per GIVE. As in ``test_node.py``: feed events, compare the
exact commands; run lengths are numbers put in the node's table (the scheduler's, in a
runtime) and times are arguments, so nothing here measures a time.
"""

import random

from p2pscoop.core import task as T
from p2pscoop.core.deque import Work
from p2pscoop.core.messages import OK, Give, Hint, Results, Steal
from p2pscoop.core.node import (NodeState, PeerUp, Pop, Received, Resolve, Run, SendMsg,
                                ShipWorks, Submit, Wake)
from p2pscoop.core.policy import StealConfig

ME = b"M" * 16
P1 = b"1" * 16
P2 = b"2" * 16

CHEAP = 0.0000002  # a no-op: below the default ship_unit (0.5 us)
DEAR = 0.001  # a 1 ms task
WINDOW = StealConfig().drain_window
SOON = WINDOW / 2  # a steal while we run through cheap units
LATER = WINDOW * 2  # ... and one after we stopped


def cheap(x):
    return x


def dear(x):
    return x


def make_node(*peers, lengths=None, **config):
    n = NodeState(ME, StealConfig(**config), random.Random(0))
    for p in peers:
        assert n.handle(PeerUp(p), 0.0) == [Wake()]
    n.unit_lengths = {} if lengths is None else lengths
    return n


def submit(n, fn, count, now=0.0):
    work = n.new_job(fn, [(i,) for i in range(count)])
    return work, n.handle(Submit(work), now)


def units(cmd):
    return [(w.job, w.lo, w.hi) for w in cmd.works]


def draining(n, now=0.0):
    """The scheduler starts a cheap unit: we are running through cheap work."""
    out = n.handle(Pop(), now)
    assert type(out[-1]) is Run
    return out[-1]


def test_a_victim_running_through_cheap_work_denies():
    n = make_node(P1, lengths={id(cheap): CHEAP})
    submit(n, cheap, 100)
    draining(n)
    assert n.handle(Received(P1, Steal(1)), SOON) == [SendMsg(P1, Give(1, []))]
    assert n.deque.total == 99 and n.counters.steals_denied == 1
    assert n.unit_state(0, 99) == T.PENDING  # nothing leased


def test_a_victim_that_stopped_running_cheap_work_gives_it():
    """Steals answered during a long task still get work, cheap or not."""
    n = make_node(P1, lengths={id(cheap): CHEAP})
    submit(n, cheap, 100)
    draining(n)
    out = n.handle(Received(P1, Steal(1)), LATER)
    assert [type(c) for c in out] == [ShipWorks] and units(out[0]) == [(0, 50, 100)]


def test_work_worth_shipping_is_granted_as_before():
    n = make_node(P1, lengths={id(dear): DEAR})
    submit(n, dear, 100)
    n.handle(Pop(), 0.0)
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert [type(c) for c in out] == [ShipWorks] and units(out[0]) == [(0, 50, 100)]


def test_a_lone_submit_travels_however_cheap():
    n = make_node(P1, lengths={id(cheap): CHEAP})
    submit(n, cheap, 100)
    draining(n)
    submit(n, cheap, 1)  # job 1: one unit
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert units(out[-1]) == [(1, 0, 1)]


def test_only_the_dear_items_leave_a_mixed_deque():
    n = make_node(P1, lengths={id(cheap): CHEAP, id(dear): DEAR})
    submit(n, dear, 10)  # job 0, the oldest
    submit(n, cheap, 40)  # job 1, run first (the newest)
    draining(n)
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert units(out[-1]) == [(0, 5, 10)]  # half of the eligible units, the cheap stay
    assert n.deque.total == 44


def test_cheap_work_is_no_surplus_the_thief_stays_on_the_lifeline():
    n = make_node(P1, lengths={id(cheap): CHEAP, id(dear): DEAR})
    submit(n, cheap, 100)
    draining(n)
    n.handle(Received(P1, Steal(1)), SOON)  # denied: remembered
    _, out = submit(n, cheap, 100, now=SOON)
    assert out == [Wake()]  # no push, no HINT for work that will not travel
    assert P1 in n._hungry
    _, out = submit(n, dear, 4, now=SOON)  # work worth shipping: pushed to the thief
    assert out[0] == Wake() and type(out[1]) is ShipWorks and out[1].req == 0
    assert units(out[1]) == [(2, 2, 4)] and not n._hungry  # an even share of the dear


def test_a_unit_that_is_not_cheap_starting_serves_the_thieves_kept_waiting():
    """We may be in a long task from now on: the cheap work goes to the thief as before."""
    n = make_node(P1, lengths={id(cheap): CHEAP, id(dear): DEAR})
    submit(n, cheap, 100)
    draining(n)
    n.handle(Received(P1, Steal(1)), SOON)  # denied: remembered
    assert n._drained(Work(P2, 9, 0, 2, cheap, [(0,), (1,)]), SOON) == []  # still cheap
    out = n._drained(Work(P2, 9, 0, 1, dear, [(0,)]), SOON)  # (as ``Pop`` calls it)
    assert [type(c) for c in out] == [ShipWorks] and out[0].req == 0
    assert units(out[0]) == [(0, 51, 100)] and not n._hungry  # its even share, pushed


def test_a_third_partys_cheap_work_is_not_hinted_while_we_run_through_it():
    n = make_node(P1, P2, lengths={id(cheap): CHEAP})
    w = Work(P1, 7, 0, 8, cheap, [(i,) for i in range(8)])
    n.handle(Received(P1, Give(0, [[P1, 7, 0, 8, True]], payloads=[b"w"]), [w]), 0.0)
    draining(n)
    assert n.handle(Received(P2, Steal(1)), SOON) == [SendMsg(P2, Give(1, []))]
    n._hungry.pop(P1, None)
    assert n._hints(SOON) == [] and P2 in n._hungry
    assert n._hints(LATER) == [SendMsg(P2, Hint(7))]  # we stopped: news for the thief


def test_a_thief_takes_its_own_cheap_work_home():
    n = make_node(P1, P2, lengths={id(cheap): CHEAP})
    w = Work(P1, 7, 0, 8, cheap, [(i,) for i in range(8)])
    n.handle(Received(P1, Give(0, [[P1, 7, 0, 8, True]], payloads=[b"w"]), [w]), 0.0)
    draining(n)
    assert n.handle(Received(P2, Steal(1)), SOON) == [SendMsg(P2, Give(1, []))]
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert [type(c) for c in out] == [ShipWorks] and units(out[0]) == [(7, 4, 8)]


def test_a_function_not_run_here_yet_travels_a_probe_at_a_time():
    n = make_node(P1, lengths={id(dear): DEAR}, probe_units=16)
    submit(n, cheap, 1000)  # never run here: unknown
    out = n.handle(Received(P1, Steal(1)), 0.0)
    assert units(out[-1]) == [(0, 984, 1000)]
    n.unit_lengths[id(cheap)] = CHEAP  # it ran: now known cheap, it stays while we run it
    draining(n, SOON)
    assert n.handle(Received(P1, Steal(2)), SOON) == [SendMsg(P1, Give(2, []))]


def test_a_probe_pushed_to_a_hungry_thief_is_capped_too():
    n = make_node(P1, lengths={id(dear): DEAR}, probe_units=16)
    n.handle(Received(P1, Steal(1)), 0.0)
    _, out = submit(n, cheap, 256)
    assert out[0] == Wake() and units(out[1]) == [(0, 240, 256)]


def test_one_dear_unit_is_still_news_for_a_hungry_thief():
    """The broker's pull (``keep=0``: fetched for the thief) hints with one dear unit."""
    n = make_node(P1, P2, lengths={id(dear): DEAR})
    n.handle(Received(P2, Steal(1)), 0.0)
    n.deque.push(Work(P1, 7, 0, 1, dear, [(0,)]))
    assert n._hints(keep=0) == [SendMsg(P2, Hint(1))] and not n._hungry


def test_without_run_lengths_every_unit_may_travel():
    """The core's other tests run with an empty table: sharing as before the rule."""
    n = make_node(P1)
    submit(n, cheap, 1000)
    n.handle(Pop(), 0.0)
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert units(out[-1]) == [(0, 500, 1000)]


def test_ship_unit_zero_ships_whatever_is_asked_for():
    n = make_node(P1, lengths={id(cheap): CHEAP}, ship_unit=0.0)
    submit(n, cheap, 10)
    n.handle(Pop(), 0.0)
    out = n.handle(Received(P1, Steal(1)), SOON)
    assert units(out[-1]) == [(0, 5, 10)]


def test_a_work_that_could_not_be_decoded_starts_without_crashing_the_rule():
    """``payload.loads_work`` turns an undecodable GIVE into a work with no function and
    no items, whose units fail with its error: the rule must take it for what it is (it
    killed every worker of test_bad_input's run once, with a TypeError in ``_cheap``)."""
    n = make_node(P1, lengths={id(None): CHEAP, id(cheap): CHEAP})
    bad = Work(P1, 7, 0, 3, None, None, 0, None, ValueError("cannot unpickle me"))
    rows = [[P1, 7, 0, 3, True]]
    n.handle(Received(P1, Give(0, rows, payloads=[b"w"]), [bad]), 0.0)
    assert n.handle(Pop(), 0.0)[-1] == Run(bad, 0)


def _results(job, indexes):
    return Results([[ME, job, i, OK] for i in indexes], payloads=[b"x"] * len(indexes))


def test_resolving_a_cheap_maps_results_counts_as_running_through_it():
    """The owner busy with its map's results (no unit started for a while) keeps the
    cheap units: shipping more would only bring more results to resolve."""
    n = make_node(P1, P2, lengths={id(cheap): CHEAP})
    submit(n, cheap, 100)
    draining(n)
    out = n.handle(Received(P1, Steal(1)), LATER)  # we stopped running: half goes
    assert units(out[-1]) == [(0, 50, 100)]
    out = n.handle(Received(P1, _results(0, range(50, 60))), 2 * LATER)
    assert [type(c) for c in out] == [Resolve] * 10
    # no unit started since LATER, but the results arrived just now: P2 is denied
    assert n.handle(Received(P2, Steal(1)), 2 * LATER + SOON) == [SendMsg(P2, Give(1, []))]
    # ... and once they stop arriving, the cheap units travel again
    out = n.handle(Received(P2, Steal(2)), 2 * LATER + 2 * WINDOW)
    assert [type(c) for c in out] == [ShipWorks]


def test_results_of_a_dear_map_keep_nothing_back():
    n = make_node(P1, P2, lengths={id(dear): DEAR})
    submit(n, dear, 100)
    n.handle(Pop(), 0.0)
    out = n.handle(Received(P1, Steal(1)), LATER)
    assert units(out[-1]) == [(0, 50, 100)]
    n.handle(Received(P1, _results(0, range(50, 60))), 2 * LATER)
    out = n.handle(Received(P2, Steal(1)), 2 * LATER + SOON)
    assert [type(c) for c in out] == [ShipWorks]


def test_a_program_consuming_a_cheap_maps_results_keeps_its_units():
    n = make_node(P1, lengths={id(cheap): CHEAP, id(dear): DEAR})
    submit(n, cheap, 100)
    draining(n)
    n.consuming(cheap, LATER)  # no unit started since 0: the program reads results
    assert n.handle(Received(P1, Steal(1)), LATER + SOON) == [SendMsg(P1, Give(1, []))]
    n.consuming(dear, 3 * LATER)  # another map's, not cheap: nothing kept back for it
    out = n.handle(Received(P1, Steal(2)), 3 * LATER + SOON)
    assert [type(c) for c in out] == [ShipWorks]


def test_a_functions_typical_run_starts_at_its_second_run():
    """``Scheduler.costs``, the table the rule reads: a first call is cold, so a no-op is
    known (and kept home) from its second run on; until then it travels as a probe."""
    from types import SimpleNamespace

    from p2pscoop.core.config import NodeConfig
    from p2pscoop.runtime.scheduler import Scheduler

    sched = Scheduler(peer=SimpleNamespace(config=NodeConfig()))
    sched._record_length(cheap, 0.000004)  # cold: above ship_unit
    assert id(cheap) not in sched.costs
    sched._record_length(cheap, 0.0000002)
    assert sched.costs[id(cheap)] == 0.0000002
    n = make_node(P1, lengths=sched.costs)
    submit(n, cheap, 100)
    draining(n)
    assert n.handle(Received(P1, Steal(1)), SOON) == [SendMsg(P1, Give(1, []))]
