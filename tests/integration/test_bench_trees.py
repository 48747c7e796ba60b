"""``tools/bench/run.py --trees A,B``: each tree's p2pscoop in turn, every round against one
serial run; the report gives each tree's seconds, its speed-ups per round and its seconds
relative to the first tree's.

Real subprocesses (``python -m p2pscoop -n 2``) on a tiny nested workload; the second tree
is a directory whose ``p2pscoop`` is this repository's (a tree without the bench tools is
timed with the harness's own driver). No timing is asserted, only what the report holds."""

import argparse
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(REPO, "tools", "bench")
sys.path.insert(0, BENCH)

import trees  # noqa: E402

pytestmark = pytest.mark.timeout(240)


def test_two_trees_are_run_in_turn_each_round_against_one_serial_run(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "p2pscoop").symlink_to(os.path.join(REPO, "p2pscoop"))
    out = subprocess.run(
        [sys.executable, os.path.join(BENCH, "run.py"), "--trees", f"{REPO},{other}",
         "--only", "nested", "--repeat", "2", "--set", "nested.n=20",
         "--set", "nested.cutoff=12"],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=220)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {line.split("|")[2].strip(): line for line in out.stdout.splitlines()
            if line.startswith("| nested |")}
    first = os.path.basename(REPO)
    assert set(rows) == {first, "other", "serial"}
    for name in (first, "other"):
        cells = [c.strip() for c in rows[name].split("|")[1:-1]]
        assert cells[2] == "2"  # both rounds ran
        assert len(cells[4].split(" / ")) == 3  # speed-ups: min / median / max
    assert rows[first].rstrip(" |").endswith("1.000")  # the first tree against itself
    progress = [line for line in out.stderr.splitlines() if line.startswith("rep ")]
    # every round: the serial run first, then both trees, in turn
    assert [line.split()[3] for line in progress] == ["serial", first, "other",
                                                       "serial", "other", first]


def test_a_directory_without_a_package_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="no p2pscoop package"):
        trees.resolve(str(tmp_path))


def test_the_report_compares_each_round_with_itself():
    args = argparse.Namespace(workloads=["uts"], profile="default", overrides={})
    rounds = {"uts": [{"serial": 1.0, "a": 0.5, "b": 0.55},
                      {"serial": 2.0, "a": 1.0, "b": 0.9},
                      {"serial": 1.0, "a": None, "b": 0.6}]}  # a failed run is left out
    text = trees.render(args, ["a", "b"], rounds, (1.0, 2.0))
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in text.splitlines() if line.startswith("| uts |")}
    assert rows["a"][2] == "2" and rows["a"][4] == "2.00 / 2.00 / 2.00"
    assert rows["b"][2] == "3" and rows["b"][4] == "1.67 / 1.82 / 2.22"
    assert rows["b"][5] == "1.000"  # 1.1 and 0.9 relative to a's rounds: median 1.0
    assert rows["serial"][2] == "3" and "load 1.00 before, 2.00 after" in text


def test_same_named_trees_are_told_apart_by_path():
    assert trees.labels([("x", "/a/x"), ("x", "/b/x")]) == ["/a/x", "/b/x"]
    assert trees.labels([("x", "/a/x"), ("y", "/b/y")]) == ["x", "y"]
