#!/usr/bin/env python3
"""DEAP's documented examples, serial vs p2pscoop on 2 peers (issue 7: faster than serial
with a fitness of a few ms).

    python tools/bench/deap_examples.py                 # 3 repeats, interleaved
    python tools/bench/deap_examples.py --repeat 5 --only onemax --modes p2p,broker

The programs are the SCOOP-style DEAP programs of ``tests/compat/deap/`` (OneMax with
``eaSimple``, a GP symbolic regression, an island model), unmodified: ``from scoop import
futures`` and ``toolbox.register("map", futures.map)``. Serially ``import scoop`` is a
stand-in package whose ``futures.map`` is the builtin (what SCOOP itself does outside its
launcher); under ``python -m p2pscoop -n 2 [--broker]`` it is p2pscoop's own. Each program
prints ``TIME <s>`` on stderr: the algorithm alone, start-up excluded. The table gives the
speed-up over serial (serial median / mode median) with min / median / max of each, and the
load average before each run; every run's results must equal the serial run's (``RESULT``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = os.path.join(REPO, "tests", "compat", "deap")

# name -> (program, arguments): each fitness costs a few ms (``_helpers.burn``)
CASES = {
    "onemax": ("onemax.py", ["8", "100", "30000"]),
    "symbreg": ("symbreg.py", ["8", "150", "2000"]),
    "island": ("onemax_island.py", ["4", "4", "50", "2", "30000"]),
}
MODES = {"serial": None, "p2p": [], "broker": ["--broker"]}


def stand_in() -> str:
    folder = tempfile.mkdtemp(prefix="p2pscoop-bench-deap-")
    os.makedirs(os.path.join(folder, "scoop"))
    with open(os.path.join(folder, "scoop", "__init__.py"), "w") as f:
        f.write("from p2pscoop import futures, shared  # serial: futures.map is the builtin\n")
    return folder


def run_once(case: str, mode: str, scoop_dir: str) -> dict:
    program, args = CASES[case]
    path = os.path.join(PROGRAMS, program)
    env = dict(os.environ)
    extra = MODES[mode]
    if extra is None:
        argv = [sys.executable, path, *args]
        env["PYTHONPATH"] = os.pathsep.join([scoop_dir, REPO])
    else:
        argv = [sys.executable, "-m", "p2pscoop", "-n", "2", *extra, path, *args]
        env["PYTHONPATH"] = REPO
    load = os.getloadavg()[0]
    proc = subprocess.run(argv, cwd=PROGRAMS, env=env, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        return {"error": f"status {proc.returncode}: {proc.stderr.strip()[-300:]}",
                "load": load}
    seconds = [float(line.split()[1]) for line in proc.stderr.splitlines()
               if line.startswith("TIME ")]
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return {"seconds": seconds[-1], "result": result[-1] if result else "", "load": load}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default=",".join(CASES), help="of " + ", ".join(CASES))
    p.add_argument("--modes", default="p2p,broker", help="p2p, broker (serial always runs)")
    p.add_argument("--json", default=None, help="also write every run to this file")
    args = p.parse_args(argv)
    cases = [c for c in args.only.split(",") if c]
    modes = ["serial"] + [m for m in args.modes.split(",") if m and m != "serial"]
    scoop_dir = stand_in()
    runs: dict[tuple[str, str], list[dict]] = {(c, m): [] for c in cases for m in modes}
    t0 = time.monotonic()
    for r in range(args.repeat):
        for case in cases:
            for mode in modes:
                rec = run_once(case, mode, scoop_dir)
                runs[(case, mode)].append(rec)
                print(f"[{r + 1}/{args.repeat}] {case:8} {mode:7} "
                      + (rec.get("error") or f"{rec['seconds']:.3f} s")
                      + f" (load {rec['load']:.2f})", file=sys.stderr, flush=True)
    rows = []
    for case in cases:
        serial = [x["seconds"] for x in runs[(case, "serial")] if "seconds" in x]
        ref = {x["result"] for x in runs[(case, "serial")] if "result" in x}
        for mode in modes:
            ok = [x for x in runs[(case, mode)] if "seconds" in x]
            secs = sorted(x["seconds"] for x in ok)
            same = all(x["result"] in ref for x in ok) and len(ref) == 1
            speed = (statistics.median(serial) / statistics.median(secs)
                     if serial and secs else None)
            loads = sorted(x["load"] for x in runs[(case, mode)])
            rows.append([case, mode,
                         " / ".join(f"{v:.2f}" for v in (secs[0], statistics.median(secs),
                                                         secs[-1])) if secs else "-",
                         f"{speed:.2f}x" if speed and mode != "serial" else "",
                         "yes" if same else "NO", f"{len(ok)}/{len(runs[(case, mode)])}",
                         " / ".join(f"{v:.1f}" for v in (loads[0], statistics.median(loads),
                                                         loads[-1]))])
    header = ["program", "mode", "seconds min / median / max", "speed-up over serial",
              "same results", "runs ok", "load min / median / max"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"  # noqa
    print("\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                    + [line(r) for r in rows]))
    print(f"\n{args.repeat} repeat(s), 2 peers, nproc {os.cpu_count()}, Python "
          f"{sys.version.split()[0]}, total {time.monotonic() - t0:.0f} s; command: "
          f"python tools/bench/deap_examples.py {' '.join(argv or sys.argv[1:])}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{c}/{m}": v for (c, m), v in runs.items()}, f, indent=1)
    return 0 if all("error" not in x for v in runs.values() for x in v) else 1


if __name__ == "__main__":
    sys.exit(main())
