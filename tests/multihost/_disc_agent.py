"""A small process that drives ``ZeroconfDiscovery`` for the multi-host discovery tests.

Run inside a network namespace (never in the root one: it multicasts). It reads one JSON command
per line on stdin and writes one JSON object per line on stdout:

    {"cmd": "start", "fp": F, "id": I, "address": A, "host": H, "reannounce": S,
     "interfaces": [IP...], "explode": B}
        -> {"event": "ack", "cmd": "start"}; then {"event": "seen", ...} / {"event": "gone", ...}
    {"cmd": "raw", "name": N, "port": P, "addresses": [IP...], "props": {K: V}, "hex": {K: HEX}}
        registers a hand-made service (any properties, bytes given in hex) on a separate
        Zeroconf instance -> {"event": "ack", "cmd": "raw"}
    {"cmd": "counts"}  -> {"event": "counts", "ignored": {...}}
    {"cmd": "stop"}    -> stops the discovery, {"event": "ack", "cmd": "stop"}
    {"cmd": "exit"}    -> stops everything and exits 0

Errors are reported as {"event": "error", "cmd": C, "error": TEXT} and the agent goes on.
"""

import json
import socket
import sys
import threading

from zeroconf import IPVersion, ServiceInfo, Zeroconf

from p2pscoop.discovery import PeerGone, PeerSeen
from p2pscoop.discovery.zeroconf import SERVICE_TYPE, ZeroconfDiscovery

_print_lock = threading.Lock()


def emit(**obj):
    with _print_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


EXPLODE = []  # set by {"cmd": "start", "explode": true}: on_event raises after reporting


def on_event(event):
    report(event)
    if EXPLODE:
        raise RuntimeError("on_event exploded on purpose")


def report(event):
    if isinstance(event, PeerSeen):
        emit(event="seen", name=event.name, address=event.address, host=event.host,
             props=event.props)
    elif isinstance(event, PeerGone):
        emit(event="gone", name=event.name)


def register_raw(zc, cmd):
    props = {k.encode(): v.encode() for k, v in cmd.get("props", {}).items()}
    props.update({k.encode(): bytes.fromhex(v) for k, v in cmd.get("hex", {}).items()})
    info = ServiceInfo(SERVICE_TYPE, f"{cmd['name']}.{SERVICE_TYPE}", port=cmd["port"],
                       addresses=[socket.inet_aton(a) for a in cmd["addresses"]],
                       properties=props, server=f"{cmd['name']}.raw.local.")
    zc.register_service(info, cooperating_responders=True)


def main():
    disc = None
    raw_zc = None
    for line in sys.stdin:
        cmd = json.loads(line)
        what = cmd["cmd"]
        try:
            if what == "start":
                if cmd.get("explode"):
                    EXPLODE.append(True)
                disc = ZeroconfDiscovery(cmd["fp"], cmd["id"], cmd["address"], cmd["host"],
                                         on_event, interfaces=cmd.get("interfaces"),
                                         reannounce=cmd.get("reannounce", 10.0))
                disc.start()
            elif what == "raw":
                if raw_zc is None:
                    raw_zc = Zeroconf(ip_version=IPVersion.V4Only)
                register_raw(raw_zc, cmd)
            elif what == "counts":
                emit(event="counts", ignored=disc.ignored if disc else {})
                continue
            elif what == "stop":
                disc.stop()
            elif what == "exit":
                break
            emit(event="ack", cmd=what)
        except Exception as exc:  # report and go on: the test decides what it means
            emit(event="error", cmd=what, error=f"{type(exc).__name__}: {exc}")
    if disc is not None:
        disc.stop()
    if raw_zc is not None:
        raw_zc.close()
    emit(event="exited")


if __name__ == "__main__":
    main()
