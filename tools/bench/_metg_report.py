"""METG report: efficiency curves, the METG interpolation, tables, the plot, --record.

This module owns how METG results are *computed from the timings and shown*, never how
the timings are produced (``metg.py`` and ``_metg_driver.py`` do that). Everything but
``plot`` and ``record`` is a pure function of its arguments; matplotlib is imported only
inside ``plot``, so the table needs nothing beyond the standard library.

Definitions (Task Bench, Slaughter et al., SC'20):

* ``efficiency = serial / (workers * parallel)`` for one task duration ``d``: ``serial``
  is the *measured* time of the same tasks run inline in one process (the fastest of
  the run's serial measurements, see ``serial_baseline``), ``parallel`` the backend's.
* ``METG(t)``: the smallest task duration at which the efficiency reaches ``t``. On a
  sweep this is the smallest swept ``d`` whose efficiency is ``>= t``, refined by
  log-linear interpolation (linear in efficiency, logarithmic in ``d``) with the next
  shorter swept duration, whose efficiency is below ``t`` (``metg``). If even the
  shortest duration reaches ``t`` the result is "<= that duration"; if no duration
  does, "> the longest". A duration that was not measured (skipped by the driver's stop
  rule, or lost to an error) counts as not reaching ``t``.

Invariants: a METG is a ``Metg(value, rel)`` with ``rel`` one of ``"="``, ``"<="``,
``">"``; ordering uses ``value`` with ``">"`` as +infinity, so medians and comparisons
treat "never reached" as the worst possible result.
"""

import collections
import math
import statistics

#: Efficiency thresholds reported (fractions).
THRESHOLDS = (0.5, 0.9)

Metg = collections.namedtuple("Metg", "value rel")


# --------------------------------------------------------------------------- pure maths


def efficiency(serial, parallel, workers=2):
    """``serial / (workers * parallel)``, or None when either time is missing."""
    if serial is None or parallel is None or parallel <= 0:
        return None
    return serial / (workers * parallel)


def metg(curve, threshold):
    """METG of ``curve`` (pairs ``(d, efficiency or None)``) at ``threshold``.

    Returns ``Metg(d, "=")`` for an interpolated crossing, ``Metg(d_min, "<=")`` when
    the shortest duration already reaches the threshold, ``Metg(d_max, ">")`` when no
    duration does. An empty curve raises ``ValueError``.
    """
    pts = sorted(curve)
    if not pts:
        raise ValueError("empty efficiency curve")
    reach = [i for i, (_, e) in enumerate(pts) if e is not None and e >= threshold]
    if not reach:
        return Metg(pts[-1][0], ">")
    k = reach[0]
    d_hi, e_hi = pts[k]
    if k == 0:
        return Metg(d_hi, "<=")
    d_lo, e_lo = pts[k - 1]
    if e_lo is None:  # the shorter point was not measured: no interpolation possible
        return Metg(d_hi, "<=")
    if e_hi == e_lo:
        return Metg(d_hi, "=")
    frac = (threshold - e_lo) / (e_hi - e_lo)
    return Metg(math.exp(math.log(d_lo) + frac * (math.log(d_hi) - math.log(d_lo))), "=")


def sort_key(m):
    """Order METGs: smaller is better, "> max" is worst."""
    return (math.inf if m.rel == ">" else m.value, {"<=": 0, "=": 1, ">": 2}[m.rel])


