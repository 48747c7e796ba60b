"""The attacker of ``test_attacks.py``: a recording TCP relay and a battery of bad clients.

Run inside a lab host (a network namespace of its own), as a script:

    python _attacker.py relay LISTEN_IP:PORT TARGET_IP:PORT CAPTURE_DIR
        Forward every connection to TARGET; write what the client sent to
        CAPTURE_DIR/c<k>.bin and what the server sent to CAPTURE_DIR/s<k>.bin (written when
        the connection ends). Prints "READY" once it listens; runs until killed.

    python _attacker.py attack NAME TARGET_IP:PORT SENTINEL_DIR SECRET_FILE CLUSTER \
            [--keyholder] [--no-outsiders] [--replay CAPTURE.bin ...]
        The variants below against TARGET (``--no-outsiders``: only the replays and the
        key holder), each carrying pickles that would create
        SENTINEL_DIR/sentinel-<NAME>-<variant> when unpickled. Prints one JSON line per
        variant (what came back), then "DONE".

Unauthenticated variants (no key of the cluster):
  null        a plain ZeroMQ DEALER (NULL mechanism): HELLO, STEAL, GIVE with a pickle
              payload, a pickle in every frame position, a pickle as its routing identity
  stonehouse  CURVE with the cluster's *public* server key (published keys are assumed
              known) and a random client keypair: the same messages
  foreign     CURVE with the keys of another secret of the same cluster name
  garbage     raw TCP: random bytes; a bare pickle; a truncated ZMTP greeting; a ZMTP NULL
              greeting + READY + a message frame holding a pickle
  oversize    raw TCP: a ZMTP greeting (CURVE) then a frame header announcing 1 TiB and
              4 MiB of it; and the same after a NULL greeting
  replay      raw TCP: the bytes a legit client sent through the relay, resent as they were
With ``--keyholder`` (defence in depth, not an outsider): CURVE with the cluster's keys, but
no valid HELLO: a pickle in every frame position, a GIVE with a pickle payload, a HELLO
with a forged MAC followed by a GIVE. Pickles must not be read from such a client either.
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import struct
import sys
import threading
import time

import zmq

from p2pscoop.core import messages as M
from p2pscoop.launch.cluster import PYTHON
from p2pscoop.transport.secret import ClusterKeys, read_secret_file

REPLY_WAIT = 0.7  # seconds a ZeroMQ client listens for an answer after its last message


class Sentinel:
    """Unpickling this creates the directory ``path`` (and nothing else)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def bomb(sentinels: str, name: str, variant: str) -> bytes:
    return pickle.dumps(Sentinel(os.path.join(sentinels, f"sentinel-{name}-{variant}")))


def hello(keys: ClusterKeys, ident: bytes, mac: bytes = b"") -> list[bytes]:
    msg = M.Hello(keys.fingerprint, ident, 1000, "tcp://10.255.255.1:9", "evil", PYTHON, 5,
                  __import__("p2pscoop").__version__, M.ROLE_PEER, "", mac)
    return M.encode(msg)


def messages(keys: ClusterKeys, ident: bytes, boom: bytes) -> list[list[bytes]]:
    """What a ZeroMQ attacker sends: protocol messages and a pickle in every position."""
    give = M.encode(M.Give(1, [[os.urandom(16), 0, 0, 4, True]], payloads=[boom]))
    results = M.encode(M.Results([[0, 0, M.OK]], payloads=[boom]))
    const = M.encode(M.Const("x", payloads=[boom]))
    steal = M.encode(M.Steal(1))
    out = [hello(keys, ident, mac=b"\0" * 32), steal, give, results, const, [boom]]
    for n in (2, 3):  # a pickle in each position of a 2- and a 3-frame message
        for k in range(n):
            frames = [M.encode(M.Steal(1))[0]] * n
            frames[k] = boom
            out.append(frames)
    return out


