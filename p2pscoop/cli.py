"""The command line: ``p2pscoop COMMAND ...`` and ``python -m p2pscoop [opts] prog.py args``.

Argument parsing only: every command hands its parsed arguments to a function elsewhere
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


def build_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--peers", dest="n", type=int, default=None, metavar="N",
                        help="number of peers on this machine, origin included "
                             "(default: the number of usable cores)")
    add_verbosity(parser)
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


def split_program(argv: list[str], valued=frozenset({"-n", "--peers"})
                  ) -> tuple[list[str], list[str]]:
    """Split ``argv`` into our options + the program, and the program's own arguments.

    The first argument that is neither an option of ours nor an option's value is the
    program; everything after it belongs to the program verbatim (argparse alone would eat
    a ``--`` there or take the program's ``-n`` for ours). ``valued``: our options that
    take a separate value.
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i + 2], argv[i + 2:]
        if arg in valued:
            i += 2
        elif arg.startswith("-") and arg != "-":
            i += 1
        else:
            return argv[:i + 1], argv[i + 1:]
    return argv, []


def run_handler(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.program is None:
        return usage_error(parser, "no program given (see --help)")
    if args.n is not None and args.n < 1:
        return usage_error(parser, f"-n must be at least 1, got {args.n}")
    from .launch.program import program_error, run_program

    problem = program_error(args.program)
    if problem:
        if args.program in COMMANDS and not os.path.exists(args.program):
            problem += f" (a command comes first: p2pscoop {args.program} [options] ...)"
        return usage_error(parser, problem)
    return run_program(args.program, args.args, n=args.n, verbosity=verbosity(args))


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
