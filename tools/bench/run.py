#!/usr/bin/env python3
"""Side-by-side benchmark harness: same workloads, six backends, one command.

    python tools/bench/run.py                      # all workloads x all backends, 5 repeats
    python tools/bench/run.py --quick              # small sizes, 1 repeat (about a minute)
    python tools/bench/run.py --only pi,uts --backends serial,p2pscoop,scoop --repeat 3
    python tools/bench/run.py --record             # also append the tables to docs/benchmarks.md

(Before/after a change of p2pscoop itself: ``--trees OLD,NEW`` runs each tree's p2pscoop
in turn, every round against one serial run, and reports per-round ratios:
``tools/bench/trees.py``; ``tools/bench/ab.py --trees`` does the same without the serial.)

What it owns: launching and cleaning up benchmark subprocesses, and collecting their
results. Data flow::

    run.py ──(one subprocess per backend x workload x repeat, own process group)──┐
      │   python [-m scoop|p2pscoop -n 2] driver.py BACKEND WORKLOAD PROFILE      │
      │   stdout: "BENCH {json}"  (in-program seconds, check, details)  <─────────┘
      │   + wall time of the whole subprocess, measured here
      └──> report.py: medians, ratios, targets, Markdown tables (stdout / docs)

Rules it enforces:

* Every run is a fresh subprocess in a new session (``start_new_session``). On timeout
  (``--timeout``, default 120 s) the whole process group is SIGKILLed; after a normal
  exit any process left in the group (a straggling worker) is SIGTERMed, then killed.
  Only groups this harness created are ever signalled.
* A run without a ``BENCH`` line is an error whatever the exit code (SCOOP exits 0 on
  failure). A run whose answer is wrong is "WRONG", never a time. A backend whose
  library is not installed is "missing"; nested workloads on pools without nested
  submission are "n/a". p2pscoop is always attempted: a broken package shows "error".
* Repeats are interleaved (repeat loop outside, backends inside) so that drift in the
  machine's load spreads over all backends. A cell stops repeating after its first
  failure (error, timeout, wrong answer), and a backend whose first two runs failed
  with no success is skipped for the rest of the run (its cells show "error").
* ``--nice N`` gives each run's new session niceness N, through its autogroup: Linux
  schedules each session as one group, so the load of other sessions (other users'
  tests on a shared machine) takes about half of a contended core from a run at the
  default, and about a tenth at -10 (root only).
* Subprocesses run in a scratch directory with ``PYTHONPATH`` = this directory + the
  repository root, so ``python -m p2pscoop`` uses the working tree.

Slow cells: a cell whose first run took more than ``--slow-seconds`` (default 10 s) of
wall time is repeated at most ``--slow-cap`` times (default 3); this keeps Dask's
multi-second cells from dominating the run time. The notes say which cells were capped.

The steal-latency slot: if ``tools/bench/steal_latency.py`` exists (written by the
p2pscoop developers), it is run once, after the matrix, as
``python -m p2pscoop -n 2 tools/bench/steal_latency.py [3 with --quick]`` (the argument
is the victim's loop length in seconds), with the same environment plus
``BENCH_PROFILE=default|quick``. It must print a line
``BENCH {"p50_ms": ..., "p99_ms": ...}``; its figures are reported under the main table.
"""

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import backends  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402

DRIVER = os.path.join(HERE, "driver.py")
STEAL = os.path.join(HERE, "steal_latency.py")
STEAL_NAME = "steal_latency"
STEAL_QUICK_SECONDS = 3  # victim loop length passed to steal_latency.py with --quick
REQUIREMENTS = os.path.relpath(os.path.join(HERE, "requirements.txt"), os.getcwd())
PREFIX = "BENCH "

_live_groups = set()  # process groups started and not yet cleaned (for Ctrl-C)


# --------------------------------------------------------------------------- subprocesses


def _group_members(pgid):
    """PIDs of live (non-zombie) processes in process group ``pgid``, from /proc."""
    pids = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # no /proc: fall back to "the group exists"
        return [pgid] if _group_exists(pgid) else []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # state ppid pgrp ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            pids.append(int(entry))
    return pids


