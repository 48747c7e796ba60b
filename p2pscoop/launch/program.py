"""Run a user's program as ``__main__`` on the origin of a local cluster.

The exit status is the program's: 0 when it ends normally, ``N`` for ``sys.exit(N)`` (1 and
the message on stderr for ``sys.exit("message")``), 1 after an uncaught exception (with its
traceback on stderr) and 130 after Ctrl-C. The peers are always stopped before we return.
"""

from __future__ import annotations

import logging
import os
import runpy
import sys
import traceback

from .local import LocalCluster, StartupError


def _exit_code(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def run_program(path: str, argv: list[str], n: int | None = None, verbosity: int = 0) -> int:
    level = logging.WARNING - 10 * max(0, verbosity) if verbosity >= 0 else logging.ERROR
    logging.basicConfig(level=level, format="p2pscoop %(levelname)s %(name)s: %(message)s")
    if not os.path.isfile(path):
        print(f"p2pscoop: cannot run {path!r}: no such file", file=sys.stderr)
        return 2
    path = os.path.abspath(path)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    try:
        cluster = LocalCluster(n, main_path=path, argv=argv, verbosity=verbosity)
        cluster.start()
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
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
        cluster.stop(code)
    return code