def zmq_client(target: str, ident: bytes, curve: tuple | None, sends: list) -> dict:
    """A DEALER (NULL, or CURVE with (server key, public, secret)) sends ``sends``."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.IDENTITY, ident)
    sock.setsockopt(zmq.HANDSHAKE_IVL, 2000)
    if curve is not None:
        server, public, secret = curve
        sock.setsockopt(zmq.CURVE_SERVERKEY, server)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    mon = sock.get_monitor_socket()
    sock.connect(f"tcp://{target}")
    sent = 0
    for frames in sends:
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:  # nothing connected (the handshake never succeeds): queue full
            pass
    replies = []
    deadline = time.monotonic() + REPLY_WAIT
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000) + 1):
            replies.append([bytes(f[:40]).hex() for f in sock.recv_multipart()])
    events = []
    while mon.poll(0):
        from zmq.utils.monitor import recv_monitor_message
        events.append(recv_monitor_message(mon)["event"])
    sock.disable_monitor()
    mon.close()
    sock.close()
    ctx.term()
    ok = zmq.EVENT_HANDSHAKE_SUCCEEDED
    return {"queued": sent, "replies": replies,
            "handshakes_ok": sum(1 for e in events if e == ok),
            "handshakes_failed": sum(1 for e in events if e in (
                zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                zmq.EVENT_HANDSHAKE_FAILED_AUTH)),
            "disconnects": sum(1 for e in events if e == zmq.EVENT_DISCONNECTED)}


def raw(target: str, chunks: list[bytes], wait: float = 1.0) -> dict:
    """Send ``chunks`` over a plain TCP connection; report what came back and whether the
    server closed the connection."""
    host, port = target.rsplit(":", 1)
    got, closed, sent = b"", False, 0
    with socket.create_connection((host, int(port)), timeout=5) as s:
        try:
            for chunk in chunks:
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:  # reset by the server: it closed on us mid-send
            closed = True
        s.settimeout(wait)
        deadline = time.monotonic() + wait
        while not closed and time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except socket.timeout:
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            got += data
    return {"sent": sent, "received": len(got), "closed": closed}


def greeting(mechanism: bytes, as_server: int = 0) -> bytes:
    """A ZMTP 3.0 greeting (64 bytes)."""
    return (b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, 0]) + mechanism.ljust(20, b"\0")
            + bytes([as_server]) + b"\0" * 31)


def frame(body: bytes, command: bool = False, more: bool = False) -> bytes:
    flags = (4 if command else 0) | (1 if more else 0)
    if len(body) < 256:
        return bytes([flags, len(body)]) + body
    return bytes([flags | 2]) + struct.pack(">Q", len(body)) + body


def attack(name: str, target: str, sentinels: str, secret_file: str, cluster: str,
           keyholder: bool = False, replays: list[str] = (), no_outsiders: bool = False) -> None:
    keys = ClusterKeys.derive(read_secret_file(secret_file), cluster)
    results = {}

    def boom(variant: str) -> bytes:
        return bomb(sentinels, name, variant)

    for path in replays:
        with open(path, "rb") as f:
            data = f.read()
        results[f"replay-{os.path.basename(path)}"] = raw(target, [data], wait=2.0)
    if not no_outsiders:
        results.update(outsiders(target, keys, boom))
    if keyholder:
        me = (keys.public, keys.public, keys.secret)
        kid = os.urandom(16)
        sends = messages(keys, kid, boom("keyholder"))
        sends.insert(1, M.encode(M.Give(1, [[os.urandom(16), 0, 0, 4, True]],
                                        payloads=[boom("keyholder-give")])))
        results["keyholder"] = zmq_client(target, kid, me, sends)
    for variant, outcome in results.items():
        print(json.dumps({"variant": variant, **outcome}), flush=True)
    print("DONE", flush=True)


def outsiders(target: str, keys: ClusterKeys, boom) -> dict:
    """The variants of clients that hold no key of the cluster."""
    results = {}
    other = ClusterKeys.derive(os.urandom(32), keys.cluster)
    ident = os.urandom(16)
    random_pub, random_sec = zmq.curve_keypair()
    for variant, curve in (("null", None),
                           ("stonehouse", (keys.public, random_pub, random_sec)),
                           ("foreign", (other.public, other.public, other.secret))):
        results[variant] = zmq_client(target, ident, curve, messages(keys, ident,
                                                                     boom(variant)))
        # a pickle as the routing identity (the ROUTER's first frame)
        pid = boom(variant + "-id")[:255]
        results[variant + "-id"] = zmq_client(target, pid, curve, [[boom(variant + "-id")]])

    results["garbage-random"] = raw(target, [os.urandom(4096)])
    results["garbage-pickle"] = raw(target, [boom("raw")])
    results["garbage-truncated-greeting"] = raw(target, [greeting(b"NULL")[:10]])
    ready = frame(b"\x05READY\x0bSocket-Type\0\0\0\x06DEALER", command=True)
    results["garbage-null-zmtp"] = raw(target, [greeting(b"NULL"), ready,
                                                frame(boom("zmtp"))])
    tib = bytes([2]) + struct.pack(">Q", 1 << 40)
    for mech in (b"CURVE", b"NULL"):
        results[f"oversize-{mech.decode().lower()}"] = raw(
            target, [greeting(mech), tib] + [b"\0" * (1 << 20)] * 4)
    return results


def relay(listen: str, target: str, capture: str) -> None:
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)
    srv = socket.create_server((lhost, int(lport)))
    print("READY", flush=True)
    k = 0
    while True:
        client, _ = srv.accept()
        k += 1
        threading.Thread(target=_shuttle, args=(client, (thost, int(tport)), capture, k),
                         daemon=True).start()


def _shuttle(client: socket.socket, target: tuple, capture: str, k: int) -> None:
    try:
        server = socket.create_connection(target, timeout=5)
    except OSError:
        client.close()
        return
    server.settimeout(None)
    logs = {"c": bytearray(), "s": bytearray()}

    def pump(src, dst, log):
        try:
            while data := src.recv(65536):
                log.extend(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    t = threading.Thread(target=pump, args=(server, client, logs["s"]), daemon=True)
    t.start()
    pump(client, server, logs["c"])
    t.join()
    for side, data in logs.items():
        path = os.path.join(capture, f"{side}{k}.bin")
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    client.close()
    server.close()


if __name__ == "__main__":
    if sys.argv[1] == "relay":
        relay(*sys.argv[2:5])
    else:
        args = sys.argv[2:]
        replays = args[args.index("--replay") + 1:] if "--replay" in args else []
        attack(*args[:5], keyholder="--keyholder" in args, replays=replays,
               no_outsiders="--no-outsiders" in args)
