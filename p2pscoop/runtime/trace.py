"""The task timeline (``--trace FILE``): a collector's events as a Chrome trace, and a summary.

The file is the Chrome trace-event JSON object format, which Perfetto (ui.perfetto.dev) and
chrome://tracing open (docs/trace.md):

    {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}

* one ``"X"`` (complete) event per unit run, exactly one: ``name`` is the function,
  ``ts``/``dur`` in microseconds since the first event, ``args`` the job and its owner;
* ``pid`` is a number per host, ``tid`` a number per peer, and ``"M"`` metadata events name
  them (``process_name``: the host; ``thread_name``: the peer, "(origin)" marked);
* a steal is an ``"i"`` (instant) event on the victim's track, ``cat`` "steal", ``args``
  thief, victim and units, with a flow arrow (``"s"`` at the victim, in the slice it runs
  then; ``"f"`` at the thief, bound to its next slice) when the thief reported too.

Times come from each peer's own clock (``time.time``): across hosts the tracks are as
aligned as the hosts' clocks are. The summary counts, per peer, the units run, the time
busy (the union of its runs: a unit that waits for its children overlaps them, and counts
while it waits) and idle (the time its scheduler slept with nothing to run, as the peer
measured it from its first task on: waiting for work to steal or for results), against the
run's wall time.
"""

from __future__ import annotations

import json
import time
from typing import Any


def _numbering(col: Any) -> tuple[dict, dict, dict]:
    """(host -> pid, peer id -> tid, peer id -> host), stable: the origin first."""
    hosts: dict[str, int] = {}
    tids: dict[bytes, int] = {}
    host_of: dict[bytes, str] = {}
    for n, peer in enumerate(col.order, 1):
        host = col.rows[peer]["host"]
        host_of[peer] = host
        hosts.setdefault(host, len(hosts) + 1)
        tids[peer] = n
    return hosts, tids, host_of


def chrome_events(col: Any) -> list[dict]:
    """Every trace event of collector ``col`` (called under its lock)."""
    hosts, tids, host_of = _numbering(col)
    starts = [r[3] for r in col.runs] + [s[3] for s in col.steals]
    base = min(starts) if starts else int(col.started * 1e6)
    events: list[dict] = []
    for host, pid in hosts.items():
        events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"name": f"host {host}"}})
        events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                       "args": {"sort_index": pid}})
    for peer, tid in tids.items():
        row = col.rows[peer]
        name = f"peer {row['peer']} (pid {row['pid']})"
        if row["peer"] == col.origin:
            name += " (origin)"
        pid = hosts[host_of[peer]]
        events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"name": name}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": pid, "tid": tid,
                       "args": {"sort_index": tid}})
    for peer, job, owner, start, end, fn in col.runs:
        events.append({"name": fn, "cat": "unit", "ph": "X", "ts": start - base,
                       "dur": end - start, "pid": hosts[host_of[peer]], "tid": tids[peer],
                       "args": {"job": job, "owner": owner.hex()[:8]}})
    for n, (victim, thief, units, at) in enumerate(col.steals, 1):
        pid, tid = hosts[host_of[victim]], tids[victim]
        args = {"victim": victim.hex()[:8], "thief": thief.hex()[:8], "units": units}
        events.append({"name": f"steal: {units} unit(s) to {args['thief']}", "cat": "steal",
                       "ph": "i", "s": "t", "ts": at - base, "pid": pid, "tid": tid,
                       "args": args})
        if thief in tids:
            events.append({"name": "steal", "cat": "steal", "ph": "s", "id": n,
                           "ts": at - base, "pid": pid, "tid": tid})
            # (no "bp": the arrow ends at the thief's next slice, the stolen unit's run)
            events.append({"name": "steal", "cat": "steal", "ph": "f", "id": n,
                           "ts": at - base, "pid": hosts[host_of[thief]], "tid": tids[thief]})
    return events


def _busy(intervals: list) -> int:
    """Microseconds covered by the union of ``[(start, end)]``."""
    total, cur_s, cur_e = 0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def summary(col: Any) -> dict:
    """Tasks, steals and idle time per peer of collector ``col`` (under its lock)."""
    ended = col.ended if col.ended is not None else time.time()
    wall = max(0.0, ended - col.started)
    per: dict[bytes, list] = {p: [] for p in col.order}
    for peer, _job, _owner, start, end, _fn in col.runs:
        per.setdefault(peer, []).append((start, end))
    peers = []
    for peer in col.order:
        row = col.rows[peer]
        busy = _busy(per.get(peer, [])) / 1e6
        peers.append({"peer": row["peer"], "host": row["host"], "tasks": len(per[peer]),
                      "units_done": row["units_done"], "busy": round(busy, 6),
                      "idle": round(min(wall, row["_idle"]), 6),
                      "steals_granted": row["steals_granted"],
                      "steals_denied": row["steals_denied"]})
    return {"program": col.program, "wall": round(wall, 6), "tasks": len(col.runs),
            "steals": len(col.steals), "units_stolen": sum(s[2] for s in col.steals),
            "peers": peers, "bad_reports": col.bad_reports, "dropped": col.dropped}


def summary_text(s: dict) -> str:
    """The summary as the launcher prints it after a traced run."""
    lines = [f"p2pscoop trace: {s['tasks']} task(s) on {len(s['peers'])} peer(s) in "
             f"{s['wall']:.3f} s; {s['steals']} steal(s) moved {s['units_stolen']} unit(s)"]
    lines.append(f"  {'peer':<10}{'host':<16}{'tasks':>8}{'busy s':>10}{'idle s':>10}"
                 f"{'idle %':>8}")
    for p in s["peers"]:
        pct = 100.0 * p["idle"] / s["wall"] if s["wall"] else 0.0
        lines.append(f"  {p['peer']:<10}{p['host'][:15]:<16}{p['tasks']:>8}"
                     f"{p['busy']:>10.3f}{p['idle']:>10.3f}{pct:>7.1f}%")
    if s["dropped"]:
        lines.append(f"  ({s['dropped']} event(s) beyond the trace's limit were not kept)")
    if s["bad_reports"]:
        lines.append(f"  ({s['bad_reports']} malformed report(s) dropped)")
    return "\n".join(lines)


def write(col: Any, path: str) -> dict:
    """Write ``col``'s trace to ``path`` (Chrome JSON); return its summary."""
    events = col.trace_events()
    summ = col.summary()
    doc = {"traceEvents": events, "displayTimeUnit": "ms",
           "otherData": {"program": col.program, "origin": col.origin,
                         "started": col.started, "tasks": summ["tasks"],
                         "steals": summ["steals"]}}
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, separators=(",", ":"))
    return summ
