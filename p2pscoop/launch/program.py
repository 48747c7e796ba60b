"""Run a user's program as ``__main__`` on the origin of a local cluster.

The exit status is the program's: 0 when it ends normally, ``N`` for ``sys.exit(N)`` (1 and
the message on stderr for ``sys.exit("message")``), 1 after an uncaught exception (with its
traceback on stderr) and 130 after Ctrl-C. The peers are always stopped before we return.

``import scoop`` works in the program (and in every worker, see ``runtime/worker.py``):
``compat.install`` runs before the program does, so SCOOP programs run unchanged.

Logging belongs to the program: we configure only the ``p2pscoop`` logger (``logs``), before
the program runs, so the program's own ``logging.basicConfig`` works as it does serially.
``program_error`` says why a path cannot be run (the command line reports it as a usage error).
"""

from __future__ import annotations

import json
import logging
import os
import runpy
import sys
import traceback

from .. import compat, logs
from ..progress import progress as bars, with_telemetry
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
                secure=None, nodes: list[str] | None = None, zeroconf: bool = True,
                hosts=None, ssh=None, external: str | None = None,
                broker: bool = False, tunnel: bool = False,
                progress: str | None = None,
                dashboard: tuple[str, int] | None = None, trace: str | None = None) -> int:
    """Run ``path`` as ``__main__`` with ``sys.argv[1:] == argv`` on ``n`` local peers.

    ``hosts`` (``launch.hosts.Host`` list): spread the ``n`` peers over those hosts, starting
    the remote ones with ``ssh`` (``launch.ssh.SshOptions``); ``external``: the address they
    dial to reach this machine. ``broker``: SCOOP's star topology (``core/broker.py``);
    ``tunnel``: over connections the workers open to the origin only (``core/tunnel.py``).
    ``progress``: ``auto``/``always``/``never``, progress bars on stderr (``progress.py``).
    ``dashboard``: (host, port) of a live web page of the run (``p2pscoop.dashboard``).
    ``trace``: record every unit run and steal, and write them to this file at the end (in
    the Chrome trace format, ``runtime/trace.py``), then print a summary on stderr.
    Returns the exit status (2, with a message on stderr, if ``path`` cannot be run).
    """
    problem = program_error(path)
    if problem:
        print(f"p2pscoop: {problem}", file=sys.stderr)
        return 2
    logs.set_peer("origin")
    logs.configure(verbosity)
    path = os.path.abspath(path)
    compat.install(main=path)
    LOGGER.debug("running %s with arguments %r", path, argv)
    sys.argv = [path, *argv]
    sys.path.insert(0, os.path.dirname(path))
    remote = where = None
    if hosts:
        from .hostrun import plan, run_secure

        where = plan(hosts, n)
        n = where.local
        if where.remote:
            secure = run_secure(where.remote[0][1].split("@")[-1], external)
        else:
            where = None  # every host is this machine: a local run
    try:
        config = None
        if broker or tunnel or trace:
            from ..core.config import NodeConfig, StealConfig, TransportConfig

            config = NodeConfig(steal=StealConfig(broker=broker or tunnel),
                                transport=TransportConfig(tunnel=tunnel),
                                telemetry=bool(trace), trace=bool(trace))
        if progress is not None:
            config = with_telemetry(config, progress)
        if dashboard is not None:
            from ..dashboard.local import telemetry_on

            config = telemetry_on(config)
        cluster = LocalCluster(n, main_path=path, argv=argv, verbosity=verbosity,
                               secure=secure, config=config)
        cluster.start()
    except StartupError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if where is not None:
        try:
            remote = _start_hosts(cluster, where, ssh, path, argv, verbosity)
        except (StartupError, KeyboardInterrupt) as exc:
            print(exc if isinstance(exc, StartupError) else "p2pscoop: interrupted",
                  file=sys.stderr)
            code = 1 if isinstance(exc, StartupError) else 130
            cluster.stop(code)
            return code
    if cluster.peer.recorder is not None and cluster.peer.recorder.collector is not None:
        cluster.peer.recorder.collector.begin(os.path.basename(path))
    board = None
    if dashboard is not None:
        from ..dashboard.local import start_for_run

        try:
            board = start_for_run(cluster, dashboard, path, trace=bool(trace))
        except OSError as exc:
            print(exc, file=sys.stderr)
            cluster.stop(1)
            if remote is not None:
                remote.stop()
            return 1
    LOGGER.info("%d peer(s) ready, the origin included: running %s",
                cluster.peer.size,
                os.path.basename(path))
    compat.install(main=path, broker=cluster.peer.address)  # scoop.BROKER: the origin
    finder = None
    if secure is not None:
        payload.travel_by_value(os.path.dirname(path))
    if secure is not None and remote is None:
        from .cluster import NodeFinder

        finder = NodeFinder(secure, cluster.program, cluster.peer.me, cluster.peer.address,
                            nodes, zeroconf, config=served_config(cluster.config))
        finder.start()
    code = 0
    try:
        with bars(when=progress or "never", desc=os.path.basename(path)):  # ends before a traceback
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
        if board is not None:
            board.stop()
        cluster.stop(code)
        if remote is not None:
            remote.stop()
        if trace:
            _write_trace(cluster, trace)
    return code


def served_config(config) -> str:
    """The part of ``config`` that a cluster's nodes pass to the peers they start for us
    (``launch/node.py``: ``SERVED_FIELDS``), as JSON; "" when it is all defaults."""
    from .node import SERVED_FIELDS

    fields = {k: getattr(config, k) for k in SERVED_FIELDS if getattr(config, k)}
    return json.dumps(fields, sort_keys=True) if fields else ""


def _write_trace(cluster: LocalCluster, path: str) -> None:
    """The run's trace to ``path``, and its summary on stderr (after the peers stopped)."""
    from ..runtime import trace

    col = cluster.peer.recorder.collector
    try:
        summary = trace.write(col, path)
    except OSError as exc:
        print(f"p2pscoop: cannot write the trace to {path!r}: {exc}", file=sys.stderr)
        return
    print(trace.summary_text(summary), file=sys.stderr)
    print(f"p2pscoop: trace written to {path} (open it in ui.perfetto.dev or "
          f"chrome://tracing)", file=sys.stderr)


def _start_hosts(cluster: LocalCluster, where, ssh, path: str, argv: list[str],
                 verbosity: int):
    """Start the peers of the remote hosts of ``where`` (a ``hostrun.Plan``); the run goes
    on without the hosts that fail, unless no peer is left besides the origin."""
    from .ssh import HostLauncher, SshOptions

    remote = HostLauncher(cluster.peer, cluster.secure, where.remote, cluster.n,
                          ssh or SshOptions(), path, argv, verbosity, cluster.config,
                          cluster.program)
    try:
        remote.start()
    except BaseException:
        remote.stop()
        raise
    if remote.all_failed and cluster.n == 1:
        remote.stop()
        raise StartupError("p2pscoop: no remote host could be started, and this machine "
                           "has no peer besides the origin: giving up (see above)")
    return remote
