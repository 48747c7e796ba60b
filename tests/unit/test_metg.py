"""The METG arithmetic of ``tools/bench/_metg_report.py``: the threshold crossing with
log-linear interpolation, "<= min" / "> max", unmeasured points, the serial baseline,
the spread over repeats and the target verdicts; plus the sweep sizes of the driver and
the correctness of the busy-wait workloads run inline."""

import math
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "tools", "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import _metg_driver as drv  # noqa: E402
import _metg_report as mr  # noqa: E402
import backends  # noqa: E402
import workloads  # noqa: E402

M = mr.Metg


def _close(a, b):
    return a.rel == b.rel and math.isclose(a.value, b.value, rel_tol=1e-9)


@pytest.mark.parametrize("curve, threshold, want", [
    # crossing half-way in efficiency between 10 and 100 µs -> geometric mean
    ([(1e-5, 0.3), (1e-4, 0.7), (1e-3, 0.95)], 0.5, M(math.sqrt(1e-5 * 1e-4), "=")),
    # a quarter of the way in efficiency -> a quarter of the way in log(d)
    ([(1e-5, 0.1), (1e-4, 0.9)], 0.3, M(10 ** -4.75, "=")),
    # exactly on a sweep point
    ([(1e-5, 0.2), (1e-4, 0.5), (1e-3, 0.9)], 0.5, M(1e-4, "=")),
    ([(1e-5, 0.2), (1e-4, 0.5), (1e-3, 0.9)], 0.9, M(1e-3, "=")),
    # already efficient at the shortest duration
    ([(1e-5, 0.6), (1e-4, 0.8)], 0.5, M(1e-5, "<=")),
    # never efficient enough
    ([(1e-5, 0.1), (1e-4, 0.4), (1e-3, 0.49)], 0.5, M(1e-3, ">")),
    # the order of the input does not matter
    ([(1e-3, 0.95), (1e-5, 0.3), (1e-4, 0.7)], 0.5, M(math.sqrt(1e-5 * 1e-4), "=")),
    # the *smallest* duration reaching the threshold counts, even after a dip above it
    ([(1e-5, 0.2), (1e-4, 0.6), (1e-3, 0.45), (1e-2, 0.8)], 0.5,
     M(math.exp(math.log(1e-5) + 0.75 * math.log(10)), "=")),
    # unmeasured (skipped) points never reach; no interpolation against them
    ([(1e-5, None), (1e-4, 0.7)], 0.5, M(1e-4, "<=")),
    ([(1e-5, None), (1e-4, None)], 0.5, M(1e-4, ">")),
])
def test_metg_table(curve, threshold, want):
    assert _close(mr.metg(curve, threshold), want)


def test_metg_of_an_empty_curve_is_an_error():
    with pytest.raises(ValueError):
        mr.metg([], 0.5)


def test_efficiency():
    assert mr.efficiency(1.0, 0.5) == 1.0
    assert mr.efficiency(1.0, 1.0, workers=2) == 0.5
    assert mr.efficiency(None, 1.0) is None
    assert mr.efficiency(1.0, None) is None


def test_spread_orders_never_reached_last_and_takes_an_actual_median():
    runs = [M(3e-4, "="), M(1e-1, ">"), M(1e-5, "<="), M(2e-4, "=")]
    lo, med, hi = mr.spread(runs)
    assert lo == M(1e-5, "<=") and hi == M(1e-1, ">")
    assert med == M(2e-4, "=")  # lower median of 4: an actual run's result


def test_formatting():
    assert mr.fmt_duration(4.642e-5) == "46.4 µs"
    assert mr.fmt_duration(2.154e-3) == "2.15 ms"
    assert mr.fmt_metg(M(1e-5, "<=")) == "≤ 10 µs"
    assert mr.fmt_metg(M(0.1, ">")) == "> 100 ms"


@pytest.mark.parametrize("mine, other, limit, want", [
    (M(2e-5, "="), M(1e-5, "="), 2.0, "yes"),
    (M(3e-5, "="), M(1e-5, "="), 2.0, "NO"),
    (M(1.5e-5, "="), M(1e-5, "<="), 2.0, "undecided"),  # other may be far below 10 µs
    (M(3e-5, "="), M(1e-5, "<="), 2.0, "NO"),  # 3x even if other were exactly 10 µs
    (M(1e-5, "<="), M(1e-5, "<="), 2.0, "undecided"),
    (M(1e-3, "="), M(0.1, ">"), 2.0, "yes"),
    (M(0.1, ">"), M(1e-3, "="), 2.0, "NO"),
])
def test_ratio_verdict(mine, other, limit, want):
    assert mr.ratio_verdict(mine, other, limit) == want


