"""Progress bars (``--progress``, ``p2pscoop.progress()``): drawn on a real terminal.

The program runs under the real launcher with its stderr on a pseudo-terminal (the ``pty``
module), as a user's shell would give it, or on a pipe. A map's tasks block on a gate file
until the test has seen the map's bar, so that the bar is there whatever the machine's
speed; then the test opens the gate and reads the bars to their end. The time limits are
liveness bounds only (a hang fails instead of blocking), never measurements.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOUND = 60.0  # seconds: liveness bound of a run and of waiting for a bar

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

PROGRAM = textwrap.dedent("""\
    import os, sys, time
    from p2pscoop import futures

    GATE, N, KIND = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    def work(x):
        deadline = time.monotonic() + 60  # a safety net only: the test opens the gate
        while GATE != "-" and not os.path.exists(GATE) and time.monotonic() < deadline:
            time.sleep(0.002)
        return 2 * x

    if __name__ == "__main__":
        xs = range(N) if KIND == "list" else (i for i in range(N))
        print("result", sum(futures.map(work, xs)), flush=True)
    """)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    env.pop("COLUMNS", None)
    return env


def _write(tmp_path: Path, text: str = PROGRAM) -> str:
    path = tmp_path / "prog.py"
    path.write_text(text)
    return str(path)


def _launch(args: list[str], stderr, stdout=subprocess.PIPE) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "p2pscoop", "-n", "2", *args],
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                            env=_env(), start_new_session=True)


def _finish(proc: subprocess.Popen) -> tuple[str, str]:
    try:
        out, err = proc.communicate(timeout=BOUND)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        pytest.fail(f"the run did not end: {out!r} {err!r}")
    return (out or b"").decode(), (err or b"").decode()


class Terminal:
    """A pseudo-terminal of 120 x 40 whose output a thread collects."""

    def __init__(self):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def text(self) -> str:
        return b"".join(self.chunks).decode("utf-8", "replace")

    def wait_for(self, pattern: str) -> None:
        deadline = time.monotonic() + BOUND
        while not re.search(pattern, self.text):
            assert time.monotonic() < deadline, f"no {pattern!r} on the terminal:\n{self.text}"
            time.sleep(0.02)

    def close_slave(self) -> None:
        os.close(self.slave)

    def close(self) -> str:
        self.thread.join(BOUND)
        os.close(self.master)
        return self.text


def _screens(text: str) -> list[str]:
    """Every state a bar was drawn in (tqdm redraws in place with carriage returns, and
    moves between bars with cursor escapes, dropped here)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
    return [s for s in re.split(r"[\r\n]", text) if s.strip()]


def test_bars_on_a_terminal_reach_the_total(tmp_path):
    n = 300
    gate = tmp_path / "gate"
    term = Terminal()
    proc = _launch(["--progress", _write(tmp_path), str(gate), str(n), "list"], term.slave)
    term.close_slave()
    try:
        term.wait_for(rf"map work:\s+0%.*\b0/{n}\b")  # the map's bar, total known at once
        gate.touch()
        out, _ = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        text = term.close()
    assert out == f"result {n * (n - 1)}\n"
    screens = _screens(text)
    assert any(re.search(rf"^map work: 100%.*\b{n}/{n}\b", s) for s in screens), text
    run_bars = [s for s in screens if s.startswith("prog.py:")]
    assert run_bars, text
    assert re.search(rf"100%.*\b{n}/{n}\b", run_bars[-1]), run_bars[-1]  # the run's total
    assert "task/s" in run_bars[-1]


def test_the_programs_prints_go_above_the_bars(tmp_path):
    """stdout on the same terminal: each printed line is written whole, above the bars
    (which are cleared and redrawn), not into the middle of one."""
    n = 200
    gate = tmp_path / "gate"
    term = Terminal()
    proc = _launch(["--progress", _write(tmp_path), str(gate), str(n), "list"], term.slave,
                   stdout=term.slave)
    term.close_slave()
    try:
        term.wait_for(rf"map work:.*\b0/{n}\b")  # the map's bar is on the screen
        gate.touch()
        _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        text = term.close()
    assert proc.returncode == 0
    screens = _screens(text)
    assert f"result {n * (n - 1)}" in [s.strip() for s in screens], text
    assert re.search(rf"100%.*\b{n}/{n}\b", [s for s in screens if s.startswith("prog.py:")][-1])


