"""``tools/bench/run.py --nice``: each run's own session gets the niceness asked for, in its
scheduler group (autogroup) and as a process; without it nothing changes.

Real subprocesses; a positive niceness (lower priority) needs no privilege."""

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "bench"))

import run  # noqa: E402

PROBE = ("import os; print(os.getpriority(os.PRIO_PROCESS, 0)); "
         "print(open('/proc/self/autogroup').read().split()[-1] "
         "if os.path.exists('/proc/self/autogroup') else 'none')")


def _child(nice):
    saved = run.NICE
    run.NICE = nice
    try:
        rc, out, err, _, timed_out, _ = run.run_subprocess(
            [sys.executable, "-c", PROBE], dict(os.environ), HERE, 30)
    finally:
        run.NICE = saved
    assert rc == 0 and not timed_out, err
    prio, group = out.split()
    return int(prio), group


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux scheduling")
def test_nice_sets_the_runs_session_and_process_niceness():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    want = min(base + 5, 19)
    prio, group = _child(want)
    assert prio == want
    if group != "none":  # a kernel with autogroups: the new session's group is niced too
        assert int(group) == want


def test_without_nice_a_run_keeps_ours():
    prio, _ = _child(None)
    assert prio == os.getpriority(os.PRIO_PROCESS, 0)
