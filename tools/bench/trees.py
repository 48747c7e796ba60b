"""``run.py --trees A,B``: several source trees' p2pscoop in one interleaved run, each round
against the same serial run: did a change make p2pscoop faster?

    python tools/bench/run.py --trees /tmp/main,. --only nested,uts --repeat 11 --nice -10 \\
        --set nested.n=32 --set nested.cutoff=17

What it owns: the rounds and the comparison. A tree is a directory holding a ``p2pscoop``
package (a ``git worktree`` or a ``git archive`` of a revision). A round runs, for each
workload, the serial baseline once (this harness's driver), then ``python -m p2pscoop -n 2
<tree>/tools/bench/driver.py p2pscoop ...`` once per tree, with ``PYTHONPATH`` set to that
tree, the trees' order rotating from round to round, so that drift in the machine's load
spreads over all trees. A tree without ``tools/bench/driver.py`` is timed with this
harness's driver. Runs go through ``run.py``'s ``run_subprocess`` (own session, its process
group cleaned up, ``--nice``) and ``classify``; a failed or wrong run is shown and left out.

Why per round: on a shared machine the load changes within seconds, so a tree's seconds
mean little next to another's taken a minute later; the speed-up over the serial run of
the same round, and the ratio of two trees' seconds in the same round, do. The report gives,
per workload and tree, min / median / max of the seconds and of the per-round speed-ups,
and the median per-round ratio of each tree's seconds to the first tree's (below 1: faster),
with the 1-min load average before and after.
"""

from __future__ import annotations

import os
import statistics

import run
from ab import command, env_for  # (one way to run a tree's driver, shared)

#: the backends a ``--trees`` run knows: ``p2pscoop`` per tree, ``serial`` once per round
KNOWN = ("serial", "p2pscoop")


def resolve(spec: str) -> tuple[str, str]:
    """``(label, directory)`` of a tree given as a directory with a ``p2pscoop`` package."""
    path = os.path.abspath(spec)
    if not os.path.isdir(os.path.join(path, "p2pscoop")):
        raise SystemExit("run.py --trees: %r holds no p2pscoop package (give a directory: "
                         "a git worktree, or `git archive REV | tar -x -C DIR`)" % spec)
    label = os.path.basename(path.rstrip(os.sep)) or path
    return label, path


def labels(trees: list) -> list:
    """The trees' labels, their directories' names unless two are the same: then paths."""
    names = [label for label, _ in trees]
    if len(set(names)) < len(names):
        return [path for _, path in trees]
    return names


def _one(tree: str, backend: str, workload: str, args, cwd: str) -> tuple[float | None, str]:
    cmd = command(tree, backend, workload, args.profile, args.overrides.get(workload, ()))
    res = run.run_subprocess(cmd, env_for(tree, args.profile), cwd, args.timeout)
    got = run.classify(*res, timeout=args.timeout)
    if got["status"] == "ok":
        return got["seconds"], "%.4f s" % got["seconds"]
    return None, "%s: %s" % (got["status"], got["detail"][:160])


def drive(args, trees: list, names: list, cwd: str) -> dict:
    """Every round: per workload, serial once (if asked), then each tree, in rotated order.
    Returns ``{workload: [ {"serial": s, name: seconds, ...} per round ]}``."""
    rounds: dict = {w: [] for w in args.workloads}
    serial = "serial" in args.backends
    for r in range(args.repeat):
        for w in args.workloads:
            got: dict = {}
            if serial:
                got["serial"], shown = _one(run.REPO, "serial", w, args, cwd)
                run.progress("rep %d %-10s %-24s %s" % (r + 1, w, "serial", shown))
            k = r % len(trees)
            for (_, tree), name in list(zip(trees, names))[k:] + list(zip(trees, names))[:k]:
                got[name], shown = _one(tree, "p2pscoop", w, args, cwd)
                run.progress("rep %d %-10s %-24s %s" % (r + 1, w, name, shown))
            rounds[w].append(got)
    return rounds


def _spread(values: list, fmt: str) -> str:
    if not values:
        return "-"
    return " / ".join(fmt % v for v in (min(values), statistics.median(values), max(values)))


def render(args, names: list, rounds: dict, loads: tuple) -> str:
    lines = ["| workload | tree | runs | seconds min / median / max | speed-up over the "
             "round's serial, min / median / max | seconds / %s's, median per round |"
             % names[0], "|---|---|---|---|---|---|"]
    for w in args.workloads:
        per = rounds[w]
        for name in names:
            secs = [g[name] for g in per if g.get(name)]
            ups = [g["serial"] / g[name] for g in per if g.get(name) and g.get("serial")]
            rel = [g[name] / g[names[0]] for g in per if g.get(name) and g.get(names[0])]
            lines.append("| %s | %s | %d | %s | %s | %s |" % (
                w, name, len(secs), _spread(secs, "%.4f"), _spread(ups, "%.2f"),
                "%.3f" % statistics.median(rel) if rel else "-"))
        serial = [g["serial"] for g in per if g.get("serial")]
        if serial:
            lines.append("| %s | serial | %d | %s | | |" % (w, len(serial),
                                                        _spread(serial, "%.4f")))
    lines.append("")
    lines.append("profile %s, overrides %s, nice %s; rounds interleaved (serial first, trees "
                 "rotating); 1-min load %.2f before, %.2f after"
                 % (args.profile, args.overrides or "none", run.NICE, *loads))
    return "\n".join(lines)


def main(args) -> int:
    """``run.py``'s entry for ``--trees``, with its parsed arguments. (``run.py`` runs as
    ``__main__``: the ``run`` module imported here is another copy, whose ``NICE`` is set
    here, so that its ``run_subprocess`` gives each run's session the niceness asked.)"""
    run.NICE = args.nice
    bad = [b for b in args.backends if b not in KNOWN]
    if bad:
        raise SystemExit("run.py --trees: only %s (got %s)" % (",".join(KNOWN), ",".join(bad)))
    trees = [resolve(t.strip()) for t in args.trees.split(",") if t.strip()]
    if len({path for _, path in trees}) != len(trees) or not trees:
        raise SystemExit("run.py --trees: give distinct trees")
    names = labels(trees)
    args.workloads = [w for w in args.workloads if w != run.STEAL_NAME]
    before = os.getloadavg()[0]
    cwd = run.tempfile.mkdtemp(prefix="p2pscoop-trees-")
    try:
        rounds = drive(args, trees, names, cwd)
    finally:
        for pgid in list(run._live_groups):
            run._kill_group(pgid, run.signal.SIGKILL, grace=0.0)
        run.shutil.rmtree(cwd, ignore_errors=True)
    print(render(args, names, rounds, (before, os.getloadavg()[0])))
    return 0
