#!/usr/bin/env python3
"""Interleaved A/B runs of the benchmark workloads across source trees: is a change faster?

    python tools/bench/ab.py --trees HEAD~1,.  --only noop,nested,uts --repeat 7
    python tools/bench/ab.py --trees /tmp/old,/work/wt/new --only nested \\
        --set nested.n=32 --set nested.cutoff=17
    python tools/bench/ab.py --trees main,. --only noop --backend p2pscoop-broker

A tree is a directory holding a ``p2pscoop`` package, or a git revision of this repository
(exported once with ``git archive`` into a scratch directory, removed at the end). Every run
is ``python -m p2pscoop -n 2 <tree>/tools/bench/driver.py p2pscoop WORKLOAD ...`` with
``PYTHONPATH`` set to that tree, so the tree's own driver and workloads are timed the way
``run.py`` times them (in-program seconds, startup and warm-up excluded). A tree without
``tools/bench/driver.py`` (an old revision) is timed with this tree's driver instead.

What it owns: the interleaving and the comparison. Repeats are interleaved (repeat loop
outside, workloads, then trees inside) so that drift in the machine's load spreads over all
trees; the report gives, per workload and tree, min / median / max seconds, the ratio of
each tree's median to the first tree's (below 1: faster), and the 1-min load average
before and after. On a shared machine only such ratios mean anything: never compare a
figure with one measured at another time. A run that fails or gives a wrong answer is
shown and left out of the figures. Subprocesses are run and cleaned up by ``run.py``'s
helpers (own session, process group killed on timeout); nothing else is signalled.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import backends  # noqa: E402
import run  # noqa: E402
import workloads  # noqa: E402


def resolve_tree(spec: str, scratch: str) -> tuple[str, str]:
    """``(label, directory)`` of a tree given as a directory or a git revision."""
    path = os.path.abspath(spec)
    if os.path.isdir(os.path.join(path, "p2pscoop")):
        return spec, path
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--verify", spec + "^{commit}"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        raise SystemExit("ab.py: %r is neither a directory with a p2pscoop package nor a "
                         "git revision of %s" % (spec, REPO))
    dest = os.path.join(scratch, "tree-" + commit[:12])
    if not os.path.isdir(dest):
        os.makedirs(dest)
        archive = subprocess.Popen(["git", "-C", REPO, "archive", commit],
                                   stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", dest], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            raise SystemExit("ab.py: git archive %s failed" % spec)
    return "%s (%s)" % (spec, commit[:8]), dest


def command(tree: str, backend: str, workload: str, profile: str, overrides) -> list:
    driver = os.path.join(tree, "tools", "bench", "driver.py")
    if not os.path.exists(driver):
        driver = run.DRIVER
    return ([sys.executable] + backends.LAUNCHERS.get(backend, [])
            + [driver, backend, workload, profile] + list(overrides))


def env_for(tree: str, profile: str) -> dict:
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join([os.path.join(tree, "tools", "bench"), tree])
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCH_PROFILE"] = profile
    return env


def drive(args, trees: list) -> dict:
    """Run every (workload, tree) ``args.repeat`` times, interleaved; return the seconds."""
    times = {(w, label): [] for w in args.workloads for label, _ in trees}
    cwd = tempfile.mkdtemp(prefix="p2pscoop-ab-")
    try:
        for r in range(args.repeat):
            for w in args.workloads:
                for label, tree in trees:
                    cmd = command(tree, args.backend, w, args.profile,
                                  args.overrides.get(w, ()))
                    res = run.run_subprocess(cmd, env_for(tree, args.profile), cwd,
                                             args.timeout)
                    got = run.classify(*res, timeout=args.timeout)
                    if got["status"] == "ok":
                        times[(w, label)].append(got["seconds"])
                        shown = "%.4f s" % got["seconds"]
                    else:
                        shown = "%s: %s" % (got["status"], got["detail"][:160])
                    run.progress("rep %d %-10s %-24s %s" % (r + 1, w, label, shown))
    finally:
        for pgid in list(run._live_groups):
            run._kill_group(pgid)
        shutil.rmtree(cwd, ignore_errors=True)
    return times


def render(args, trees: list, times: dict, loads: tuple) -> str:
    lines = ["| workload | tree | runs | min s | median s | max s | median / first |",
             "|---|---|---|---|---|---|---|"]
    for w in args.workloads:
        first = times[(w, trees[0][0])]
        base = statistics.median(first) if first else None
        for label, _ in trees:
            v = times[(w, label)]
            if not v:
                lines.append("| %s | %s | 0 | - | - | - | - |" % (w, label))
                continue
            med = statistics.median(v)
            ratio = "%.3f" % (med / base) if base else "-"
            lines.append("| %s | %s | %d | %.4f | %.4f | %.4f | %s |"
                         % (w, label, len(v), min(v), med, max(v), ratio))
    lines.append("")
    lines.append("backend %s, profile %s, overrides %s; 1-min load %.2f before, %.2f after"
                 % (args.backend, args.profile, args.overrides or "none", *loads))
    return "\n".join(lines)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Interleaved A/B benchmark runs across trees.")
    ap.add_argument("--trees", required=True,
                    help="comma-separated directories or git revisions; the first is the base")
    ap.add_argument("--only", default="noop,nested,uts",
                    help="comma-separated workloads (default noop,nested,uts)")
    ap.add_argument("--backend", default="p2pscoop",
                    help="a p2pscoop launcher of backends.py (default p2pscoop)")
    ap.add_argument("--repeat", type=int, default=5, help="runs per tree and workload")
    ap.add_argument("--quick", action="store_true", help="the quick profile's sizes")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run")
    ap.add_argument("--set", action="append", default=[], metavar="WORKLOAD.KEY=VALUE",
                    help="override a workload parameter, e.g. --set nested.n=32")
    args = ap.parse_args(argv)
    args.profile = "quick" if args.quick else "default"
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if not args.backend.startswith("p2pscoop") or args.backend not in backends.LAUNCHERS:
        ap.error("--backend must be a p2pscoop launcher of backends.py")
    args.workloads = run._split(args.only, list(workloads.WORKLOADS), "workload", ap)
    args.overrides = run.overrides(args.set, args.profile, ap)
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scratch = tempfile.mkdtemp(prefix="p2pscoop-ab-trees-")
    try:
        trees = [resolve_tree(t.strip(), scratch) for t in args.trees.split(",") if t.strip()]
        if len({label for label, _ in trees}) != len(trees):
            raise SystemExit("ab.py: the same tree twice")
        before = os.getloadavg()[0]
        times = drive(args, trees)
        print(render(args, trees, times, (before, os.getloadavg()[0])))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for _pgid in list(run._live_groups):
            run._kill_group(_pgid, run.signal.SIGKILL, grace=0.0)
        sys.exit(130)
