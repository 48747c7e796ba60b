"""The command line: ``p2pscoop COMMAND ...`` and ``python -m p2pscoop [opts] prog.py args``.

Argument parsing only (the run command's host and SCOOP option groups are in ``cli_run.py``):
every command hands its parsed arguments to a function elsewhere
(``launch.program.run_program`` for ``run``, ``transport.security.write_secret_file`` for
``secret``), imported lazily so that ``--help`` and usage errors stay fast.

Commands are rows of ``COMMANDS`` (name, one-line summary, argument builder, handler); the
top-level help lists them from there, so a new command (``join``, ``status``) is one
``Command`` and one ``register`` call. Invariants:

* ``p2pscoop prog.py args`` is ``p2pscoop run prog.py args``: a first argument that is not a
  command name is the start of ``run``'s arguments (a program named like a command is run
  with ``p2pscoop run NAME`` or ``./NAME``).
* Everything after the program belongs to the program, verbatim: ``split_program`` cuts the
  command line there before argparse sees it, so the program's own ``-n``, ``--help`` or
  ``--`` never reach our parser. A ``--`` *before* the program ends our options.
* Usage errors (unknown option, bad value, no program, a program path that is not a file)
  print the usage line and ``p2pscoop: <what is wrong>`` on stderr and exit with status 2;
  nothing prints a traceback for them.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Callable

from . import __version__
from .cli_run import (MULTI_VALUED, add_dashboard, add_hosts, add_progress,
                      add_scoop_compat, add_trace, host_run_options, scoop_notes,
                      trace_error)

USAGE_ERROR = 2

RUN_DESCRIPTION = """\
Run a Python program on p2pscoop peers. The program runs as __main__ on the origin
(this process); the other peers import it under another name, so code under
`if __name__ == "__main__":` runs once. Calls to p2pscoop.futures (or SCOOP's
futures API) inside it are spread over all peers by work stealing.
"""

RUN_EPILOG = """\
examples:
  python -m p2pscoop examples/pi_montecarlo.py          one peer per core
  python -m p2pscoop -n 4 prog.py --its-own-flag 3      arguments after prog.py are the program's
  p2pscoop run -n 2 prog.py                             the same as `p2pscoop -n 2 prog.py`
  python -m p2pscoop --hosts node1 node2:8 prog.py      peers on other hosts, over SSH
  python -m p2pscoop --cluster lab --secret-file F prog.py   a cluster's nodes (p2pscoop join)

The exit status is the program's: 0 on success, 1 on an uncaught exception (its
traceback is printed), N for sys.exit(N), 130 after Ctrl-C; 2 for a usage error.
"""

TOP_EPILOG = """\
`p2pscoop COMMAND --help` shows the options of a command. Without a command,
`p2pscoop [options] prog.py args` runs the program (the `run` command).

""" + RUN_EPILOG


# --- the command table -------------------------------------------------------------------

@dataclass(frozen=True)
class Command:
    """One subcommand: ``p2pscoop <name> ...``."""

    name: str
    summary: str  # one line in ``p2pscoop --help``
    build: Callable[[argparse.ArgumentParser], None]  # adds the command's arguments
    handler: Callable[[argparse.Namespace, argparse.ArgumentParser], int]  # -> exit status
    description: str = ""  # ``p2pscoop <name> --help``; the summary when empty
    epilog: str = ""


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    """Add a command to ``COMMANDS`` (its name must be new)."""
    if command.name in COMMANDS:
        raise ValueError(f"command {command.name!r} is already registered")
    COMMANDS[command.name] = command
    return command


class _Parser(argparse.ArgumentParser):
    """argparse, with our error line (``p2pscoop: ...``) instead of ``prog: error: ...``."""

    def error(self, message: str):
        self.exit(usage_error(self, message))


def command_parser(command: Command) -> argparse.ArgumentParser:
    """The parser of ``p2pscoop <command> ...`` (its own prog, help and epilog)."""
    parser = _Parser(
        prog=f"p2pscoop {command.name}", description=command.description or command.summary,
        epilog=command.epilog or None, formatter_class=argparse.RawDescriptionHelpFormatter)
    command.build(parser)
    return parser


def usage_error(parser: argparse.ArgumentParser, message: str) -> int:
    """Print the usage line and ``p2pscoop: message`` on stderr; the usage exit status."""
    parser.print_usage(sys.stderr)
    print(f"p2pscoop: {message}", file=sys.stderr)
    return USAGE_ERROR


# --- run ---------------------------------------------------------------------------------

def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-q``, shared by every command that runs peers (see ``verbosity``)."""
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="only print errors of p2pscoop itself")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more p2pscoop logging on stderr: -v info, -vv debug (the "
                             "program's own logging is the program's)")