def spread(values):
    """(min, median, max) of METGs; the median is the lower median, an actual result."""
    ordered = sorted(values, key=sort_key)
    return ordered[0], ordered[(len(ordered) - 1) // 2], ordered[-1]


def fmt_duration(seconds):
    """``46.4 µs``, ``2.15 ms``, ``100 ms``: three significant digits."""
    us = seconds * 1e6
    if us < 1000:
        return "%.3g µs" % us
    return "%.3g ms" % (us / 1000)


def fmt_metg(m):
    if m is None:
        return "—"
    prefix = {"=": "", "<=": "≤ ", ">": "> "}[m.rel]
    return prefix + fmt_duration(m.value)


def bounds(m):
    """(lowest, highest) duration ``m`` can stand for: "<= x" is (0, x), "> x" is (x, inf)."""
    if m.rel == "<=":
        return 0.0, m.value
    if m.rel == ">":
        return m.value, math.inf
    return m.value, m.value


def ratio_verdict(mine, other, limit):
    """Is ``mine / other <= limit``? "yes", "NO" or "undecided" (from the bounds)."""
    lo_a, hi_a = bounds(mine)
    lo_b, hi_b = bounds(other)
    worst = math.inf if lo_b == 0 else hi_a / lo_b
    best = 0.0 if hi_b == math.inf else lo_a / hi_b
    if worst <= limit:
        return "yes"
    if best > limit:
        return "NO"
    return "undecided"


def below_verdict(mine, other):
    """Is ``mine`` certainly below ``other``? "yes", "NO" or "undecided"."""
    lo_a, hi_a = bounds(mine)
    lo_b, hi_b = bounds(other)
    if hi_a < lo_b:
        return "yes"
    if lo_a >= hi_b:
        return "NO"
    return "undecided"


# --------------------------------------------------------------------------- from runs


def serial_baseline(runs):
    """``{(workload, d): fastest serial seconds}`` over every ok serial measurement.

    The fastest, not the median: the inline run has no overhead to hide, so on a shared
    machine every slower measurement is time the process spent waiting for a CPU (a
    busy-wait on the wall clock is stretched whenever it is descheduled)."""
    acc = collections.defaultdict(list)
    for run in runs:
        if run["backend"] != "serial":
            continue
        for p in run["points"]:
            if p.get("check"):
                acc[(p["workload"], p["d"])].append(p["seconds"])
    return {k: min(v) for k, v in acc.items()}


def curves(runs, baseline, durations, workers=2):
    """``{(backend, workload): [curve per run]}``, a curve being ``[(d, eff or None)]``.

    Every swept duration appears in every curve (None where not measured), so that
    METG treats a skipped duration as "not reached"."""
    out = collections.defaultdict(list)
    for run in runs:
        if run["backend"] == "serial":
            continue
        measured = collections.defaultdict(dict)
        for p in run["points"]:
            if p.get("check"):
                measured[p["workload"]][p["d"]] = p["seconds"]
        for w, by_d in measured.items():
            curve = [(d, efficiency(baseline.get((w, d)), by_d.get(d), workers))
                     for d in durations]
            out[(run["backend"], w)].append(curve)
    return out


def median_curve(curve_list):
    """``[(d, min, median, max)]`` of efficiency over runs, where any run measured ``d``."""
    by_d = collections.defaultdict(list)
    for curve in curve_list:
        for d, e in curve:
            if e is not None:
                by_d[d].append(e)
    return [(d, min(v), statistics.median(v), max(v)) for d, v in sorted(by_d.items())]


def summarize(curves_by_cell):
    """``{(backend, workload): {threshold: (min, median, max)}}`` of METGs over runs."""
    out = {}
    for cell, curve_list in curves_by_cell.items():
        out[cell] = {t: spread([metg(c, t) for c in curve_list]) for t in THRESHOLDS}
    return out


# --------------------------------------------------------------------------- text


def table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep] + [line(r) for r in rows])


def _loads(runs, backend):
    loads = sorted(r["load"] for r in runs if r["backend"] == backend and r["load"] is not None)
    if not loads:
        return "?"
    return "%.1f / %.1f / %.1f" % (loads[0], statistics.median(loads), loads[-1])


def metg_table(summary, runs, curves_by_cell, backends, workloads):
    """The main table: per workload and backend, METG(50%) and METG(90%) spreads."""
    header = ["workload", "backend"]
    for t in THRESHOLDS:
        pct = "%d%%" % round(t * 100)
        header += ["METG(%s) min" % pct, "median", "max"]
    header += ["runs", "load min / med / max"]
    rows = []
    for w in workloads:
        for b in backends:
            if b == "serial":
                continue
            cell = summary.get((b, w))
            n_ok = len(curves_by_cell.get((b, w), ()))
            n_all = sum(1 for r in runs if r["backend"] == b)
            if cell is None:
                why = _why_missing(runs, b, w)
                rows.append([w, b] + [why] + [""] * (3 * len(THRESHOLDS) - 1)
                            + ["%d/%d" % (n_ok, n_all), _loads(runs, b)])
                continue
            row = [w, b]
            for t in THRESHOLDS:
                row += [fmt_metg(m) for m in cell[t]]
            rows.append(row + ["%d/%d" % (n_ok, n_all), _loads(runs, b)])
    return table(header, rows)


def _why_missing(runs, backend, workload):
    for r in runs:
        if r["backend"] == backend and workload in r.get("na", ()):
            return "n/a"
    for r in runs:
        if r["backend"] == backend and r["status"] != "ok":
            return r["status"]
    return "no data"


