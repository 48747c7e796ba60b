"""A task whose function lives in a module that takes long to import on a worker.

The comm thread of a peer sends its heartbeats. If it imported such a module itself while
unpickling the stolen work (here, an import that takes longer than ``dead_after``), its
peers would declare it dead and re-dispatch its units; with every worker in that state the
map failed with ``TaskLostError``. ``transport/decoding.py`` imports off the comm thread.
"""

from __future__ import annotations

import pytest

from launcher_helpers import Launched, launcher, write_program

pytestmark = pytest.mark.timeout(120)

SLOW_MODULE = '''
import time

from p2pscoop.core.config import LivenessConfig

time.sleep(LivenessConfig().dead_after + 1.5)  # longer than a silence that means death


def square(x):
    time.sleep(0.05)  # the origin cannot finish the map before the workers steal
    return x * x
'''


def test_a_slow_import_on_a_worker_does_not_make_it_look_dead(tmp_path):
    (tmp_path / "slowmod.py").write_text(SLOW_MODULE)
    prog = write_program(tmp_path, """
        if __name__ == "__main__":
            import slowmod  # here only: each worker imports it when a task needs it

            out = list(futures.map(slowmod.square, range(60)))
            assert out == [x * x for x in range(60)], out
            print("OK", sum(out))
    """)
    run = Launched(launcher("-vv", prog, n=3), tmp_path)
    try:
        code = run.wait()
    finally:
        run.cleanup()
    assert code == 0, run.describe()
    assert f"OK {sum(x * x for x in range(60))}" in run.stdout
    err = run.stderr
    assert "needs module slowmod: imported off the comm thread" in err, run.describe()
    for sign in ("silent for", "TaskLostError", "declared dead"):
        assert sign not in err, run.describe()
