"""Entry point of a worker peer process: ``python -m p2pscoop.runtime.worker [args...]``.

Started by ``launch.local`` with its settings as one JSON value in ``P2PSCOOP_WORKER``
(``WorkerSpec``: who the origin is, the program, and the one ``NodeConfig``). The worker

1. makes ``import scoop`` resolve to p2pscoop (``compat.install``), so SCOOP programs and
   the functions they send import unchanged;
2. builds its peer (sockets bound, not yet running);
3. imports the user's program under the name ``__p2pscoop_main__`` (so code under
   ``if __name__ == "__main__":`` does not run here, exactly as SCOOP programs expect).
   During the import the module attributes describe the run (``IS_RUNNING`` True, the
   run's ``SIZE``, this peer's ``worker``) and the program's first futures/shared call
   ends the import quietly (``runtime/importing.py``): a worker importing the program is
   not running it;
4. joins the origin, then steals and runs tasks until the origin says SHUTDOWN or
   disappears.

Invariant: whatever the import does (raise, ``sys.exit`` at top level, call the API), the
worker serves the run; only the origin's outcome decides the exit status. An import that
raised is reported on stderr; ``sys.exit`` and an API call at top level (a program without
a ``__main__`` guard) are not errors and are logged at -v only.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import traceback

from .. import compat, logs
from ..core import commands as C
from ..core.config import NodeConfig
from ..transport.mesh import Comm
from . import importing
from .peer import Peer

LOGGER = logging.getLogger("p2pscoop.worker")

SPEC_ENV = "P2PSCOOP_WORKER"

MAIN_NAME = "__p2pscoop_main__"


def import_main(path: str, argv: list[str]) -> None:
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(MAIN_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MAIN_NAME] = module
    spec.loader.exec_module(module)


def import_program(path: str, argv: list[str], rank: int, size: int, worker: bytes) -> None:
    """Import the program as a worker does (see the module docstring); never raises."""
    try:
        with importing.importing(rank, size, worker):
            import_main(path, argv)
    except importing.NotRunningHere as exc:
        LOGGER.info("the program calls %s at its top level (no __main__ guard): the import "
                    "stops there, only the origin runs the program", exc.what)
    except SystemExit as exc:
        LOGGER.info("the program called sys.exit(%r) at import time: only the origin's "
                    "status counts; serving the run", exc.code)
    except BaseException as exc:
        traceback.print_exc()
        print(f"p2pscoop: worker {rank} could not import {path} ({type(exc).__name__}: "
              f"{exc}); it serves the run's tasks anyway", file=sys.stderr, flush=True)


def _flush_and_exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code)


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL us when the origin dies, even if a task holds the
    GIL in a long C call (the lifeline pipe needs the comm thread, hence the GIL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    spec = json.loads(os.environ.get(SPEC_ENV, "{}"))
    if os.getppid() != spec.get("origin_pid", os.getppid()):
        os._exit(1)  # the origin died before the line above


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the origin's to handle
    _die_with_parent()
    spec = json.loads(os.environ[SPEC_ENV])
    rank = spec["rank"]
    logs.set_peer(f"w{rank}")  # the p2pscoop logger only: logging is the program's
    logs.configure(spec["verbosity"])
    for stream in (sys.stdout, sys.stderr):  # a task's print reaches the terminal now
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    origin_path = spec["sys_path"]
    sys.path[:] = origin_path + [p for p in sys.path if p not in origin_path]
    main_path = spec["main"]
    lifeline = spec["lifeline_fd"]
    compat.install(main=main_path, broker=spec["origin"])
    config = NodeConfig.from_json(spec["config"])
    origin_id = bytes.fromhex(spec["origin_id"])
    if spec.get("cluster_name"):  # a secure run: the secret comes on stdin, never in env
        from ..transport.secret import ClusterKeys, decode_secret

        secret = decode_secret(sys.stdin.readline().strip(), "the launcher's pipe")
        keys = ClusterKeys.derive(secret, spec["cluster_name"])
        comm = Comm(config=config.transport, host=spec["listen"], keys=keys,
                    advertise=spec["advertise"])
        peer = Peer(rank=rank, size=spec["size"], cluster=keys.fingerprint, comm=comm,
                    config=config, host=spec["host"], hello_key=keys.hello_key,
                    program=spec["program"], elastic=True)
    else:
        comm = Comm(config=config.transport)
        peer = Peer(rank=rank, size=spec["size"], cluster=spec["cluster"], comm=comm,
                    config=config, program=spec.get("program", ""))
    if main_path:
        # Before the peer joins: the origin starts the program once every worker has
        # imported it, and a failed import costs nothing but this message.
        import_program(main_path, sys.argv[1:], rank, spec["size"], peer.worker_name)

    def stop(grace: float) -> None:
        # Let a running task finish for a moment, then leave regardless.
        peer.scheduler.stopping = True
        with peer.lock:
            peer.cond.notify_all()
        timer = threading.Timer(grace, _flush_and_exit, (0,))
        timer.daemon = True
        timer.start()

    def on_news(cmd) -> None:
        t = type(cmd)
        if t is C.Stop:
            stop(config.exit_grace)
        elif t is C.Left and cmd.peer == origin_id and spec.get("leave_with_origin"):
            stop(0.0)  # the program ended or its origin died: nobody wants our results
        elif t is C.Unreachable and cmd.peer == origin_id:
            print(f"p2pscoop: worker {rank}: the origin at {cmd.address} never answered",
                  file=sys.stderr, flush=True)
            stop(0.0)
        elif t is C.RefusedBy and cmd.peer == origin_id:
            print(f"p2pscoop: worker {rank}: the origin refused us: {cmd.reason}",
                  file=sys.stderr, flush=True)
            stop(0.0)

    def on_sigterm(signum, frame) -> None:  # a node leaving: say BYE, go
        peer.leave()
        stop(0.2)

    signal.signal(signal.SIGTERM, on_sigterm)

    def origin_gone() -> None:
        try:
            data = os.read(lifeline, 1)
        except OSError:
            data = b""
        if not data:
            _flush_and_exit(1)  # the origin is gone: nobody wants our results

    peer.listeners.append(on_news)
    comm.fd_watch[lifeline] = origin_gone
    peer.bootstrap(origin_id, spec["origin"])
    peer.start()
    try:
        peer.scheduler.run_until_stopped()
    finally:
        peer.close()
    return 0 if peer.fatal_error is None else 70


if __name__ == "__main__":
    sys.exit(main())