def efficiency_table(workload, runs, baseline, curves_by_cell, backends, durations):
    """Median efficiency per duration and backend, with the serial baseline's cost."""
    sizes = {}
    for r in runs:
        for p in r["points"]:
            if p.get("workload") == workload:
                sizes[p["d"]] = p["tasks"]
    med = {b: {d: m for d, _, m, _ in median_curve(curves_by_cell.get((b, workload), ()))}
           for b in backends}
    header = ["d", "tasks", "serial s", "serial / (tasks·d)"] + [b for b in backends
                                                                if b != "serial"]
    rows = []
    for d in durations:
        s = baseline.get((workload, d))
        n = sizes.get(d)
        row = [fmt_duration(d), n or "—", "%.3g" % s if s else "—",
               "%.2f" % (s / (n * d)) if s and n else "—"]
        for b in backends:
            if b == "serial":
                continue
            e = med[b].get(d)
            row.append("%.2f" % e if e is not None else "—")
        rows.append(row)
    return table(header, rows)


def targets(summary):
    """The issue's two targets as Markdown bullets, judged on the median METG(50%)."""
    out = []
    mine = summary.get(("p2pscoop", "tree"), {}).get(0.5)
    peers = {b: s[0.5][1] for (b, w), s in summary.items() if w == "tree" and b != "p2pscoop"}
    if mine is None or not peers:
        out.append("- tree: p2pscoop's METG(50%) below every peer's: not measured")
    else:
        verdicts = [below_verdict(mine[1], m) for m in peers.values()]
        text = "NO" if "NO" in verdicts else ("undecided" if "undecided" in verdicts else "yes")
        out.append("- tree: p2pscoop's METG(50%%) %s below every peer's (%s): **%s**"
                   % (fmt_metg(mine[1]), ", ".join("%s %s" % (b, fmt_metg(m))
                                                   for b, m in sorted(peers.items())), text))
    mine = summary.get(("p2pscoop", "map"), {}).get(0.5)
    mp = summary.get(("multiprocessing", "map"), {}).get(0.5)
    if mine is None or mp is None:
        out.append("- map: p2pscoop's METG(50%) within 2x of multiprocessing.Pool's: not measured")
    else:
        a, b = mine[1], mp[1]
        ratio = ", ratio %.2f" % (a.value / b.value) if a.rel == b.rel == "=" else ""
        out.append("- map: p2pscoop's METG(50%%) %s, multiprocessing.Pool's %s%s (target ≤ 2x): "
                   "**%s**" % (fmt_metg(a), fmt_metg(b), ratio, ratio_verdict(a, b, 2.0)))
    return out


# --------------------------------------------------------------------------- plot, record


COLORS = {"p2pscoop": "tab:red", "scoop": "tab:blue", "multiprocessing": "tab:green",
          "loky": "tab:purple", "dask": "tab:orange"}


def plot(path, curves_by_cell, backends, workloads, title):
    """Efficiency vs task duration, one panel per workload, one line per backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(workloads), figsize=(6.2 * len(workloads), 4.6),
                             squeeze=False, sharey=True)
    names = {"map": "flat map of N busy-wait tasks", "tree": "nested binary tree, leaves busy-wait"}
    top = 1.1
    for ax, w in zip(axes[0], workloads):
        for b in backends:
            pts = median_curve(curves_by_cell.get((b, w), ()))
            if not pts:
                continue
            xs = [p[0] * 1e6 for p in pts]
            top = max(top, min(2.0, 1.05 * max(p[3] for p in pts)))
            ax.fill_between(xs, [p[1] for p in pts], [p[3] for p in pts],
                            color=COLORS.get(b), alpha=0.15, linewidth=0)
            ax.plot(xs, [p[2] for p in pts], marker="o", markersize=3.5, label=b,
                    color=COLORS.get(b), linewidth=2.2 if b == "p2pscoop" else 1.4)
        for t in THRESHOLDS:
            ax.axhline(t, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("task duration (µs)")
        ax.set_title(names.get(w, w))
        ax.grid(True, which="both", alpha=0.25)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right")
    for ax in axes[0]:
        ax.set_ylim(0, top)
    axes[0][0].set_ylabel("efficiency = serial / (2 × parallel)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def record(path, text, machine, command):
    """Append a dated METG run with ``text`` to the Markdown file at ``path``."""
    with open(path, "a") as f:
        f.write("\n#### METG run %s\n\nCommand: `%s`\n\n%s\n" % (machine["date"], command, text))
    return path