def _group_exists(pgid):
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _wait_group(pgid, seconds):
    """Wait up to ``seconds`` for every live member of ``pgid`` to exit; True if none left."""
    deadline = time.monotonic() + seconds
    while _group_members(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _kill_group(pgid, first=signal.SIGTERM, grace=2.0):
    """Signal our own process group ``pgid``; escalate to SIGKILL after ``grace`` s.

    Returns True if any live process had to be signalled (zombies waiting for init to
    reap them do not count)."""
    if not _group_members(pgid):
        return False
    try:
        os.killpg(pgid, first)
    except ProcessLookupError:
        return False
    if not _wait_group(pgid, grace):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return True


#: ``--nice``: the niceness of each run's session (None: left as it is)
NICE = None


def _set_nice() -> None:
    """In a run's child, after ``setsid``: give its new session the niceness ``NICE``.
    Linux schedules each session as one group (an autogroup) against the others, so a
    process's own niceness only orders it within its session; the group's is set through
    ``/proc/self/autogroup``. Best effort: a system without autogroups, or a user who may
    not raise priority, runs the child as it is."""
    try:
        with open("/proc/self/autogroup", "w") as f:
            f.write(str(NICE))
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError:
        pass


def run_subprocess(cmd, env, cwd, timeout):
    """Run ``cmd`` in its own session; return (rc, stdout, stderr, wall, timed_out, leftovers)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
            start_new_session=True, preexec_fn=None if NICE is None else _set_nice,
        )
        pgid = proc.pid  # new session: the leader's pid is the group id
        _live_groups.add(pgid)
        timed_out = False
        rc = None
        try:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(pgid, signal.SIGKILL, grace=0.0)
                rc = proc.wait()
            wall = time.perf_counter() - t0
            # Helpers such as multiprocessing's resource tracker exit on their own
            # right after the leader; only processes still alive after that are killed.
            leftovers = not _wait_group(pgid, 3.0) and _kill_group(pgid)
        finally:
            if proc.poll() is None:
                _kill_group(pgid, signal.SIGKILL, grace=0.0)
                proc.wait()
            _live_groups.discard(pgid)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    return rc, stdout, stderr, wall, timed_out, leftovers


def parse_bench(stdout):
    """The last ``BENCH {json}`` record in ``stdout``, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PREFIX):
            try:
                return json.loads(line[len(PREFIX):])
            except ValueError:
                return None
    return None


def _tail(text, n=1):
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith(PREFIX)]
    return " | ".join(lines[-n:])[:300]


def classify(rc, stdout, stderr, wall, timed_out, leftovers, timeout):
    """Turn one finished subprocess into a run record with a ``status``."""
    rec = parse_bench(stdout)
    run = {"rc": rc, "wall": wall, "leftovers": leftovers}
    if timed_out:
        run.update(status="timeout", detail="killed after %.0f s" % timeout)
    elif rec is None:
        why = _tail(stderr) or _tail(stdout) or "no output"
        run.update(status="error", detail="rc=%s, no BENCH line: %s" % (rc, why))
    elif rec.get("na"):
        run.update(status="n/a", detail=rec["na"], record=rec)
    elif rec.get("error"):
        run.update(status="error", detail=rec["error"][:300], record=rec)
    elif not rec.get("check"):
        run.update(status="WRONG", detail=rec.get("detail", "check failed"), record=rec)
    elif not isinstance(rec.get("seconds"), (int, float)):
        run.update(status="error", detail="BENCH line without seconds", record=rec)
    else:
        run.update(status="ok", seconds=rec["seconds"], detail=rec.get("detail", ""), record=rec)
        if "makespan_ideal" in rec:
            run["makespan_ideal"] = rec["makespan_ideal"]
    return run


# --------------------------------------------------------------------------- harness


def make_env(profile):
    env = os.environ.copy()
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([HERE, REPO] + ([old] if old else []))
    env["PYTHONUNBUFFERED"] = "1"
    env["BENCH_PROFILE"] = profile
    return env


def command(backend, workload, profile, overrides):
    launcher = backends.LAUNCHERS.get(backend, [])
    return [sys.executable] + launcher + [DRIVER, backend, workload, profile] + list(overrides)