def verbosity(args: argparse.Namespace) -> int:
    """The ``logs.configure`` verbosity: the ``-v`` count minus the ``-q`` count."""
    return args.verbose - args.quiet


def add_cluster(parser: argparse.ArgumentParser, listen: bool = True) -> None:
    """The options of a command that talks to a cluster (run, join, status)."""
    group = parser.add_argument_group(
        "cluster", "a cluster is a name and a secret file shared by its machines "
                   "(`p2pscoop secret FILE` makes one)")
    group.add_argument("--cluster", metavar="NAME", default=None,
                       help="the cluster's name (default: $P2PSCOOP_CLUSTER)")
    group.add_argument("--secret-file", metavar="FILE", default=None,
                       help="the cluster's secret, mode 0600 (default: "
                            "$P2PSCOOP_SECRET_FILE)")
    if listen:
        group.add_argument("--listen", metavar="ADDR[:PORT]", default=None,
                           help="the address to listen on (default: this machine's first "
                                "non-loopback IPv4 address, any free port)")
        group.add_argument("--interface", metavar="IF", default=None,
                           help="listen on the IPv4 address of this network interface")
    group.add_argument("--no-zeroconf", dest="zeroconf", action="store_false",
                       help="do not use multicast DNS (give addresses instead)")


def build_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--peers", dest="n", type=int, default=None, metavar="N",
                        help="number of peers, the origin included (default: this "
                             "machine's usable cores; with --hosts, every host's slots)")
    add_verbosity(parser)
    add_cluster(parser)
    parser.add_argument("--nodes", metavar="HOST:PORT", action="append", default=None,
                        help="cluster mode: a node to ask for peers, besides those zeroconf "
                             "finds (repeat the option for several)")
    parser.add_argument("--broker", action="store_true",
                        help="SCOOP's star topology: peers ask the origin for work instead "
                             "of stealing from each other (docs/scoop-compat.md)")
    add_hosts(parser)
    add_progress(parser)
    add_dashboard(parser)
    add_trace(parser)
    add_scoop_compat(parser)
    # ``program`` is the last argument argparse sees (``split_program`` cuts after it), and
    # ``args`` is always empty there: ``parse_run`` adds the program's arguments verbatim.
    parser.add_argument("program", nargs="?", help="the Python program to run")
    parser.add_argument("args", nargs="*", metavar="args",
                        help="arguments passed to the program, untouched (everything after "
                             "the program's name, `--` included)")
    # ``program`` is optional for argparse only so that its absence gets our message; the
    # usage line (fixed here, after every option) shows it as required.
    usage = parser.format_usage().split(":", 1)[1].strip()
    parser.usage = usage.replace("[program]", "program").replace("%", "%%")


def valued_options(parser: argparse.ArgumentParser) -> frozenset[str]:
    """The option strings of ``parser`` that take a separate value (``-n N``).

    Read from the parser (``_actions`` is argparse's list of its arguments, stable since
    Python 3.2) so that a new valued option cannot be forgotten by ``split_program``.
    """
    return frozenset(opt for action in parser._actions if action.nargs != 0
                     for opt in action.option_strings)


def _is_program(arg: str) -> bool:
    return arg.endswith(".py") or os.path.isfile(arg)


