"""The run command's option groups for hosts, watching a run and SCOOP habits (``cli.py``
uses them).

Argument parsing only, like ``cli.py``: ``add_hosts`` (``--hosts``, ``--hostfile`` and the SSH
options; ``host_run_options`` turns them, or a batch scheduler's allocation, into hosts and
``launch.ssh.SshOptions``) and ``add_scoop_compat`` (SCOOP's flags that mean nothing here,
each answered by one note: ``scoop_notes``), ``add_progress`` (``--progress``),
``add_dashboard`` (``--dashboard``, also on ``join``) and ``add_trace`` (``--trace``, whose file
``trace_error`` checks before the run), in the "see it run" group: ``see_it_run_group``.
``MULTI_VALUED`` names the options that take several values, which ``cli.split_program``
reads so that ``--hosts a b prog.py`` never takes the program for a host.
"""

from __future__ import annotations

import argparse
import os
import sys


MULTI_VALUED = frozenset({"--hosts", "--host"})  # ``--hosts a b:2 c`` (see split_program)


def add_hosts(parser: argparse.ArgumentParser) -> None:
    """The options of a run over hosts started by SSH (docs/hosts.md)."""
    group = parser.add_argument_group(
        "hosts", "start peers on other machines over SSH (no cluster or zeroconf needed); "
                 "inside a SLURM, PBS/Torque, SGE or LSF job the allocated hosts are used "
                 "when none are given")
    group.add_argument("--hosts", "--host", dest="hosts", metavar="HOST", action="append",
                       default=None,
                       help="hosts to run on: NAME, NAME:SLOTS, USER@NAME, [IPv6]:SLOTS; a "
                            "name given twice counts twice; the list ends at an option, "
                            "at `--` or at the program")
    group.add_argument("--hostfile", metavar="FILE", default=None,
                       help="a file of hosts, one per line: `NAME [SLOTS]` or "
                            "`NAME:SLOTS`, # comments")
    group.add_argument("--ssh-executable", metavar="PATH", default="ssh",
                       help="the ssh client to use (default: ssh)")
    group.add_argument("--python-interpreter", metavar="PATH", default=None,
                       help="the Python that runs the peers on the other hosts (default: "
                            "this one's path, %s)" % sys.executable.replace("%", "%%"))
    group.add_argument("--prolog", metavar="FILE", default=None,
                       help="a shell script sourced on each host before its peers start "
                            "(e.g. to activate a virtualenv)")
    group.add_argument("--pythonpath", metavar="PATHS", default=None,
                       help="PYTHONPATH of the peers on the other hosts (default: this "
                            "one's)")
    group.add_argument("-p", "--path", metavar="DIR", default=None,
                       help="working directory of the peers on the other hosts (default: "
                            "this one's if it exists there, else a temporary directory)")
    group.add_argument("--nice", metavar="N", type=int, default=None,
                       help="niceness of the peers on the other hosts")
    group.add_argument("--external-hostname", metavar="ADDR", default=None,
                       help="the address of this machine that the other hosts dial "
                            "(default: the one on the route to the first host)")
    group.add_argument("--tunnel", action="store_true", default=None,
                       help="for hosts behind a firewall, as SCOOP's --tunnel: the peers "
                            "reach this machine only, through a port forward of each ssh "
                            "connection, and nobody dials a peer; implies --broker "
                            "(docs/hosts.md; also for local runs)")


SEE_IT_RUN = "see it run"


def see_it_run_group(parser: argparse.ArgumentParser):
    """The "see it run" option group of ``parser`` (progress, dashboard, trace), made by
    whichever of them comes first."""
    for group in parser._action_groups:  # argparse's list of groups (stable since 3.2)
        if group.title == SEE_IT_RUN:
            return group
    return parser.add_argument_group(
        SEE_IT_RUN, "watch the run: progress bars, a live dashboard, a task timeline")


