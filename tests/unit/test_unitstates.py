"""``core/unitstates.Runs``: a map job's unit states as intervals behave exactly as the
dict of unit -> state they replace (a table of cases, then random sequences of steps
checked against a dict model), and its runs stay sorted, disjoint and maximal."""

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pscoop.core import task as T
from p2pscoop.core.jobs import Job
from p2pscoop.core.unitstates import Runs, drop_range, set_range, states_for, uniform

P, R, L = T.PENDING, T.RUNNING, T.LEASED


def check_invariants(runs: Runs) -> None:
    rows = runs.runs()
    for lo, hi, state in rows:
        assert lo < hi and state is not None
    for (_, hi1, s1), (lo2, _, s2) in zip(rows, rows[1:]):
        assert hi1 <= lo2  # sorted, disjoint
        assert hi1 < lo2 or s1 != s2  # maximal: touching runs differ
    assert len(runs) == sum(hi - lo for lo, hi, _ in rows)


def test_a_new_job_is_one_run_and_a_lone_unit_a_dict():
    runs = states_for(5, P)
    assert type(runs) is Runs and runs.runs() == [(0, 5, P)] and len(runs) == 5
    assert states_for(1, P) == {0: P} and type(states_for(1, P)) is dict
    assert type(Job(0, None, [()] * 3, {}).states) is Runs
    assert Runs(0, P).runs() == [] and not Runs(0, P)


def test_a_claimed_range_splits_the_run_and_its_end_merges_it_back():
    runs = Runs(10, P)
    runs.set_range(0, 4, R)
    assert runs.runs() == [(0, 4, R), (4, 10, P)]
    assert runs.uniform(0, 4) == R and runs.uniform(0, 5) is None
    assert runs.prefix(4, 8, P) == 8 and runs.prefix(4, 20, P) == 10 and runs.prefix(0, 9, P) == 0
    runs.drop_range(0, 4)
    assert runs.runs() == [(4, 10, P)] and len(runs) == 6 and 0 not in runs
    runs.set_range(6, 8, L)
    assert runs.runs() == [(4, 6, P), (6, 8, L), (8, 10, P)]
    runs.set_range(6, 8, P)  # reclaimed: one run again
    assert runs.runs() == [(4, 10, P)]


def test_the_mapping_interface_matches_a_dict():
    runs = Runs(6, P)
    runs[2] = L
    del runs[4]
    assert runs == {0: P, 1: P, 2: L, 3: P, 5: P} and len(runs) == 5
    assert runs.get(4) is None and runs.get(4, "x") == "x" and runs[2] == L
    assert runs.pop(2) == L and runs.pop(2, None) is None
    assert sorted(runs) == [0, 1, 3, 5] and dict(runs.items()) == {0: P, 1: P, 3: P, 5: P}
    try:
        del runs[2]
    except KeyError:
        pass
    else:
        raise AssertionError("deleting an absent unit must raise KeyError")
    check_invariants(runs)


def test_holders_are_runs_too_and_list_their_values_per_unit():
    job = Job(0, None, [()] * 6, {})
    assert type(job.holders) is Runs and not job.holders and len(job.holders) == 0
    set_range(job.holders, 1, 4, b"T")
    set_range(job.holders, 4, 5, b"U")
    assert job.holders.runs() == [(1, 4, b"T"), (4, 5, b"U")]
    assert job.holders.values() == [b"T"] * 3 + [b"U"]
    assert job.holders.items() == [(1, b"T"), (2, b"T"), (3, b"T"), (4, b"U")]
    assert job.holders.pop(2, None) == b"T" and job.holders == {1: b"T", 3: b"T", 4: b"U"}
    assert Job(1, None, [()], {}).holders == {} and type(Job(1, None, [()], {}).holders) is dict


def test_the_helpers_work_on_a_dict_too():
    states = {0: P, 1: P, 2: R}
    assert uniform(states, 0, 2) == P and uniform(states, 0, 3) is None
    assert uniform(states, 2, 2) is None and uniform(states, 2, 4) is None
    set_range(states, 0, 2, L)
    drop_range(states, 2, 5)
    assert states == {0: L, 1: L}


N = 24
STATES = (P, R, L)
step = st.one_of(
    st.tuples(st.just("set"), st.integers(0, N), st.integers(0, N), st.sampled_from(STATES)),
    st.tuples(st.just("drop"), st.integers(0, N), st.integers(0, N), st.none()),
    st.tuples(st.just("one"), st.integers(0, N - 1), st.none(), st.sampled_from(STATES)),
    st.tuples(st.just("del"), st.integers(0, N - 1), st.none(), st.none()),
)


@settings(max_examples=400, deadline=None)
@given(st.integers(0, N), st.lists(step, max_size=30), st.integers(0, N), st.integers(0, N))
def test_random_steps_match_a_dict_model(n, steps, qlo, qhi):
    runs, model = Runs(n, P), dict.fromkeys(range(n), P)
    for op, a, b, state in steps:
        if op == "set":
            runs.set_range(a, b, state)
            model.update(dict.fromkeys(range(a, b), state))
        elif op == "drop":
            runs.drop_range(a, b)
            for i in range(a, b):
                model.pop(i, None)
        elif op == "one":
            runs[a] = state
            model[a] = state
        elif a in model:
            del runs[a]
            del model[a]
        check_invariants(runs)
        assert runs == model and len(runs) == len(model) and list(runs) == sorted(model)
        assert runs.items() == sorted(model.items())
    found = {model.get(i) for i in range(qlo, qhi)}
    assert runs.uniform(qlo, qhi) == (found.pop() if len(found) == 1 else None)
    for state in STATES:
        end = qlo
        while end < qhi and model.get(end) == state:
            end += 1
        assert runs.prefix(qlo, qhi, state) == end