def availability(names):
    """backend -> None if usable, else the missing import names."""
    out = {}
    for name in names:
        missing = [m for m in backends.REQUIRES[name] if importlib.util.find_spec(m) is None]
        out[name] = missing or None
    return out


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Run the p2pscoop benchmark suite against SCOOP, multiprocessing, loky, Dask.",
    )
    ap.add_argument("--repeat", type=int, help="runs per cell; the median is reported "
                    "(default 5, or 1 with --quick)")
    ap.add_argument("--only", help="comma-separated workloads: %s, %s"
                    % (", ".join(workloads.WORKLOADS), STEAL_NAME))
    ap.add_argument("--backends", help="comma-separated backends (default: %s; also: %s)"
                    % (",".join(backends.ALL), ",".join(backends.OPTIONAL)))
    ap.add_argument("--quick", action="store_true", help="small sizes and 1 repeat (~1 min)")
    ap.add_argument("--record", action="store_true",
                    help="append the result tables to docs/benchmarks.md")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per run (default 120)")
    ap.add_argument("--slow-seconds", type=float, default=10.0,
                    help="a cell whose first run's wall time exceeds this is 'slow' (default 10)")
    ap.add_argument("--slow-cap", type=int, default=3,
                    help="repeats at most for slow cells (default 3; 0 = no cap)")
    ap.add_argument("--json", metavar="PATH", help="also write every run record to PATH")
    ap.add_argument("--nice", type=int, metavar="N",
                    help="run each subprocess's session at niceness N (e.g. -10, as root): "
                         "other sessions' load then disturbs the runs less (Linux "
                         "schedules sessions as groups: plain `nice` acts within one)")
    ap.add_argument("--set", action="append", default=[], metavar="WORKLOAD.KEY=VALUE",
                    help="override a workload parameter, e.g. --set nested.n=30")
    ap.add_argument("--trees", metavar="DIR,DIR", help="A/B: each directory's p2pscoop "
                    "in turn, every round against one serial run (tools/bench/trees.py)")
    args = ap.parse_args(argv)
    args.profile = "quick" if args.quick else "default"
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    known = list(workloads.WORKLOADS) + [STEAL_NAME]
    args.workloads = _split(args.only, known, "workload", ap) if args.only else known
    args.backends = _split(args.backends, backends.ALL + backends.OPTIONAL, "backend", ap) \
        if args.backends \
        else (["serial", "p2pscoop"] if args.trees else list(backends.ALL))
    args.overrides = overrides(args.set, args.profile, ap)
    return args


def overrides(items, profile, ap):
    """``--set WORKLOAD.KEY=VALUE`` items as {workload: ["KEY=VALUE", ...]}, checked
    against ``profile``'s parameters (``ap.error`` on a bad one)."""
    out = {}
    for item in items:
        wl, _, kv = item.partition(".")
        if wl not in workloads.WORKLOADS or "=" not in kv:
            ap.error("bad --set %r (want WORKLOAD.KEY=VALUE)" % item)
        out.setdefault(wl, []).append(kv)
    for wl, kvs in out.items():
        try:
            workloads.params_for(profile, wl, kvs)
        except (ValueError, KeyError) as exc:
            ap.error(str(exc))
    return out


def _split(text, known, what, ap):
    items = [t.strip() for t in text.split(",") if t.strip()]
    for t in items:
        if t not in known:
            ap.error("unknown %s %r (known: %s)" % (what, t, ", ".join(known)))
    return items


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def run_matrix(args, env, cwd):
    """Run every (workload, backend) cell ``args.repeat`` times; return the cells."""
    avail = availability(args.backends)
    bench_workloads = [w for w in args.workloads if w in workloads.WORKLOADS]
    cells = {}
    for w in bench_workloads:
        for b in args.backends:
            cell = {"runs": [], "stopped": None}
            if avail[b]:
                cell["stopped"] = "missing"
                cell["detail"] = "not installed (%s)" % ", ".join(avail[b])
            elif w in workloads.NESTED and b in backends.NO_NESTING:
                cell["stopped"] = "n/a"
                cell["detail"] = "no nested submission"
            cells[(w, b)] = cell
    total = sum(1 for c in cells.values() if not c["stopped"]) * args.repeat  # upper bound
    done = 0
    for r in range(args.repeat):
        for w in bench_workloads:
            for b in args.backends:
                cell = cells[(w, b)]
                if cell["stopped"]:
                    continue
                done += 1
                cmd = command(b, w, args.profile, args.overrides.get(w, ()))
                res = run_subprocess(cmd, env, cwd, args.timeout)
                run = classify(*res, timeout=args.timeout)
                cell["runs"].append(run)
                shown = ("%.4g s" % run["seconds"]) if run["status"] == "ok" else run["status"]
                progress("[%3d/%d] rep %d %-10s %-15s %-9s wall %6.2f s%s%s" % (
                    done, total, r + 1, w, b, shown, run["wall"],
                    "  (stragglers killed)" if run["leftovers"] else "",
                    "" if run["status"] == "ok" else "  " + run["detail"][:160]))
                if run["status"] != "ok":
                    cell["stopped"] = run["status"]
                elif (args.slow_cap and len(cell["runs"]) >= args.slow_cap
                      and cell["runs"][0]["wall"] > args.slow_seconds):
                    cell["stopped"] = "capped"
                _skip_broken_backend(cells, b, bench_workloads)
    return cells, avail