class _ProgressAction(argparse.Action):
    """``--progress`` (auto), ``--progress=always``, ``--progress=never``: one flag that
    takes no separate value, so ``--progress prog.py`` never takes the program for it."""

    def __call__(self, parser, namespace, values, option_string=None):
        mode = option_string.partition("=")[2] if option_string else ""
        setattr(namespace, self.dest, mode or "auto")


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--progress[=always|never]`` (docs/progress.md)."""
    see_it_run_group(parser).add_argument(
        "--progress", "--progress=always", "--progress=never", dest="progress",
        action=_ProgressAction, nargs=0, default=None,
        help="progress bars on stderr, one per long map and one for the run (units done "
             "/ known, rate, ETA); only when stderr is a terminal, unless =always")


def _dashboard_address(text: str) -> tuple[str, int]:
    from .dashboard import parse_address

    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_dashboard(parser: argparse.ArgumentParser, what: str = "run") -> None:
    """``--dashboard [HOST:]PORT``: a live, read-only web page of the run (or node)."""
    see_it_run_group(parser).add_argument(
        "--dashboard", metavar="[HOST:]PORT", type=_dashboard_address, default=None,
        help=f"serve a live web page of this {what} (peers, queues, steals, throughput) at "
             f"http://HOST:PORT/; HOST defaults to 127.0.0.1, PORT 0 picks a free port (the "
             f"URL is printed on stderr). Read-only, but it shows function names, host names "
             f"and PIDs to whoever reaches it: give a non-loopback HOST only on a trusted "
             f"network (docs/dashboard.md)")


#: SCOOP's flags that mean nothing here: accepted, with one line that says so (flag -> note)
SCOOP_NOTES = {
    "brokers": "-b: p2pscoop has no brokers (peers steal from each other); ignored",
    "rsh": "--rsh: p2pscoop starts remote peers with ssh only (rsh would send the run's "
           "secret in clear); using ssh",
    "profile": "--profile: not supported (profile a peer with py-spy or cProfile "
               "instead); ignored",
    "backend": "--backend: p2pscoop always uses ZeroMQ; ignored",
    "debug": "--debug: p2pscoop has no debug dumps; use -vv for its debug log; ignored",
}


def add_scoop_compat(parser: argparse.ArgumentParser) -> None:
    """SCOOP's flags without a meaning here (see ``SCOOP_NOTES``), so SCOOP command lines
    work unchanged."""
    group = parser.add_argument_group(
        "SCOOP compatibility", "accepted so that SCOOP command lines run unchanged; each "
                               "prints one line saying what p2pscoop does instead")
    group.add_argument("-b", dest="brokers", metavar="N", type=int, default=None,
                       help="SCOOP's number of brokers")
    group.add_argument("--rsh", action="store_true", default=None, help="SCOOP: use rsh")
    group.add_argument("--profile", action="store_true", default=None,
                       help="SCOOP: cProfile every worker")
    group.add_argument("--backend", metavar="{ZMQ,TCP}", default=None,
                       help="SCOOP's transport")
    group.add_argument("--debug", action="store_true", default=None, help=argparse.SUPPRESS)


def add_trace(parser: argparse.ArgumentParser) -> None:
    """``--trace FILE`` (docs/trace.md)."""
    see_it_run_group(parser).add_argument(
        "--trace", metavar="FILE", default=None,
        help="write every task's run and every steal to FILE (Chrome trace-event JSON: open "
             "it in ui.perfetto.dev or chrome://tracing) and print a summary at the end")


def trace_error(path: str | None) -> str | None:
    """Why ``--trace`` cannot write ``path`` (one line for the user), or None."""
    if path is None:
        return None
    if os.path.isdir(path):
        return f"--trace {path!r}: it is a directory (give a file name)"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f"--trace {path!r}: no such directory {folder!r}"
    if not os.access(folder, os.W_OK) or (os.path.exists(path)
                                          and not os.access(path, os.W_OK)):
        return f"--trace {path!r}: permission denied"
    return None


def scoop_notes(args: argparse.Namespace) -> list[str]:
    """The notes for the SCOOP-only flags given on this command line."""
    return [f"p2pscoop: note: {text}" for dest, text in SCOOP_NOTES.items()
            if getattr(args, dest, None) is not None]


def host_run_options(args: argparse.Namespace):
    """(hosts, SshOptions) of a run over hosts, None if there is none. Raises ValueError
    (``hosts.HostfileError``, ``hosts.SchedulerError``) with a message for the user."""
    from .launch import hosts as H
    from .launch.ssh import SshOptions

    if args.hosts and args.hostfile:
        raise ValueError("give --hosts or --hostfile, not both")
    srun = False
    if args.hostfile:
        hosts = H.parse_hostfile(args.hostfile)
    elif args.hosts:
        hosts = H.parse_hosts_args(args.hosts)
    else:
        alloc = H.detect_scheduler()
        if alloc is None:
            return None
        hosts = alloc.hosts
        print(f"p2pscoop: {alloc.scheduler} allocation detected: {len(hosts)} host(s)",
              file=sys.stderr)
        if args.n is None and alloc.ntasks:
            args.n = alloc.ntasks
        import shutil

        srun = alloc.scheduler == "SLURM" and shutil.which("srun") is not None
    opts = SshOptions(ssh=args.ssh_executable,
                      python=args.python_interpreter or sys.executable,
                      prolog=args.prolog,
                      pythonpath=(args.pythonpath if args.pythonpath is not None
                                  else os.environ.get("PYTHONPATH")),
                      path=args.path, nice=args.nice, srun=srun)
    return hosts, opts