def split_program(argv: list[str], valued=frozenset({"-n", "--peers"})
                  ) -> tuple[list[str], list[str]]:
    """Split ``argv`` into our options + the program, and the program's own arguments.

    The first argument that is neither an option of ours nor an option's value is the
    program; everything after it belongs to the program verbatim (argparse alone would eat
    a ``--`` there or take the program's ``-n`` for ours). ``valued``: our options that
    take a separate value. ``--hosts`` takes several: they end at an option, at ``--``, or
    at the first one that is a file or ends in ``.py`` (the program; SCOOP made it a host).
    Each is returned as its own ``--hosts VALUE`` pair, so argparse never swallows the
    program either.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i + 2], argv[i + 2:]
        if arg in MULTI_VALUED:
            values = []
            j = i + 1
            while j < len(argv) and not argv[j].startswith("-") and not _is_program(argv[j]):
                values.append(argv[j])
                j += 1
            pairs = [x for v in values for x in (arg, v)] or [arg]
            argv = argv[:i] + pairs + argv[j:]
            i += len(pairs)
        elif arg in valued:
            i += 2
        elif arg.startswith("-") and arg != "-":
            i += 1
        else:
            return argv[:i + 1], argv[i + 1:]
    return argv, []


def run_handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.program is None:
        return usage_error(parser, "no program given (see --help)")
    for note in scoop_notes(args):
        print(note, file=sys.stderr)
    if args.n is not None and args.n < 1:
        return usage_error(parser, f"-n must be at least 1, got {args.n}")
    from .launch.program import program_error, run_program

    problem = program_error(args.program)
    if problem:
        if args.program in COMMANDS and not os.path.exists(args.program):
            problem += f" (a command comes first: p2pscoop {args.program} [options] ...)"
        return usage_error(parser, problem)
    problem = trace_error(args.trace)
    if problem:
        return usage_error(parser, problem)
    secure = None
    clustered = args.cluster or args.secret_file or args.nodes or args.listen or \
        args.interface
    hosts = ssh = None
    if args.hosts or args.hostfile or not clustered:
        if clustered:
            return usage_error(parser, "--hosts/--hostfile start peers over SSH with a secret "
                                       "of their own: they cannot be combined with cluster "
                                       "options (--cluster, --secret-file, --nodes, --listen)")
        try:
            found = host_run_options(args)
        except ValueError as exc:
            return usage_error(parser, str(exc))
        if found is not None:
            hosts, ssh = found
    args.broker = args.broker or bool(args.tunnel)  # --tunnel runs the star (core/tunnel.py)
    if clustered and args.broker:
        return usage_error(parser, f"{'--tunnel' if args.tunnel else '--broker'} is for "
                                   "local and --hosts runs: a cluster's "
                                   "nodes always steal from each other")
    if clustered:
        from .core.errors import P2PScoopError
        from .launch.cluster import make_secure

        try:
            secure = make_secure(args.cluster, args.secret_file, args.listen, args.interface)
        except (P2PScoopError, ValueError, OSError) as exc:
            return usage_error(parser, str(exc))
    return run_program(args.program, args.args, n=args.n, verbosity=verbosity(args),
                       secure=secure, nodes=args.nodes, zeroconf=args.zeroconf,
                       hosts=hosts, ssh=ssh, external=args.external_hostname,
                       broker=args.broker, tunnel=bool(args.tunnel),
                       progress=args.progress, dashboard=args.dashboard, trace=args.trace)


RUN = register(Command(
    "run", "run a Python program on p2pscoop peers (the default command)",
    build_run, run_handler, description=RUN_DESCRIPTION, epilog=RUN_EPILOG))


def parse_run(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``run``'s arguments: ours by argparse, the program's verbatim."""
    ours, program_args = split_program(argv, valued_options(parser))
    args = parser.parse_args(ours)
    args.args = [*args.args, *program_args]
    return args


# --- secret ------------------------------------------------------------------------------

def build_secret(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="where to write the secret (must not exist)")


def secret_handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .errors import P2PScoopError
    from .transport.security import write_secret_file

    try:
        write_secret_file(args.file)
    except (OSError, P2PScoopError) as exc:
        if isinstance(exc, OSError) and exc.strerror:
            message = f"cannot write {args.file!r}: {exc.strerror}"
            if isinstance(exc, FileExistsError):
                message += " (a secret is never overwritten: choose another FILE)"
        else:
            message = str(exc)
        print(f"p2pscoop: {message}", file=sys.stderr)
        return USAGE_ERROR
    print(f"p2pscoop: wrote a new cluster secret to {args.file} (mode 0600); copy it to "
          f"every machine of the cluster over a secure channel", file=sys.stderr)
    return 0