def test_a_generator_shows_a_count_then_its_total(tmp_path):
    n = 300
    gate = tmp_path / "gate"
    term = Terminal()
    proc = _launch(["--progress", _write(tmp_path), str(gate), str(n), "gen"], term.slave)
    term.close_slave()
    try:
        # The whole input fits in one window: it is read at once, and so its length known.
        term.wait_for(rf"map work:.*\b0/{n}\b")
        gate.touch()
        out, _ = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        text = term.close()
    assert out == f"result {n * (n - 1)}\n"
    assert any(re.search(rf"^map work: 100%.*\b{n}/{n}\b", s) for s in _screens(text)), text


def test_nothing_is_drawn_when_stderr_is_not_a_terminal(tmp_path):
    prog = _write(tmp_path)
    plain_out, plain_err = _finish(_launch([prog, "-", "200", "list"], subprocess.PIPE))
    out, err = _finish(_launch(["--progress", prog, "-", "200", "list"], subprocess.PIPE))
    assert out == plain_out == f"result {200 * 199}\n"
    assert err == plain_err == ""


def test_progress_always_draws_into_a_pipe(tmp_path):
    n = 200
    out, err = _finish(_launch(["--progress=always", _write(tmp_path), "-", str(n), "list"],
                               subprocess.PIPE))
    assert out == f"result {n * (n - 1)}\n"
    run_bars = [s for s in _screens(err) if s.startswith("prog.py:")]
    assert run_bars and re.search(rf"100%.*\b{n}/{n}\b", run_bars[-1]), err


def test_progress_never_and_a_bad_mode(tmp_path):
    prog = _write(tmp_path)
    out, err = _finish(_launch(["--progress=never", prog, "-", "50", "list"], subprocess.PIPE))
    assert (out, err) == (f"result {50 * 49}\n", "")
    proc = _launch(["--progress=sometimes", prog, "-", "50", "list"], subprocess.PIPE)
    out, err = _finish(proc)
    assert proc.returncode == 2 and "--progress" in err and out == ""


HELPER = textwrap.dedent("""\
    import sys
    import p2pscoop
    from p2pscoop import futures

    def square(x):
        return x * x

    if __name__ == "__main__":
        try:
            p2pscoop.progress(when="sometimes")
        except ValueError as exc:
            print("refused:", exc)
        with p2pscoop.start(n=2):
            with p2pscoop.progress(when="always", desc="block"):
                print("map", sum(futures.map(square, range(150))))
            fs = [futures.submit(square, i) for i in range(40)]
            got = [f.result() for f in p2pscoop.progress(futures.as_completed(fs),
                                                         total=len(fs), when="always",
                                                         desc="done")]
            print("as_completed", sum(got))
            print("off", sum(p2pscoop.progress(futures.map(square, range(10)))))
        with p2pscoop.Executor(n=2) as ex, p2pscoop.progress(when="always", desc="ex"):
            print("executor", sum(ex.map(square, range(90), chunksize=4)))
    """)


def test_the_python_helper(tmp_path):
    path = tmp_path / "helper.py"
    path.write_text(HELPER)
    proc = subprocess.Popen([sys.executable, str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            start_new_session=True)
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    squares = lambda k: sum(i * i for i in range(k))  # noqa: E731
    assert out.splitlines() == [
        "refused: progress mode must be one of auto, always, never, got 'sometimes'",
        f"map {squares(150)}", f"as_completed {squares(40)}", f"off {squares(10)}",
        f"executor {squares(90)}"]
    screens = _screens(err)
    assert any(re.search(r"^block: 100%.*\b150/150\b", s) for s in screens), err
    assert any(re.search(r"^done: 100%.*\b40/40\b", s) for s in screens), err
    assert any(re.search(r"^ex: 100%.*\b90/90\b", s) for s in screens), err
