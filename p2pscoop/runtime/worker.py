"""Entry point of a worker peer process: ``python -m p2pscoop.runtime.worker [args...]``.

Started by ``launch.local`` with its settings in the environment (``P2PSCOOP_*``). The
worker imports the user's program under the name ``__p2pscoop_main__`` (so code under
``if __name__ == "__main__":`` does not run here, exactly as SCOOP programs expect), joins
the origin, then steals and runs tasks until the origin says SHUTDOWN or disappears.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import threading
import traceback

from .. import logs
from .peer import Peer

MAIN_NAME = "__p2pscoop_main__"
EXIT_GRACE = 2.0


def import_main(path: str, argv: list[str]) -> None:
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(MAIN_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MAIN_NAME] = module
    spec.loader.exec_module(module)


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
    if os.getppid() != int(os.environ.get("P2PSCOOP_ORIGIN_PID", os.getppid())):
        os._exit(1)  # the origin died before the line above


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the origin's to handle
    _die_with_parent()
    logs.set_peer(f"w{os.environ.get('P2PSCOOP_RANK', '?')}")  # the p2pscoop logger only:
    logs.configure(int(os.environ.get("P2PSCOOP_VERBOSITY", "0")))  # logging is the program's
    for stream in (sys.stdout, sys.stderr):  # a task's print reaches the terminal now
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    env = os.environ
    origin_path = json.loads(env.get("P2PSCOOP_SYS_PATH", "[]"))
    sys.path[:] = origin_path + [p for p in sys.path if p not in origin_path]
    main_path = env.get("P2PSCOOP_MAIN", "")
    lifeline = int(env["P2PSCOOP_LIFELINE_FD"])
    if main_path:
        try:
            import_main(main_path, sys.argv[1:])
        except BaseException:
            traceback.print_exc()
            print(f"p2pscoop: worker {env.get('P2PSCOOP_RANK')} could not import "
                  f"{main_path}", file=sys.stderr)
            return 3
    peer = Peer(rank=int(env["P2PSCOOP_RANK"]), size=int(env["P2PSCOOP_SIZE"]),
                cluster=env["P2PSCOOP_CLUSTER"])

    def stop_soon(code: int = 0) -> None:
        # Let a running task finish for a moment, then leave regardless.
        sched = peer.scheduler
        sched.stopping = True
        with peer.lock:
            peer.cond.notify_all()
        timer = threading.Timer(EXIT_GRACE, _flush_and_exit, (0,))
        timer.daemon = True
        timer.start()

    def origin_gone() -> None:
        try:
            data = os.read(lifeline, 1)
        except OSError:
            data = b""
        if not data:
            _flush_and_exit(1)  # the origin is gone: nobody wants our results

    peer.comm.on_shutdown = stop_soon
    peer.comm.fd_watch[lifeline] = origin_gone
    origin_id = bytes.fromhex(env["P2PSCOOP_ORIGIN_ID"])
    peer.comm.connect(origin_id, env["P2PSCOOP_ORIGIN"], peer.hello())
    peer.start()
    try:
        peer.scheduler.run_until_stopped()
    finally:
        peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
