"""Every program in examples/ runs, passes its own self-check and prints its checkable result.

Each example runs twice, as a user would run it:
  * under the launcher, ``python -m p2pscoop -n 2 example.py args`` (real peers on loopback);
  * on its own, ``python example.py args``, where the API runs the tasks serially.
Both must exit 0 and end with the same lines. The tests assert behaviour only, never timings.
The examples are located from this file, and run from a scratch directory, so neither the
cwd of pytest nor that of the examples matters.
"""

import ast
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
RUN_TIMEOUT = 100  # seconds; below the pytest timeout so a hang reports its output

# (example, arguments, the lines its output must end with). Arguments are small on purpose.
CASES = [
    pytest.param("map_doc.py", [], ["Hello World from Future #%i" % i for i in range(16)],
                 id="map_doc"),
    pytest.param("map_scan.py", [], [
        "mapScan:    [0, 1, 5, 14, 30, 55, 91, 140, 204, 285, 385, 506, 650, 819, 1015, 1240]",
        "accumulate: [0, 1, 5, 14, 30, 55, 91, 140, 204, 285, 385, 506, 650, 819, 1015, 1240]",
    ], id="map_scan"),
    pytest.param("map_reduce.py", [], ["mapReduce: 328350", "serial:    328350"],
                 id="map_reduce"),
    pytest.param("callback.py", [],
                 ["callbacks: [1, 2, 3, 4, 5], as_completed: [1, 2, 3, 4, 5]"], id="callback"),
    pytest.param("shared_constants.py", [], ["best word: quartz (24 points)"],
                 id="shared_constants"),
    pytest.param("shared_constants.py", ["french"], ["best word: enzyme (25 points)"],
                 id="shared_constants_french"),
    pytest.param("exceptions.py", [],
                 ["caught ValueError: cannot take the square root of -4.0"], id="exceptions"),
    pytest.param("fib_nested.py", ["24", "16"], ["fib(24) = 46368"], id="fib_nested"),
    pytest.param("uts.py", ["--root", "50", "--mean", "0.99", "--depth", "100",
                            "--chunk", "100", "--seed", "1"],
                 ["parallel count: 4611 nodes", "nodes = 4611: OK (same as a serial traversal)"],
                 id="uts"),
    pytest.param("pi_montecarlo.py", ["20", "5000"],
                 ["pi ~ 3.148760 +/- 0.005193: OK (error below 6 standard errors)"],
                 id="pi_montecarlo"),
]

MODES = {
    "p2pscoop": lambda path: [sys.executable, "-m", "p2pscoop", "-n", "2", str(path)],
    "serial": lambda path: [sys.executable, str(path)],
}


def run_example(mode, name, args, cwd):
    """Run one example; return (exit status, stdout lines, stderr text)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = MODES[mode](EXAMPLES / name) + list(args)
    # Its own session, so that every process the run starts can be ended with it.
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail("%s did not finish in %i s\nstdout:\n%s\nstderr:\n%s"
                    % (" ".join(argv), RUN_TIMEOUT, out, err))
    finally:
        try:  # peers left behind by a failed run must not outlive the test
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return proc.returncode, out.splitlines(), err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name, args, tail", CASES)
def test_example(mode, name, args, tail, tmp_path):
    status, lines, err = run_example(mode, name, args, tmp_path)
    report = "stdout:\n%s\nstderr:\n%s" % ("\n".join(lines), err)
    assert status == 0, report
    assert lines[-len(tail):] == tail, report


@pytest.mark.timeout(120)
def test_callback_runs_once_per_future(tmp_path):
    status, lines, err = run_example("p2pscoop", "callback.py", [], tmp_path)
    assert status == 0, err
    assert sorted(line for line in lines if line.startswith("callback: ")) == [
        "callback: %i" % i for i in range(1, 6)]


@pytest.mark.timeout(120)
def test_exception_keeps_remote_traceback_text(tmp_path):
    status, lines, err = run_example("p2pscoop", "exceptions.py", [], tmp_path)
    assert status == 0, err
    assert "rms([1.0, 4.0, 9.0]) = 2.160247" in lines
    # The failing task's own frame appears in the text, wherever the task ran: its file
    # and its source line (a function of the program travels by value, and its file name
    # with it: ``pickler._code_reduce``).
    assert any("checked_sqrt" in line for line in lines[:-1]), "\n".join(lines)
    assert any('exceptions.py", line' in line and "in checked_sqrt" in line
               for line in lines), "\n".join(lines)
    assert any('raise ValueError("cannot take the square root' in line
               for line in lines), "\n".join(lines)


@pytest.mark.timeout(120)
def test_pi_is_deterministic_across_runtimes(tmp_path):
    """Per-task seeds make the estimate independent of who ran which task."""
    args = ["30", "3000", "7"]
    estimates = []
    for mode in ("serial", "p2pscoop"):
        status, lines, err = run_example(mode, "pi_montecarlo.py", args, tmp_path)
        assert status == 0, err
        estimates.append([line for line in lines if re.match(r"value of pi = \d", line)])
    assert estimates[0] == estimates[1] and len(estimates[0]) == 1


def test_every_example_is_tested_and_documented():
    examples = sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert examples == sorted({case.values[0] for case in CASES})
    for name in examples:
        docstring = ast.get_docstring(ast.parse((EXAMPLES / name).read_text()))
        assert docstring, "%s has no docstring" % name
        assert "python -m p2pscoop -n" in docstring, "%s does not say how to run it" % name
