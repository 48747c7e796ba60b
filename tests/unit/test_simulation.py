"""Many peers, one process: the whole protocol over the simulator of ``sim.py``.

* ``SimulationMachine``: Hypothesis drives submissions, deliveries, peer moves, the clock,
  kills, false failure detections and retransmitted results; after every rule the
  simulator's invariants hold (every unit in exactly one state and, until a false detection,
  in exactly one place; nothing resolved twice), and at the end every submitted unit has
  resolved exactly once, with the right value.
* Seeded runs: 8 peers on a 10,000-unit map plus a nested tree, with and without faults.
"""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize, invariant, precondition,
                                 rule)

from p2pscoop.core.policy import StealConfig
from sim import Sim, fail_some, pinned_negate, square, tree

configs = st.builds(
    StealConfig,
    request_timeout=st.sampled_from([0.002, 0.05, 1.0]),
    max_items=st.sampled_from([1, 2, 256]),
    max_units=st.sampled_from([1, 3, 1 << 20]),
    result_batch=st.sampled_from([1, 3, 128]),
    result_delay=st.sampled_from([0.0, 0.001, 0.02]),
    backoff_min=st.sampled_from([0.0001, 0.0005]),
    backoff_max=st.sampled_from([0.0005, 0.05]),
)

KINDS = {
    "map": lambda size: (square, [(i,) for i in range(size)]),
    "map-raises": lambda size: (fail_some, [(i,) for i in range(size)]),
    "pinned": lambda size: (pinned_negate, [(i,) for i in range(size)]),
    "submit": lambda size: (square, [(size,)]),
    "tree": lambda size: (tree, [(1 + size % 3, 1 + size % 4)]),
}


class SimulationMachine(RuleBasedStateMachine):
    sim: Sim

    @initialize(n=st.integers(2, 6), seed=st.integers(0, 2**32 - 1), config=configs,
                finish=st.sampled_from([1.0, 0.3, 0.05]), first=st.integers(1, 60),
                nested=st.booleans())
    def start(self, n, seed, config, finish, first, nested):
        self.sim = Sim(n, seed, config, finish=finish)
        self.singles = []  # (peer, job) of one-unit top-level jobs: cancel candidates
        # every example starts with some work on the first peer, so that there is
        # something to steal even in the short examples Hypothesis likes to try
        self.sim.submit(self.sim.ids[0], *KINDS["tree" if nested else "map"](first))

    # -- the user --------------------------------------------------------------------------

    @rule(data=st.data(), kind=st.sampled_from(sorted(KINDS)), size=st.integers(1, 25))
    def submit(self, data, kind, size):
        pid = data.draw(st.sampled_from(self.sim.alive), label="on")
        fn, items = KINDS[kind](size)
        job = self.sim.submit(pid, fn, items)
        if len(items) == 1:
            self.singles.append((pid, job))

    @precondition(lambda self: self.singles)
    @rule(data=st.data())
    def cancel(self, data):
        pid, job = data.draw(st.sampled_from(self.singles), label="job")
        if pid in self.sim.alive:
            self.sim.cancel(pid, job)

    # -- the world -------------------------------------------------------------------------

    @rule(n=st.integers(1, 40))
    def step(self, n):
        for _ in range(n):
            self.sim.step()

    @precondition(lambda self: self.sim.busy_links())
    @rule(data=st.data())
    def deliver(self, data):
        links = sorted(self.sim.busy_links())
        self.sim.deliver(data.draw(st.sampled_from(links), label="link"))

    @rule(data=st.data())
    def act(self, data):
        self.sim.act(data.draw(st.sampled_from(self.sim.alive), label="peer"))

    @rule(dt=st.sampled_from([0.0005, 0.003, 0.03, 1.5]))
    def advance_clock(self, dt):
        self.sim.tick(dt)

    # keep two peers alive: with one left, nothing can be stolen any more
    @precondition(lambda self: self.sim.killable() and len(self.sim.alive) > 2)
    @rule(data=st.data(), drain=st.booleans())
    def kill(self, data, drain):
        self.sim.kill(data.draw(st.sampled_from(self.sim.killable()), label="victim"), drain)

    # the same two faults aimed at a peer that holds leased units: the interesting case
    @precondition(lambda self: len(self.sim.alive) > 2 and any(
        h in self.sim.killable() for _o, h in self.sim.leases()))
    @rule(data=st.data(), drain=st.booleans())
    def kill_a_holder(self, data, drain):
        holders = sorted({h for _o, h in self.sim.leases()} & set(self.sim.killable()))
        self.sim.kill(data.draw(st.sampled_from(holders), label="holder"), drain)

    @precondition(lambda self: any(frozenset(p) not in self.sim.cuts for p in self.sim.leases()))
    @rule(data=st.data())
    def cut_a_lease(self, data):
        pairs = [p for p in self.sim.leases() if frozenset(p) not in self.sim.cuts]
        self.sim.cut(*data.draw(st.sampled_from(pairs), label="owner, holder"))

    @precondition(lambda self: len(self.sim.alive) > 1)
    @rule(data=st.data())
    def cut(self, data):
        a, b = data.draw(st.permutations(self.sim.alive), label="pair")[:2]
        if frozenset((a, b)) not in self.sim.cuts:
            self.sim.cut(a, b)

    @precondition(lambda self: self.sim.cuts)
    @rule(data=st.data())
    def heal(self, data):
        self.sim.heal(data.draw(st.sampled_from(sorted(self.sim.cuts, key=sorted)),
                                label="pair"))

    @rule()
    def duplicate_results(self):
        self.sim.duplicate_results()

    # -- checks ----------------------------------------------------------------------------

    @invariant()
    def consistent(self):
        self.sim.check()

    def teardown(self):
        sim = getattr(self, "sim", None)
        if sim is None:
            return
        for pair in list(sim.cuts):
            sim.heal(pair)
        # a few thousand steps are typical; a bound scaled to the work keeps a liveness
        # failure (and Hypothesis's shrinking of it) from running for minutes
        sim.run_until_quiet(max_steps=10_000 + 100 * len(sim.expected), check_every=50)
        sim.check()
        sim.final_check()


SimulationMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None, report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestSimulation = SimulationMachine.TestCase


# -- seeded runs ---------------------------------------------------------------------------

def big_run(seed, faults=False):
    sim = Sim(8, seed)
    origin = sim.ids[0]
    sim.submit(origin, square, [(i,) for i in range(10_000)])
    sim.submit(origin, tree, [(4, 3)])  # 121 units over 5 levels, 81 leaves
    if faults:
        for _ in range(3000):
            sim.step()
        sim.kill(sim.ids[3], drain=False)
        sim.cut(sim.ids[1], sim.ids[2])
        sim.submit(sim.ids[1], tree, [(3, 4)])
        for _ in range(2000):
            sim.step()
        sim.kill(sim.ids[5], drain=True)
        sim.duplicate_results()
        for _ in range(2000):
            sim.step()
        sim.heal(frozenset((sim.ids[1], sim.ids[2])))
    sim.run_until_quiet(max_steps=300_000, check_every=5000)
    sim.check()
    sim.final_check()
    return sim


# seed 8 (and, with hinted thieves not counted as coming, 1, 3, 4, 6): a cycle of steals
# that once lost a unit (``chains.py`` ``_going_home``)
@pytest.mark.parametrize("seed", [1, 2, 8])
def test_ten_thousand_units_and_a_tree_on_eight_peers(seed):
    sim = big_run(seed)
    assert len(sim.resolved) >= 10_001 + 120
    runs = [p.units_run for p in sim.peers.values()]
    # the work spread: every peer ran a real share of it
    assert sum(1 for r in runs if r >= 500) >= 6, runs
    assert sum(runs) >= 10_000 + 121  # at-least-once; exactly once without faults:
    assert sum(runs) == 10_000 + 121
    assert all(p.node.counters.duplicates == 0 for p in sim.peers.values())


def test_ten_thousand_units_with_kills_cuts_and_retransmissions():
    sim = big_run(3, faults=True)
    runs = [p.units_run for p in sim.peers.values()]
    assert sum(1 for r in runs if r >= 300) >= 5, runs


def test_same_seed_same_run():
    def trace(seed):
        sim = Sim(4, seed)
        sim.submit(sim.ids[0], tree, [(3, 3)])
        sim.submit(sim.ids[1], square, [(i,) for i in range(200)])
        sim.run_until_quiet()
        return sim.steps, sim.clock, [p.units_run for p in sim.peers.values()]

    assert trace(5) == trace(5)
    assert trace(5) != trace(6)


def test_a_thief_dies_holding_leased_work():
    sim = Sim(3, 0)
    a, b, c = sim.ids
    sim.submit(a, square, [(i,) for i in range(50)])
    # b steals from a, and the reply reaches b
    sim.act(b)
    while not any(p.node.deque.total for p in (sim.peers[b],)):
        sim.deliver()
    held = sim.peers[b].node.deque.total
    assert held > 0
    sim.kill(b)
    sim.check()
    assert sim.peers[a].node.deque.total >= 50 - held
    sim.run_until_quiet()
    sim.final_check()
    assert sim.peers[a].node.counters.duplicates == 0
