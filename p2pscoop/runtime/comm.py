"""The comm thread: owns every ZeroMQ socket of a peer and answers peers at once.

    peers' DEALERs ──▶ ROUTER (bound, tcp 127.0.0.1:ephemeral) ──┐
                                                                ├─▶ decode+validate ─▶ node
    main thread ── post() ─▶ outq + inproc PAIR poke ───────────┘          (under lock)
    node commands ─▶ DEALER per peer (identity = our incarnation) ──▶ peers' ROUTERs

Because this thread, not the scheduler, receives and answers steal requests, a peer whose
main thread runs a long pure-Python task still answers within a GIL switch interval.

Rules:
* Only this thread touches the ROUTER, the DEALERs and the monitor sockets. The main thread
  only appends to ``outq`` and pokes through its own PAIR socket.
* A frame from an identity that has not completed a valid HELLO is dropped and counted, and
  so is any frame that fails ``messages.decode``: it never reaches the node or a pickle.
* Sends never block: a peer that stops reading loses messages (counted), it cannot stall us.
* A DEALER whose connection drops means the peer process is gone: ``PeerDown``.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import Any, Callable

import zmq

from ..core import messages as M
from ..core.deque import Work
from ..core.errors import ProtocolError
from ..core.node import PeerDown, PeerUp, Received, Tick, Unshippable
from . import payload

LOGGER = logging.getLogger("p2pscoop.comm")

MAX_MSG_SIZE = 256 * 1024 * 1024
LINGER_MS = 500


class Comm:
    def __init__(self, peer: Any, ctx: zmq.Context, host: str = "127.0.0.1"):
        self.peer = peer
        self.ctx = ctx
        self.router = ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_SIZE)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.RCVHWM, 0)
        port = self.router.bind_to_random_port(f"tcp://{host}")
        self.address = f"tcp://{host}:{port}"
        wake_addr = f"inproc://p2pscoop-wake-{id(self)}"
        self._wake_in = ctx.socket(zmq.PAIR)
        self._wake_in.bind(wake_addr)
        self._wake_out = ctx.socket(zmq.PAIR)  # used by other threads under _post_lock
        self._wake_out.connect(wake_addr)
        self._post_lock = threading.Lock()
        self.outq: collections.deque = collections.deque()
        self.dealers: dict[bytes, zmq.Socket] = {}
        self._monitors: dict[zmq.Socket, bytes] = {}
        self.addresses: dict[bytes, str] = {}
        self.ranks: dict[bytes, int] = {}
        self.hello_ok: set[bytes] = set()
        self.const_sent: dict[bytes, set] = collections.defaultdict(set)
        self.bad_frames = 0
        self._logged: set[str] = set()  # fixed keys only: bounded
        self._bad_kinds: dict[str, int] = {}
        self.fd_watch: dict[int, Callable[[], None]] = {}
        self.on_hello: Callable[[bytes, M.Hello], None] | None = None
        self.on_shutdown: Callable[[int], None] | None = None
        self.on_refused: Callable[[M.Hello, str], None] | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="p2pscoop-comm", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop = True
        self.poke()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def close(self) -> None:
        for sock in [self.router, self._wake_in, *self.dealers.values(), *self._monitors]:
            sock.close(linger=0)
        with self._post_lock:
            self._wake_out.close(linger=0)

    # -- posting from other threads ------------------------------------------------------

    def post(self, peer: bytes, frames: list) -> None:
        """Queue ``frames`` for ``peer`` (any thread) and wake the comm thread."""
        self.outq.append((peer, frames))
        self.poke()

    def poke(self) -> None:
        with self._post_lock:
            if self._wake_out.closed:
                return
            try:
                self._wake_out.send(b"", zmq.NOBLOCK)
            except zmq.Again:
                pass  # already plenty of pokes pending

    @property
    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # -- connections (comm thread, or before start) --------------------------------------

    def connect(self, peer: bytes, address: str, hello: M.Hello) -> None:
        if peer in self.dealers:
            return
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.IDENTITY, self.peer.me)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG_SIZE)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(address)
        self.dealers[peer] = sock
        self._monitors[mon] = peer
        self.addresses[peer] = address
        sock.send_multipart(M.encode(hello), zmq.NOBLOCK)

    def _drop_peer(self, peer: bytes, why: str) -> None:
        sock = self.dealers.pop(peer, None)
        if sock is None:
            return
        for mon, p in list(self._monitors.items()):
            if p == peer:
                del self._monitors[mon]
                mon.close(linger=0)
        sock.close(linger=0)
        self.hello_ok.discard(peer)
        LOGGER.info("peer %s left: %s", peer.hex()[:8], why)
        self.peer.handle_from_comm(PeerDown(peer))

    # -- sending (comm thread) -----------------------------------------------------------

    def send(self, peer: bytes, frames: list) -> bool:
        sock = self.dealers.get(peer)
        if sock is None:
            return False
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            self._log_once("hwm", "a peer is not reading its messages: dropping some")
            return False

    def ship_works(self, thief: bytes, req: int, works: list) -> None:
        """Reply to a steal: pickle the works the thief does not own, send one GIVE."""
        rows, frames, bad = [], [], []
        for w in works:
            if w.owner == thief:
                rows.append([w.owner, w.job, w.lo, w.hi, False])
                continue
            try:
                frames.append(payload.dumps_work(w))
            except Exception as exc:
                LOGGER.warning("task of job %d cannot be pickled (%s); it stays on this "
                               "peer", w.job, exc)
                bad.append(w)
                continue
            rows.append([w.owner, w.job, w.lo, w.hi, True])
        self._send_consts(thief)
        self.send(thief, M.encode(M.Give(req, rows, payloads=frames)))
        if bad:
            self.peer.handle_from_comm(Unshippable(thief, bad))

    def results_frames(self, entries: list) -> list[list]:
        """Encode result entries as RESULTS messages (pickling each value)."""
        out = []
        for start in range(0, len(entries), M.MAX_LIST):
            rows, frames = [], []
            for job, index, status, value in entries[start:start + M.MAX_LIST]:
                status, data = payload.dumps_result(status, value)
                rows.append([job, index, status])
                frames.append(data)
            out.append(M.encode(M.Results(rows, payloads=frames)))
        return out

    def broadcast(self, msg: M.Message) -> None:
        frames = M.encode(msg)
        for peer in list(self.dealers):
            self.send(peer, frames)

    def _send_consts(self, peer: bytes) -> None:
        """Causal delivery of constants: a thief gets every constant we know before work."""
        sent = self.const_sent[peer]
        for name, data in list(self.peer.const_payloads.items()):
            if name not in sent:
                sent.add(name)
                self.send(peer, M.encode(M.Const(name, payloads=[data])))

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        registered: set = set()
        fds: set = set()
        peer = self.peer
        try:
            while not self._stop:
                for mon in self._monitors:
                    if mon not in registered:
                        poller.register(mon, zmq.POLLIN)
                        registered.add(mon)
                for mon in registered - set(self._monitors):
                    poller.unregister(mon)
                    registered.discard(mon)
                for fd in set(self.fd_watch) - fds:
                    poller.register(fd, zmq.POLLIN)
                    fds.add(fd)
                deadline = peer.node_tick()
                timeout = 100 if deadline is None else max(0, min(100, int(
                    (deadline - time.monotonic()) * 1000) + 1))
                for sock, _ in poller.poll(timeout):
                    if sock is self.router:
                        self._drain_router()
                    elif sock is self._wake_in:
                        self._drain_wake()
                    elif sock in self._monitors:
                        self._on_monitor(sock)
                    elif sock in self.fd_watch:
                        self.fd_watch[sock]()
                while self.outq:
                    target, frames = self.outq.popleft()
                    self.send(target, frames)
                peer.handle_from_comm(Tick())
            while self.outq:  # last words (SHUTDOWN) before the sockets close
                target, frames = self.outq.popleft()
                self.send(target, frames)
        except Exception:  # a bug here must not leave the peer silently deaf
            LOGGER.exception("p2pscoop comm thread crashed: please file a bug")
            os._exit(70)

    def _drain_wake(self) -> None:
        while True:
            try:
                self._wake_in.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _on_monitor(self, mon: zmq.Socket) -> None:
        try:
            mon.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        peer = self._monitors.get(mon)
        if peer is not None:
            self._drop_peer(peer, "connection lost")

    def _drain_router(self) -> None:
        for _ in range(1000):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(frames)

    def _on_frames(self, frames: list) -> None:
        ident, body = frames[0], frames[1:]
        try:
            msg = M.decode(body)
        except ProtocolError as exc:
            self._bad("malformed", f"malformed frame from {ident.hex()[:8]}: {exc}")
            return
        if isinstance(msg, M.Hello):
            self._on_hello(ident, msg)
            return
        if ident not in self.hello_ok:
            self._bad("unknown", f"{type(msg).__name__} from {ident.hex()[:8]} before a "
                                 f"valid HELLO")
            return
        if isinstance(msg, M.Welcome):
            hello = self.peer.hello()
            for inc, addr, rank in msg.peers:
                if inc != self.peer.me:
                    self.ranks[inc] = rank
                    self.connect(inc, addr, hello)
            return
        if isinstance(msg, M.Const):
            self.const_sent[ident].add(msg.name)
            self.peer.receive_const(msg.name, msg.payloads[0])
            return
        if isinstance(msg, M.Shutdown):
            if self.on_shutdown is not None:
                self.on_shutdown(msg.code)
            return
        works = []
        if isinstance(msg, M.Give):
            frames_iter = iter(msg.payloads)
            for owner, job, lo, hi, has in msg.works:
                if has:
                    works.append(payload.loads_work(owner, job, lo, hi, next(frames_iter)))
                else:
                    works.append(Work(owner, job, lo, hi, None, None))
        self.peer.handle_from_comm(Received(ident, msg, works))

    def _on_hello(self, ident: bytes, msg: M.Hello) -> None:
        why = self.peer.check_hello(ident, msg)
        if why:
            self._bad("hello", f"refused HELLO from {msg.address!r}: {why}")
            if self.on_refused is not None:
                self.on_refused(msg, why)
            return
        self.hello_ok.add(ident)
        self.ranks[ident] = msg.rank
        if ident not in self.dealers:
            self.connect(ident, msg.address, self.peer.hello())
        self.peer.handle_from_comm(PeerUp(ident))
        if self.on_hello is not None:
            self.on_hello(ident, msg)

    def _bad(self, kind: str, text: str) -> None:
        """Count a rejected frame; log the first of each kind (and later every 1000th)."""
        self.bad_frames += 1
        self._bad_kinds[kind] = n = self._bad_kinds.get(kind, 0) + 1
        if n == 1 or n % 1000 == 0:
            LOGGER.warning("%s (%d rejected of this kind so far)", text, n)

    def _log_once(self, key: str, text: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            LOGGER.warning("%s", text)
