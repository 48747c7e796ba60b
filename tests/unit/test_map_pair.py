"""``tools/bench/map_pair.py``'s parsing and table (no runtime, no timing): durations are
seconds, comma-separated and non-negative; the table gives, per duration (shortest
first) and tree, min / median / max of each figure over the runs."""

import argparse
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "tools", "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import map_pair  # noqa: E402


@pytest.mark.parametrize("text, want", [
    ("1e-6", [1e-6]),
    ("3e-7,5e-7,1e-6", [3e-7, 5e-7, 1e-6]),
    ("0.001, 0.0001,", [0.001, 0.0001]),
    ("0", [0.0]),
])
def test_durations_parse(text, want):
    assert map_pair._durations(text) == want


@pytest.mark.parametrize("text", ["", ",", "fast", "1e-6,-1e-6"])
def test_bad_durations_are_clear_errors(text):
    with pytest.raises(argparse.ArgumentTypeError, match="durations"):
        map_pair._durations(text)


def _run(us, eff, home):
    return {"us": us, "eff": eff, "home": home, "serial_us": 1.0}


def test_table_rows_per_duration_and_tree_with_spreads():
    d1, d2 = 1e-6, 3e-7
    results = {
        "old": [{repr(d1): _run(1.2, 0.48, 0.55), repr(d2): _run(0.7, 0.33, 1.0)},
                {repr(d1): _run(1.4, 0.42, 0.56), repr(d2): _run(0.6, 0.35, 1.0)},
                {repr(d1): _run(1.0, 0.50, 0.54), repr(d2): _run(0.8, 0.30, 0.9)}],
        "new": [{repr(d1): _run(1.1, 0.5, 0.5), repr(d2): _run(0.5, 0.4, 0.6)}],
    }
    loads = {"old": [1.0, 2.5, 1.5], "new": [0.4]}
    lines = map_pair.table(results, loads, [d1, d2])
    assert lines[0].startswith("| task | tree |") and len(lines) == 2 + 4
    # shortest duration first, trees in their order
    assert [line.split(" | ")[:2] for line in lines[2:]] == [
        ["| 0.3 µs", "old"], ["| 0.3 µs", "new"], ["| 1 µs", "old"], ["| 1 µs", "new"]]
    old_1us = lines[4]
    assert "1.000 / **1.200** / 1.400" in old_1us  # µs per element: min / median / max
    assert "0.42 / **0.48** / 0.50" in old_1us  # efficiency
    assert "0.54 / **0.55** / 0.56" in old_1us  # the owner's share
    assert old_1us.endswith("| 1.0-2.5 |")  # the load range
    assert "0.500 / **0.500** / 0.500" in lines[3]  # one run: min = median = max