@pytest.mark.parametrize("mine, other, want", [
    (M(1e-4, "="), M(2e-4, "="), "yes"),
    (M(2e-4, "="), M(1e-4, "="), "NO"),
    (M(1e-4, "="), M(0.1, ">"), "yes"),
    (M(1e-5, "<="), M(1e-5, "<="), "undecided"),
    (M(0.1, ">"), M(0.1, ">"), "undecided"),
])
def test_below_verdict(mine, other, want):
    assert mr.below_verdict(mine, other) == want


def _run(backend, rep, points):
    return {"backend": backend, "repeat": rep, "load": 1.0, "status": "ok", "detail": "",
            "points": [{"workload": w, "d": d, "seconds": s, "tasks": 10, "check": True}
                       for w, d, s in points]}


def test_serial_baseline_curves_and_summary():
    durations = [1e-4, 1e-3]
    runs = [
        _run("serial", 1, [("map", 1e-4, 1.2), ("map", 1e-3, 1.0)]),
        _run("serial", 2, [("map", 1e-4, 1.0), ("map", 1e-3, 1.5)]),
        _run("p2pscoop", 1, [("map", 1e-3, 0.5), ("map", 1e-4, 2.0)]),
        _run("p2pscoop", 2, [("map", 1e-3, 1.0)]),  # 100 µs skipped by the stop rule
    ]
    base = mr.serial_baseline(runs)
    assert base == {("map", 1e-4): 1.0, ("map", 1e-3): 1.0}  # the fastest measurement
    cells = mr.curves(runs, base, durations)
    assert cells[("p2pscoop", "map")] == [[(1e-4, 0.25), (1e-3, 1.0)],
                                          [(1e-4, None), (1e-3, 0.5)]]
    summary = mr.summarize(cells)
    lo, med, hi = summary[("p2pscoop", "map")][0.5]
    assert lo.rel == "=" and math.isclose(lo.value, 10 ** (-4 + 1 / 3))
    assert hi == M(1e-3, "<=")  # reached at 1 ms, the shorter point not measured
    assert mr.median_curve(cells[("p2pscoop", "map")]) == [(1e-4, 0.25, 0.25, 0.25),
                                                           (1e-3, 0.5, 0.75, 1.0)]


def test_driver_sizes():
    assert drv.sizes(1e-3, 1.2, 16, 32768, 14) == (1200, 10)
    assert drv.sizes(1e-1, 1.2, 16, 32768, 14) == (16, 4)  # at least nmin tasks
    assert drv.sizes(1e-6, 1.2, 16, 32768, 14) == (32768, 14)  # capped
    n, _ = drv.sizes(3e-4, 1.0, 16, 32768, 14)
    assert n % 2 == 0


def test_the_full_sweep_goes_below_one_microsecond_on_its_grid():
    """A system 50% efficient at 1 µs (``Pool`` on the map) must get a METG, not "<= 1 µs":
    the sweep starts at 46.4 ns (``Pool`` was 44-56% efficient at 0.215 µs), 3 durations
    per decade throughout."""
    import metg
    durations = metg.PLANS["full"]["durations"]
    assert durations[:5] == [4.642e-08, 1e-07, 2.154e-07, 4.642e-07, 1e-06]
    assert durations[-1] == 0.1
    steps = [b / a for a, b in zip(durations, durations[1:])]
    assert all(math.isclose(s, 10 ** (1 / 3), rel_tol=1e-3) for s in steps)


def test_driver_rejects_unknown_parameters():
    with pytest.raises(ValueError, match="bad argument"):
        drv.parse(["colour=blue"])
    with pytest.raises(ValueError, match="unknown METG workload"):
        drv.parse(["workloads=map,ring"])
    spec = drv.parse(["durations=0.001,0.1,0.01", "clock=cpu"])
    assert spec["durations"] == [0.1, 0.01, 0.001]  # longest first


@pytest.mark.parametrize("clock", workloads.METG_CLOCKS)
def test_busy_wait_workloads_inline(clock):
    jobs = workloads.metg_map_jobs(6, 1e-5, clock)
    assert workloads.check_metg_map(6, list(map(workloads.metg_spin_task, jobs)))[0]
    result = workloads.metg_tree_task(backends.InlineFork(), 3, 1e-5, clock)
    assert result == 8 and workloads.check_metg_tree(3, result)[0]
    assert not workloads.check_metg_tree(3, 7)[0]
