"""p2pscoop: a brokerless, peer-to-peer, work-stealing runtime for Python futures.

General layout (start reading at ``core/node.py``):

    futures.py, shared.py   the user API (SCOOP's names, the concurrent.futures contract)
    waiting.py              ``wait``/``as_completed`` on any concurrent.futures.Future
    executor.py             ``Executor``: a standard concurrent.futures.Executor (asyncio too)
    core/                   sans-I/O decisions: unit states, work deque, stealing policy,
                            wire messages, NodeState.handle(event, now) -> commands
    runtime/                the shell: greenlet scheduler, comm thread (ZeroMQ), futures,
                            the one pickling module, the one global (context.py)
    launch/                 starting peers (local processes)
    cli.py, __main__.py     ``python -m p2pscoop [-n N] prog.py`` / ``p2pscoop run``

Module attributes like SCOOP's: ``IS_RUNNING``, ``IS_ORIGIN``, ``worker``, ``SIZE``, read live
from the running peer; while a worker imports the program (before its peer runs) they already
describe the run (``runtime/importing.py``). Without a runtime: False, False, None, 1.

Optional libraries: importing joblib (before or after p2pscoop) registers its ``"p2pscoop"``
backend (``joblib.py``, hooked in by ``integrations.py``).

SCOOP programs (``from scoop import futures, shared``) run unchanged under
``python -m p2pscoop``: ``compat/`` makes ``import scoop`` resolve to this package there.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import futures, shared  # noqa: E402
from .executor import Executor  # noqa: E402
from .progress import progress  # noqa: E402
from .runtime import context as _context  # noqa: E402
from .runtime import importing as _importing  # noqa: E402
from . import integrations as _integrations  # noqa: E402

_integrations.install()  # joblib's "p2pscoop" backend once joblib is imported (integrations.py)

__all__ = ["futures", "shared", "start", "Executor", "progress", "__version__", "IS_RUNNING",
           "IS_ORIGIN", "worker", "SIZE"]


def start(n: int | None = None):
    """Start ``n`` local peers (default: one per core) with this process as the origin.

        with p2pscoop.start(n=4):
            print(sum(futures.map(work, range(100))))

    Returns a context manager; the peers stop when the block ends.
    """
    from .launch.local import LocalCluster

    return LocalCluster(n)


def __getattr__(name: str):
    peer = _context.current()
    if peer is None and name in ("IS_RUNNING", "IS_ORIGIN", "SIZE", "worker"):
        state = _importing.current()  # a worker importing the program: the run's values
        if state is not None:
            return {"IS_RUNNING": True, "IS_ORIGIN": False, "SIZE": state.size,
                    "worker": state.worker}[name]
    if name == "IS_RUNNING":
        return peer is not None
    if name == "IS_ORIGIN":
        return peer is not None and peer.rank == 0
    if name == "SIZE":
        return peer.size if peer is not None else 1
    if name == "worker":
        return peer.worker_name if peer is not None else None
    raise AttributeError(f"module 'p2pscoop' has no attribute {name!r}")
