"""p2pscoop in a real Jupyter kernel (ipykernel), driven by nbclient and jupyter_client.

* ``examples/notebook.ipynb`` runs top to bottom in a fresh kernel and prints what it should:
  ``p2pscoop.start(n=4)`` with ``futures.map`` over functions defined in the notebook (its
  ``__main__`` has no file: they travel by value), ``p2pscoop.Executor`` with top-level
  ``await`` inside the kernel's own event loop, and joblib's ``Parallel`` on the backend.
* "Interrupt the kernel" (SIGINT to the kernel's process group, as Jupyter sends it) during a
  cell waiting for tasks gives that cell a ``KeyboardInterrupt``, and the next cell starts
  peers again and gets its results.

Each kernel is a real process whose peers are its children; the kernel is shut down at the
end whatever happened, and its peers end with it (their lifeline is the kernel). Nothing
here measures time: the bounds only turn a hang into a failure.
"""

import os
import random
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
jupyter_client = pytest.importorskip("jupyter_client")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

BOUND = 120  # seconds a cell may take before the run counts as a hang


@pytest.fixture
def kernel_env(monkeypatch):
    """The kernel imports this checkout's p2pscoop (and so do the peers it starts)."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def _text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _errors(nb) -> list:
    return [f"{o.get('ename')}: {o.get('evalue')}" for cell in nb.cells
            if cell.cell_type == "code" for o in cell.outputs
            if o.get("output_type") == "error"]


def _hits(seed, n=20_000):  # the notebook's function, to know what it must print
    rnd = random.Random(seed)
    return sum(rnd.random() ** 2 + rnd.random() ** 2 <= 1.0 for _ in range(n))


def test_example_notebook_runs_in_a_kernel(kernel_env, tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=BOUND, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on a cell's exception
    assert _errors(nb) == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    pi = 4 * sum(_hits(seed) for seed in range(32)) / (32 * 20_000)
    assert _text(code[1]).splitlines() == ["peers: 4", f"pi ~ {pi:.4f}"]
    assert _text(code[2]).strip() == ("await: 144 gather: [0, 1, 4, 9, 16] "
                                      "run_in_executor: 49")
    assert _text(code[3]).splitlines() == ["joblib workers: 4", "same as futures.map: True"]


_BLOCKED = """
import time
from pathlib import Path
import p2pscoop
from p2pscoop import futures

def blocked(gate):
    for _ in range(2400):           # a safety net only: the test interrupts long before
        if Path(gate).exists():
            return 1
        time.sleep(0.05)
    return 0

with p2pscoop.start(n=2):
    print("started", p2pscoop.SIZE, flush=True)
    list(futures.map(blocked, [{gate!r}] * 4))
"""

_AFTER = """
def cube(x):
    return x ** 3

with p2pscoop.start(n=3):
    print("again", p2pscoop.SIZE, sum(futures.map(cube, range(10))))
"""


def _run_until(kc, msg_id, on_stream=None):
    """Read the kernel's output for ``msg_id`` until it is idle; (stdout, error names)."""
    out, errors = [], []
    while True:
        msg = kc.get_iopub_msg(timeout=BOUND)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
            if on_stream is not None:
                on_stream("".join(out))
        elif kind == "error":
            errors.append(content["ename"])
        elif kind == "status" and content["execution_state"] == "idle":
            return "".join(out), errors


def test_interrupting_the_kernel_stops_the_cell_and_the_next_cell_runs(kernel_env, tmp_path):
    gate = tmp_path / "never-opened"
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3",
                                                     cwd=str(tmp_path))
    try:
        interrupted = []

        def interrupt_once_started(text):
            if "started 2" in text and not interrupted:
                interrupted.append(True)
                km.interrupt_kernel()

        out, errors = _run_until(kc, kc.execute(_BLOCKED.format(gate=str(gate))),
                                 interrupt_once_started)
        assert interrupted, out
        assert errors == ["KeyboardInterrupt"], (out, errors)

        out, errors = _run_until(kc, kc.execute(_AFTER))
        assert errors == [], out
        assert out.strip() == f"again 3 {sum(x ** 3 for x in range(10))}"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
