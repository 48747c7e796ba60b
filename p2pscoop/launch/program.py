"""Run a user's program as ``__main__`` on the origin of a local cluster.

The exit status is the program's: 0 when it ends normally, ``N`` for ``sys.exit(N)`` (1 and
the message on stderr for ``sys.exit("message")``), 1 after an uncaught exception (with its
traceback on stderr) and 130 after Ctrl-C. The peers are always stopped before we return.

Logging belongs to the program: we configure only the ``p2pscoop`` logger (``logs``), before
the program runs, so the program's own ``logging.basicConfig`` works as it does serially.
``program_error`` says why a path cannot be run (the command line reports it as a usage error).
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import traceback

from .. import logs
from ..runtime import payload
from .local import LocalCluster, StartupError

LOGGER = logging.getLogger("p2pscoop.launch")


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def program_error(path: str) -> str | None:
    """Why ``path`` cannot be run as a program (one line for the user), or None."""
    if os.path.isdir(path):
        text = f"cannot run {path!r}: it is a directory, not a Python file"
        main = os.path.join(path, "__main__.py")
        if os.path.isfile(main):
            text += f" (it has a __main__.py: run {main!r})"
        return text
    if not os.path.exists(path):
        return f"cannot run {path!r}: no such file"
    if not os.path.isfile(path):
        return f"cannot run {path!r}: not a regular file"
    if not os.access(path, os.R_OK):
        return f"cannot run {path!r}: permission denied (not readable)"
    return None


def run_program(path: str, argv: list[str], n: int | None = None, verbosity: int = 0,
                secure=None, nodes: list[str] | None = None, zeroconf: bool = True) -> int:
    """Run ``path`` as ``__main__`` with ``sys.argv[1:] == argv`` on ``n`` local peers.

    Returns the exit status (2, with a message on stderr, if ``path`` cannot be run).
    """
    problem = program_error(path)
    if problem:
        print(f"p2pscoop: {problem}", file=sys.stderr)
        return 2
    logs.set_peer("origin")
    logs.configure(verbosity)
    path = os.path.abspath(path)
    LOGGER.debug("running %s with arguments %r", path, argv)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        cluster = LocalCluster(n, main_path=path, argv=argv, verbosity=verbosity,
                               secure=secure)
        cluster.start()
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    LOGGER.info("%d peer(s) ready, the origin included: running %s", cluster.n,
                os.path.basename(path))
    finder = None
    if secure is not None:
        from .cluster import NodeFinder

        payload.travel_by_value(os.path.dirname(path))
        finder = NodeFinder(secure, cluster.program, cluster.peer.me, cluster.peer.address,
                            nodes, zeroconf)
        finder.start()
    code = 0
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        print("p2pscoop: interrupted", file=sys.stderr)
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        LOGGER.debug("the program ended with status %d: stopping the peers", code)
        if finder is not None:
            finder.stop()
        cluster.stop(code)
    return code