def _skip_broken_backend(cells, backend, names, limit=2):
    """After ``limit`` failed runs and no success, skip the backend's remaining cells.

    A backend that cannot start (say a half-written p2pscoop that waits 60 s for its
    workers) would otherwise cost workloads x repeats x its failure time."""
    runs = [r for w in names for r in cells[(w, backend)]["runs"]]
    if len(runs) < limit or any(r["status"] == "ok" for r in runs):
        return
    if not all(r["status"] in ("error", "timeout") for r in runs):
        return
    for w in names:
        cell = cells[(w, backend)]
        if not cell["stopped"]:
            cell["stopped"] = "skipped"
            cell["detail"] = ("not run: %s failed its first %d runs and never succeeded"
                              % (backend, len(runs)))


def run_steal_latency(args, env, cwd, cells):
    """Run tools/bench/steal_latency.py if present; return a small result dict."""
    if STEAL_NAME not in args.workloads or "p2pscoop" not in args.backends:
        return None
    if not os.path.exists(STEAL):
        return {"status": "not provided", "detail": "tools/bench/steal_latency.py does not exist yet"}
    if any(c["stopped"] == "skipped" for (w, b), c in cells.items() if b == "p2pscoop"):
        return {"status": "error", "detail": "not run: p2pscoop failed its first runs"}
    cmd = [sys.executable] + backends.LAUNCHERS["p2pscoop"] + [STEAL]
    if args.quick:
        cmd.append(str(STEAL_QUICK_SECONDS))
    res = run_subprocess(cmd, env, cwd, args.timeout)
    rc, stdout, stderr, wall, timed_out, _ = res
    rec = parse_bench(stdout)
    if timed_out:
        out = {"status": "timeout", "detail": "killed after %.0f s" % args.timeout}
    elif rec is None or "p50_ms" not in rec or "p99_ms" not in rec:
        out = {"status": "error", "detail": "rc=%s, no BENCH line with p50_ms/p99_ms: %s"
               % (rc, _tail(stderr) or _tail(stdout) or "no output")}
    elif rec.get("error"):
        out = {"status": "error", "detail": str(rec["error"])[:300]}
    else:
        out = {"status": "ok", "p50_ms": rec["p50_ms"], "p99_ms": rec["p99_ms"], "record": rec}
    out["wall"] = wall
    progress("[steal] %s%s" % (out["status"], "" if out["status"] == "ok" else "  " + out["detail"]))
    return out


def main(argv=None):
    global NICE
    args = parse_args(sys.argv[1:] if argv is None else argv)
    NICE = args.nice
    if args.trees:  # A/B of source trees: its own rounds and report
        import trees

        return trees.main(args)
    env = make_env(args.profile)
    avail = availability(args.backends)
    missing = sorted(b for b, m in avail.items() if m)
    if missing:
        progress("note: backend(s) %s not installed; they are reported as 'missing'.\n"
                 "      install the benchmark dependencies with:\n"
                 "          %s -m pip install -r %s"
                 % (", ".join(missing), os.path.basename(sys.executable), REQUIREMENTS))
    machine = report.machine_info(args)
    try:
        if os.getloadavg()[0] >= (os.cpu_count() or 1) * 0.5:
            progress("warning: the machine is busy (1-min load average %s on %s cores); "
                     "CPU-bound results will be low" % (machine["load"], os.cpu_count()))
    except OSError:
        pass
    progress("benchmark: profile %s, repeat %d, backends %s, timeout %.0f s"
             % (args.profile, args.repeat, ",".join(args.backends), args.timeout))
    cwd = tempfile.mkdtemp(prefix="p2pscoop-bench-")
    try:
        t0 = time.perf_counter()
        cells, avail = run_matrix(args, env, cwd)
        steal = run_steal_latency(args, env, cwd, cells)
        machine["elapsed"] = time.perf_counter() - t0
        machine["load_end"] = report.loadavg()
    finally:
        for pgid in list(_live_groups):
            _kill_group(pgid, signal.SIGKILL, grace=0.0)
        shutil.rmtree(cwd, ignore_errors=True)
    text = report.render(args, cells, steal, machine)
    print(text)
    if missing:
        print("\nMissing backends: pip install -r %s" % REQUIREMENTS)
    if args.json:
        report.write_json(args.json, args, cells, steal, machine)
    if args.record:
        path = report.record(os.path.join(REPO, "docs", "benchmarks.md"), text, machine)
        progress("appended results to %s" % path)
    return 0


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        for _pgid in list(_live_groups):
            _kill_group(_pgid, signal.SIGKILL, grace=0.0)
        sys.exit(130)