SECRET = register(Command(
    "secret", "write a new random cluster secret to FILE, mode 0600; refuses to overwrite",
    build_secret, secret_handler,
    description="Write a new random cluster secret to FILE, readable by you only (mode "
                "0600).\nAn existing FILE is never overwritten. Every machine of a cluster "
                "needs the same\nsecret: copy the file over a secure channel (scp, ssh) and "
                "pass it with --secret-file."))


# --- join and status ---------------------------------------------------------------------

def build_join(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--workers", dest="n", type=int, default=None, metavar="N",
                        help="peers this node starts for each program (default: the number "
                             "of usable cores)")
    add_verbosity(parser)
    add_cluster(parser)
    parser.add_argument("--peers", metavar="HOST:PORT", nargs="*", default=[],
                        help="other nodes of the cluster, where multicast does not reach "
                             "(reported by `status`)")
    add_dashboard(parser, "node")


def join_handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from . import logs
    from .core.errors import P2PScoopError
    from .launch.cluster import make_secure
    from .launch.node import Node

    if args.n is not None and args.n < 1:
        return usage_error(parser, f"-n must be at least 1, got {args.n}")
    try:
        secure = make_secure(args.cluster, args.secret_file, args.listen, args.interface)
        logs.set_peer("node")
        logs.configure(verbosity(args))
        node = Node(secure, args.n, verbosity(args), zeroconf=args.zeroconf,
                    peers=args.peers, dashboard=args.dashboard)
    except (P2PScoopError, ValueError, OSError) as exc:
        return usage_error(parser, str(exc))
    return node.run()


JOIN = register(Command(
    "join", "make this machine a node of a cluster: it serves the cluster's programs",
    build_join, join_handler,
    description="Run a node of a cluster until Ctrl-C or SIGTERM. The node announces itself "
                "with zeroconf\n(service _p2pscoop._tcp), keeps no user code, and starts N "
                "peers for every program of\nthe cluster that asks (python -m p2pscoop "
                "--cluster NAME ...). It leaves gracefully:\nits peers hand their work back "
                "before it exits.",
    epilog="example:\n  p2pscoop secret ~/.p2pscoop-lab && scp ~/.p2pscoop-lab other:\n"
           "  p2pscoop join --cluster lab --secret-file ~/.p2pscoop-lab -n 8"))


def build_status(parser: argparse.ArgumentParser) -> None:
    add_verbosity(parser)
    add_cluster(parser, listen=False)
    parser.add_argument("--nodes", metavar="HOST:PORT", action="append", default=None,
                        help="a node to ask, besides those zeroconf finds")
    parser.add_argument("--wait", type=float, default=2.0, metavar="SECONDS",
                        help="how long to look for nodes with zeroconf (default 2)")
    parser.add_argument("--json", action="store_true", help="print JSON, one node a line")


def status_handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .core.errors import P2PScoopError
    from .launch.cluster import make_secure
    from .launch.status import status

    try:
        secure = make_secure(args.cluster, args.secret_file, "127.0.0.1")
    except (P2PScoopError, ValueError, OSError) as exc:
        return usage_error(parser, str(exc))
    return status(secure, args.nodes or [], args.zeroconf, args.wait, args.json)


STATUS = register(Command(
    "status", "list the nodes of a cluster, the programs they serve and their load",
    build_status, status_handler))


# --- top level ---------------------------------------------------------------------------

def commands_text() -> str:
    """The ``commands:`` section of the top-level help, one line per command."""
    width = max(len(name) for name in COMMANDS) + 2
    lines = [f"  {name:<{width}}{cmd.summary}" for name, cmd in COMMANDS.items()]
    return "commands:\n" + "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: the commands, and ``run``'s options (run is the default)."""
    parser = _Parser(
        prog="p2pscoop",
        description=RUN_DESCRIPTION + "\n" + commands_text(), epilog=TOP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"p2pscoop {__version__}")
    build_run(parser)
    parser.usage += "\n       %(prog)s COMMAND [-h] ..."
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = COMMANDS.get(argv[0]) if argv else None
    if command is None:  # ``p2pscoop [opts] prog.py args``: run, with the top-level help
        parser, command = build_parser(), RUN
    else:
        argv = argv[1:]
        parser = command_parser(command)
    if command is RUN:
        args = parse_run(parser, argv)
    else:
        args = parser.parse_args(argv)
    return command.handler(args, parser)


if __name__ == "__main__":
    sys.exit(main())
