"""Command line: ``python -m p2pscoop [-n N] prog.py args...`` or ``p2pscoop run ...``.

Argument parsing only; running the program is ``launch.program.run_program``.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__

DESCRIPTION = """\
Run a Python program on p2pscoop peers. The program runs as __main__ on the origin
(this process); the other peers import it under another name, so code under
`if __name__ == "__main__":` runs once. Calls to p2pscoop.futures (or SCOOP's
futures API) inside it are spread over all peers by work stealing.
"""

EPILOG = """\
examples:
  python -m p2pscoop examples/pi_montecarlo.py          one peer per core
  python -m p2pscoop -n 4 prog.py --its-own-flag 3      arguments after prog.py are the program's
  p2pscoop run -n 2 prog.py

The exit status is the program's: 0 on success, 1 on an uncaught exception (its
traceback is printed), N for sys.exit(N), 130 after Ctrl-C.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pscoop", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--peers", dest="n", type=int, default=None, metavar="N",
                        help="number of peers on this machine, origin included "
                             "(default: the number of usable cores)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="only print warnings and errors of p2pscoop itself")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more p2pscoop logging on stderr (-vv for debug)")
    parser.add_argument("--version", action="version", version=f"p2pscoop {__version__}")
    parser.add_argument("program", help="the Python program to run")
    parser.add_argument("args", nargs="*", metavar="args",
                        help="arguments passed to the program, untouched (everything after "
                             "the program's name, `--` included)")
    return parser


#: our options that take a value (everything else that starts with - is a flag)
_VALUED = ("-n", "--peers")


def split_program(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into our options + the program, and the program's own arguments.

    The first argument that is neither an option of ours nor an option's value is the
    program; everything after it belongs to the program verbatim (argparse alone would eat
    a ``--`` there or take the program's ``-n`` for ours).
    """
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[:i + 2], argv[i + 2:]
        if arg in _VALUED:
            i += 2
        elif arg.startswith("-") and arg != "-":
            i += 1
        else:
            return argv[:i + 1], argv[i + 1:]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "run":
        argv = argv[1:]
    ours, program_args = split_program(argv)
    parser = build_parser()
    args = parser.parse_args(ours)
    if args.n is not None and args.n < 1:
        parser.error(f"-n must be at least 1, got {args.n}")
    from .launch.program import run_program

    return run_program(args.program, args.args + program_args, n=args.n,
                       verbosity=args.verbose - args.quiet)


if __name__ == "__main__":
    sys.exit(main())
