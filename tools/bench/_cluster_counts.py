"""Message counts of a lab run, read from the peers' logs (``tools/bench/cluster.py -v``).

Owns one thing: turning the line every peer logs at INFO when it closes (``Peer.close``:
"ran N unit(s); steals sent S (F got nothing), granted G, denied D; units given ..., received
...") into totals for the run and per task. Only lines written after ``since`` (the wall
clock the harness notes in each log line) count, so a node's log that spans several runs
is read for the last one only. Nothing here starts a process; a log without such lines
(no ``-v``) gives zeros, never an error.

The figures per task answer "how many steal round trips and denials did a task cost":
``steals`` (requests sent), ``failed`` (answered with nothing), ``granted`` (answered with
work) and ``units_moved`` (units that crossed a link, counted by the giver).
"""

from __future__ import annotations

import re

LINE = re.compile(r"^(?P<at>\d+\.\d+) err .*ran (?P<ran>\d+) unit\(s\); steals sent "
                  r"(?P<sent>\d+) \((?P<failed>\d+) got nothing\), granted (?P<granted>\d+), "
                  r"denied (?P<denied>\d+); units given (?P<given>\d+), received "
                  r"(?P<received>\d+)")
FIELDS = ("ran", "sent", "failed", "granted", "denied", "given", "received")


def peer_counts(paths: list[str], since: float) -> dict:
    """Sum the peers' closing counters logged after ``since`` in the files ``paths``."""
    total = dict.fromkeys(FIELDS, 0)
    peers = 0
    for path in paths:
        try:
            with open(path) as f:
                lines = f.readlines()
        except OSError:
            continue
        for line in lines:
            m = LINE.match(line)
            if m is None or float(m["at"]) < since:
                continue
            peers += 1
            for k in FIELDS:
                total[k] += int(m[k])
    ran = max(total["ran"], 1)
    per_task = {"steals": round(total["sent"] / ran, 2),
                "failed": round(total["failed"] / ran, 2),
                "granted": round(total["granted"] / ran, 2),
                "units_moved": round(total["given"] / ran, 2)}
    return {"peers": peers, **total, "per_task": per_task}
