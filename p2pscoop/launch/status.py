"""``p2pscoop status``: find the nodes of a cluster and print what each one says of itself.

Nodes are found with zeroconf (for ``wait`` seconds) and/or from ``--nodes``; each is asked
over the secure transport (HELLO as a client, then STATUS). A node that refuses (another
version) or does not answer is listed with the reason, and the exit status is then 1.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from ..core import messages as M
from ..discovery import PeerSeen
from ..discovery.static import parse_peer
from .cluster import Secure, ask_node


def find_nodes(secure: Secure, nodes: list[str], zeroconf: bool, wait: float) -> list[str]:
    found = [parse_peer(n) for n in nodes]
    if zeroconf:
        import os

        from ..discovery.zeroconf import ZeroconfDiscovery

        lock = threading.Lock()

        def on_event(ev) -> None:
            if type(ev) is PeerSeen:
                with lock:
                    if ev.address not in found:
                        found.append(ev.address)

        try:
            zc = ZeroconfDiscovery(secure.keys.fingerprint, "status-" + os.urandom(6).hex(),
                                   "", secure.host, on_event, announce=False)
            zc.start()
        except OSError as exc:
            print(f"p2pscoop: zeroconf is off ({exc}); use --nodes HOST:PORT",
                  file=sys.stderr)
        else:
            time.sleep(wait)
            zc.stop()
    return found


def status(secure: Secure, nodes: list[str], zeroconf: bool, wait: float,
           as_json: bool) -> int:
    addresses = find_nodes(secure, nodes, zeroconf, wait)
    if not addresses:
        print(f"p2pscoop: no node of cluster {secure.cluster!r} found", file=sys.stderr)
        return 1
    failed = 0
    rows = []
    for address in addresses:
        try:
            reply = ask_node(secure, address, M.Status(1))
        except Exception as exc:  # report every node, whatever went wrong with one
            failed += 1
            rows.append({"address": address, "error": str(exc)})
            continue
        if type(reply) is M.StatusReport:
            rows.append(json.loads(reply.report))
        else:
            failed += 1
            rows.append({"address": address,
                         "error": getattr(reply, "reason", type(reply).__name__)})
    for row in rows:
        if as_json:
            print(json.dumps(row, sort_keys=True))
        elif "error" in row:
            print(f"{row['address']}  ERROR: {row['error']}")
        else:
            programs = ", ".join(f"{p['program']} ({p['peers']} peers)"
                                 for p in row["programs"]) or "no program"
            load = "?" if row["load"] is None else f"{row['load']:.2f}"
            print(f"{row['node']}  {row['host']}  {row['address']}  load {load}  "
                  f"{row['peers_per_program']} peers per program  serving: {programs}")
    return 1 if failed else 0
