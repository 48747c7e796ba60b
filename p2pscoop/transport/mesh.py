"""The comm thread: owns every ZeroMQ socket of a peer and answers peers at once.

    peers' DEALERs ──▶ ROUTER (bound: 127.0.0.1 or, with a secret, any address) ──┐
                                                                  decode+validate ├─▶ owner
    main thread ── post()/post_call() ─▶ outq + inproc PAIR poke ─────────────────┘  (node)
    node commands ─▶ DEALER per peer (identity = our incarnation) ──▶ peers' ROUTERs

Because this thread, not the scheduler, receives and answers steal requests, a peer whose
main thread runs a long pure-Python task still answers within a GIL switch interval (kept
short: ``NodeConfig.switch_interval``), and the thread asks the OS for a short time slice so
that it is not left waiting behind busy threads once woken (``shorten_slice``).

The owner (``runtime.peer.Peer``) is attached after construction; this module imports
nothing of the runtime: it calls the owner's ``handle_from_comm(event)``, ``node_tick()``,
``dumps_work(work)``, ``loads_work(data, owner, job, lo, hi, importing)`` and ``fatal(error)``.

Rules:
* Only this thread touches the ROUTER, the DEALERs, the monitor sockets and ``admitted``.
  Other threads append to ``outq`` (frames or calls) and poke through their PAIR socket.
* Who is admitted is the core's decision (``core/membership.py``), carried out here by the
  ``Admit``/``Drop`` commands. A frame from a peer that is not admitted is dropped and
  counted unless it is a HELLO or a REFUSE (which carry no pickle), and so is any frame that
  fails ``messages.decode``: pickled bytes never reach a loader from an unadmitted peer.
* Sends never block: a peer that stops reading loses messages (counted), it cannot stall us.
* Nor do imports: a GIVE whose unpickling needs a module not imported yet is decoded by
  ``decoding.Decoder`` on a thread of its own, so heartbeats go on (``decoding.py``).
* A DEALER whose connection drops means the peer process is gone: ``Disconnected``.
* Tunnel mode (``TransportConfig.tunnel``): the origin dials nobody and a worker dials the
  origin only; ``relay.py`` (a mixin of ``Comm``) carries out ``core/tunnel.py``'s routes.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

import zmq

from ..core import messages as M
from ..core.config import TransportConfig
from ..core.errors import InternalError, NeedsImport, ProtocolError, SecurityError
from ..core.events import Disconnected, Received, Tick, Unshippable
from ..core import tunnel as T
from .decoding import Decoder, placeholder
from .osthread import hand_over, name_thread, shorten_slice  # noqa: F401  (shorten_slice: tests)
from .relay import RelayMixin

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: plain ints for the per-message checks (``&`` on pyzmq's enum members: 0.7 us, ints 0.02)
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_bind(host: str, keys: Any) -> None:
    """Secure by default: nothing listens beyond loopback without a cluster secret."""
    if keys is None and host not in LOOPBACK and not host.startswith("127."):
        raise SecurityError(
            f"refusing to listen on {host} without a cluster secret: anyone who can reach "
            f"it could run code here. Make a secret with `p2pscoop secret FILE`, copy it "
            f"(mode 0600) to every host, and pass --secret-file FILE (or set "
            f"P2PSCOOP_SECRET_FILE)")

LOGGER = logging.getLogger("p2pscoop.comm")

def _stop_monitor(sock: zmq.Socket) -> None:
    """Stop ``sock``'s monitor before its reading end is closed. libzmq's I/O thread writes
    monitor events into a PAIR socket and blocks when nobody can read them: a dealer whose
    monitor reader was closed first blocks the context's only I/O thread at its next
    DISCONNECTED event, and every connection of the peer stalls until the context ends
    (seen as a peer that joins at the end of a run but reads nothing for seconds)."""
    try:
        sock.disable_monitor()
    except zmq.ZMQError:
        pass


class Comm(RelayMixin):
    """The ZeroMQ mesh of one peer. Binds its ROUTER at once (``address``)."""

    def __init__(self, ctx: zmq.Context | None = None, config: TransportConfig | None = None,
                 host: str = "127.0.0.1", keys: Any = None, port: int = 0,
                 advertise: str | None = None):
        """Bind on ``host:port`` (0: any free port). ``keys`` (``security.ClusterKeys``):
        every socket then speaks CurveZMQ and a ZAP handler admits only this cluster's key;
        without keys only a loopback ``host`` is allowed. ``advertise``: the host name or
        address peers should dial (default ``host``; required when ``host`` is 0.0.0.0)."""
        check_bind(host, keys)
        self.peer: Any = None  # the owner, see ``attach``
        self.config = config = config or TransportConfig()
        self.keys = keys
        self.own_ctx = ctx is None
        self.ctx = ctx = ctx or zmq.Context()
        self.auth = None
        security = None
        if keys is not None:  # imported here: a loopback run needs none of it
            from . import security

            self._security = security
            security.require_curve()
            self.auth = security.Authenticator(ctx, keys)
            self.auth.start()
            security.self_test(ctx, keys)
        self.router = ctx.socket(zmq.ROUTER)
        if keys is not None:
            security.harden(self.router, max_message_size=config.max_msg_size, pings=False)
            security.secure_server(self.router, keys)
        self.router.setsockopt(zmq.MAXMSGSIZE, config.max_msg_size)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.setsockopt(zmq.RCVHWM, 0)
        # A peer that closes its connection to us and dials again (a link pruned, then
        # re-opened) reconnects under the same identity, its incarnation. Without handover
        # the ROUTER ignores the new connection for as long as it still holds the old one
        # (until this thread reads the old one's end): everything the peer sends on it is
        # lost, its HELLO included, and it gives us up 13.5 s later. An incarnation is one
        # process: its newest connection is the live one.
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        where = f"tcp://{_bracket(host)}"
        try:
            if port:
                self.router.bind(f"{where}:{port}")
            else:
                port = self.router.bind_to_random_port(where)
        except zmq.ZMQError as exc:
            self.router.close(linger=0)
            if self.auth is not None:
                self.auth.stop()
            raise OSError(f"p2pscoop cannot listen on {host}:{port or 'any port'}: {exc}") \
                from None
        self.port = port
        if advertise is None and host in ("0.0.0.0", "::", "*"):
            raise ValueError("listening on every interface: say which address peers dial "
                             "(advertise)")
        self.address = f"tcp://{_bracket(advertise or host)}:{port}"
        wake_addr = f"inproc://p2pscoop-wake-{id(self)}-{time.monotonic_ns()}"  # (ids recur)
        self._wake_in = ctx.socket(zmq.PAIR)
        self._wake_in.bind(wake_addr)
        self._wake_out = ctx.socket(zmq.PAIR)  # used by other threads under _post_lock
        self._wake_out.connect(wake_addr)
        self._post_lock = threading.Lock()
        self.outq: collections.deque = collections.deque()
        self.dealers: dict[bytes, zmq.Socket] = {}
        self._monitors: dict[zmq.Socket, bytes] = {}
        self._mon_fds: dict[int, zmq.Socket] = {}  # the monitors the poller watches, by fd
        #: bumped whenever a socket the loop polls comes or goes (``_sync_poller``)
        self._sockets = 0
        self.admitted: set[bytes] = set()
        self.departed: dict[bytes, None] = {}  # dropped after admission (bounded, ordered)
        self.late_frames = 0  # frames from departed peers, dropped quietly
        self.decoder = Decoder(self)  # GIVEs that need an import (``decoding.py``)
        self.bad_frames = 0
        self._logged: set[str] = set()  # fixed keys only: bounded
        self._bad_kinds: dict[str, int] = {}
        self.fd_watch: dict[int, Callable[[], None]] = {}
        #: tunnel mode: the routing table (made by ``attach``, which knows our rank), and
        #: the DEALERs we read from (a worker's to the hub) -> the peer at their far end
        self.routes: T.TunnelRoutes | None = None
        self._inbound: dict[zmq.Socket, bytes] = {}
        self._hellos: dict[bytes, int] = {}  # HELLOs of admitted peers (``_greeted_again``)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="p2pscoop-comm", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def attach(self, owner: Any) -> None:
        self.peer = owner
        if self.config.tunnel:
            self.routes = T.TunnelRoutes(is_hub=getattr(owner, "rank", -1) == 0)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop = True
        self.decoder.stop()
        self.poke()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def close(self) -> None:
        # Dealers keep their linger (``linger_ms``): the last words queued just before (a
        # BYE after SHUTDOWN) must reach the wire, not be discarded with the socket.
        for sock in self.dealers.values():
            _stop_monitor(sock)
            sock.close()
        for sock in [self.router, self._wake_in, *self._monitors]:
            sock.close(linger=0)
        with self._post_lock:
            self._wake_out.close(linger=0)
        if self.auth is not None:
            self.auth.stop()
        if self.own_ctx:
            self.ctx.term()

    # -- posting from other threads ------------------------------------------------------

    def post(self, peer: bytes, frames: list, *, wake: bool = True) -> None:
        """Queue ``frames`` for ``peer`` (any thread); ``wake=False``: the caller pokes."""
        self.outq.append((peer, frames))
        if wake:
            self.poke()

    def post_call(self, fn: Callable, *args, wake: bool = True) -> None:
        """Run ``fn(*args)`` on the comm thread soon (any thread; ``wake`` as in ``post``)."""
        self.outq.append((None, (fn, args)))
        if wake:
            self.poke()

    def poke(self) -> None:
        with self._post_lock:
            if self._wake_out.closed:
                return
            try:
                self._wake_out.send(b"", zmq.NOBLOCK)
            except zmq.Again:
                pass  # already plenty of pokes pending
        hand_over()  # its turn now, not when our slice ends (``osthread.py``)

    @property
    def on_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _owner(self) -> None:
        """Sockets are the comm thread's: anyone else must post (cheap check)."""
        if threading.current_thread() is not self._thread and self._thread.is_alive():
            raise InternalError(f"a socket of the comm thread used from "
                                f"{threading.current_thread().name}: please file a bug")

    # -- connections (comm thread; commands of the core) ---------------------------------

    def _dealer(self, address: str) -> zmq.Socket:
        cfg = self.config
        sock = self.ctx.socket(zmq.DEALER)
        if self.keys is not None:
            self._security.harden(sock, max_message_size=cfg.max_msg_size)
            self._security.secure_client(sock, self.keys)
        sock.setsockopt(zmq.IDENTITY, self.peer.me)
        sock.setsockopt(zmq.LINGER, cfg.linger_ms)
        sock.setsockopt(zmq.SNDHWM, cfg.sndhwm)
        sock.setsockopt(zmq.MAXMSGSIZE, cfg.max_msg_size)
        sock.setsockopt(zmq.RECONNECT_IVL, cfg.reconnect_ivl_ms)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, cfg.reconnect_max_ms)
        return sock

    def connect(self, peer: bytes, address: str) -> None:
        self._owner()
        if peer in self.dealers:
            return
        if self.routes is not None and self.routes.connect(peer) != T.DIAL:
            return  # the hub answers on the peer's connection; a worker relays via the hub
        sock = self._dealer(address)
        mon = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(address)
        self.dealers[peer] = sock
        self._monitors[mon] = peer
        self._sockets += 1
        if self.routes is not None:
            self._inbound[sock] = peer  # the hub replies on this connection

    def admit(self, peer: bytes) -> None:
        self.admitted.add(peer)

    def drop(self, peer: bytes) -> None:
        self._owner()
        if peer in self.admitted:
            self.admitted.discard(peer)
            self.departed[peer] = None  # its last frames may still arrive: not an attack
            if len(self.departed) > 4096:
                del self.departed[next(iter(self.departed))]
        self._hellos.pop(peer, None)
        if self.routes is not None:
            self.routes.drop(peer)
        sock = self.dealers.pop(peer, None)
        if sock is None:
            return
        self._sockets += 1
        self._inbound.pop(sock, None)
        _stop_monitor(sock)  # before its reader goes: see ``_stop_monitor``
        for mon, p in list(self._monitors.items()):
            if p == peer:
                del self._monitors[mon]
                mon.close(linger=0)
        sock.close(linger=0)

    def send_refuse(self, peer: bytes, address: str, reason: str) -> None:
        """Tell a refused peer why, on a connection of its own (it is not admitted)."""
        self._owner()
        if self.routes is not None:  # nobody dials in tunnel mode: on the way it came
            self.send(peer, M.encode(M.Refuse(reason[:M.MAX_STR])))
            return
        sock = self._dealer(address)
        try:
            sock.connect(address)
            sock.send_multipart(M.encode(M.Refuse(reason[:M.MAX_STR])), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        finally:
            sock.close(linger=1000)

    # -- sending (comm thread) -----------------------------------------------------------

    def send(self, peer: bytes, frames: list) -> bool:
        sock = self.dealers.get(peer)
        if sock is None:
            if self.routes is None:
                return False
            return self._send_tunnel(peer, frames)
        try:
            sock.send_multipart(frames, _NOBLOCK)
            return True
        except zmq.Again:
            self._log_once("hwm", "a peer is not reading its messages: dropping some")
            return False

    def ship_works(self, thief: bytes, req: int, works: list, left: int = 0) -> None:
        """Reply to a steal: pickle what the thief does not own, one GIVE (``left``: ours)."""
        self._owner()
        frames, bad = self.give_frames(thief, req, works, left)
        self.send(thief, frames)
        if bad:
            self.peer.handle_from_comm(Unshippable(thief, bad))

    def give_frames(self, thief: bytes, req: int, works: list, left: int = 0) -> tuple:
        """The encoded GIVE, and the works that could not be pickled (logged; they stay
        here). No socket: any thread may call it (a push: ``PeerExecutor.on_ShipWorks``)."""
        msg, bad = M.give_message(req, works, thief, self.peer.dumps_work, left)
        for w in bad:
            LOGGER.warning("task of job %d cannot be pickled; it stays on this peer", w.job)
        return M.encode(msg), bad

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        name_thread("p2pscoop-comm")
        shorten_slice(self.config.comm_slice_us)
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self._wake_in, zmq.POLLIN)
        registered: set = set()
        fds: set = set()
        peer = self.peer
        synced = None  # (_sockets, fd_watch size) when the poller last matched them
        try:
            while not self._stop:
                if synced != (self._sockets, len(self.fd_watch)):
                    synced = (self._sockets, len(self.fd_watch))
                    self._sync_poller(poller, registered, fds)
                deadline = peer.node_tick()
                timeout = 1000 if deadline is None else max(0, min(1000, int(
                    (deadline - time.monotonic()) * 1000) + 1))
                events = poller.poll(timeout)
                for sock, _ in events:
                    if sock is self.router:
                        self._drain_router()
                    elif sock is self._wake_in:
                        self._drain_wake()
                    elif sock in self._mon_fds:
                        self._on_monitor(self._mon_fds[sock])
                    elif sock in self._inbound:
                        self._drain_dealer(sock)
                    elif sock in self.fd_watch:
                        self.fd_watch[sock]()
                self._drain_outq()
                # Tick only when something is due: a message handled above that set a new
                # deadline is seen by node_tick at the top of the loop (one lock, not two,
                # per wake-up of an idle peer)
                if not events or (deadline is not None and time.monotonic() >= deadline):
                    peer.handle_from_comm(Tick())
            self._drain_outq()  # last words (SHUTDOWN, BYE) before the sockets close
        except Exception as exc:  # a bug here must not leave the peer silently deaf
            LOGGER.exception("p2pscoop comm thread crashed: please file a bug")
            peer.fatal(InternalError(f"comm thread crashed: {exc!r}"))

    def _sync_poller(self, poller: zmq.Poller, registered: set, fds: set) -> None:
        """Make the poller watch the monitors, the inbound DEALERs and ``fd_watch``: run
        only when one of them changed (``_sockets`` counts changes; fds are only added),
        not at every wake-up: rebuilding sets per wake-up cost more than the poll.

        A monitor is watched by its file descriptor (``zmq.FD``), not as a socket:
        ``zmq_poll`` asks each socket's ``ZMQ_EVENTS`` twice per call (two system calls
        each), some 70 per wake-up with 16 links, for monitors that speak once in a link's
        life. The descriptor signals news (an edge, not a level), so ``_on_monitor`` reads
        every event waiting."""
        mon_fds = {mon.FD: mon for mon in self._monitors}
        for fd in set(self._mon_fds) - set(mon_fds):
            poller.unregister(fd)
        fresh = [mon for fd, mon in mon_fds.items() if self._mon_fds.get(fd) is not mon]
        for fd in set(mon_fds) - set(self._mon_fds):
            poller.register(fd, zmq.POLLIN)
        self._mon_fds = mon_fds
        for mon in fresh:  # events that came before we watched it (a level, once)
            self._on_monitor(mon)
        for sock in self._inbound:
            if sock not in registered:
                poller.register(sock, zmq.POLLIN)
                registered.add(sock)
        for sock in registered - set(self._inbound):
            poller.unregister(sock)
            registered.discard(sock)
        for fd in set(self.fd_watch) - fds:
            poller.register(fd, zmq.POLLIN)
            fds.add(fd)

    def _drain_outq(self) -> None:
        outq = self.outq
        while outq:
            target, item = outq.popleft()
            if target is None:
                fn, args = item
                fn(*args)
            else:
                self.send(target, item)

    def _drain_wake(self) -> None:
        """Read every poke. The poll said one is there; ask ``EVENTS`` before each further
        read rather than reading until ``zmq.Again``: raising it cost more than the read."""
        sock = self._wake_in
        recv = sock.recv
        while True:
            try:
                recv(_NOBLOCK)
            except zmq.Again:
                return
            if not sock.getsockopt(_EVENTS) & _POLLIN:
                return

    def _on_monitor(self, mon: zmq.Socket) -> None:
        """Every event waiting on ``mon`` (a ``Disconnected`` each): its descriptor
        signalled, or it was just registered (``_sync_poller``)."""
        while mon in self._monitors and mon.getsockopt(_EVENTS) & _POLLIN:
            try:
                mon.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            self.peer.handle_from_comm(Disconnected(self._monitors[mon]))

    def _drain_router(self) -> None:
        """Handle up to 1,000 waiting messages (``EVENTS`` asked before each further
        read, as in ``_drain_wake``)."""
        router = self.router
        recv = router.recv_multipart
        for _ in range(1000):
            try:
                frames = recv(_NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(frames)
            if not router.getsockopt(_EVENTS) & _POLLIN:
                return

    def _on_frames(self, frames: list) -> None:
        ident, body = frames[0], frames[1:]
        if self.routes is not None and T.is_envelope(body):
            got = self._relay_in(ident, body)  # forwarded (the hub), or the inner frames
            if got is None:
                return
            ident, body = got
        try:
            msg = M.decode(body)
        except ProtocolError as exc:
            self.count_bad("malformed", f"malformed frame from {ident.hex()[:8]}: {exc}")
            return
        cls = type(msg)
        if cls is M.Hello:
            if ident in self.admitted and self.routes is None:
                self._greeted_again(ident, msg)
        elif self._hellos:
            self._hellos.pop(ident, None)  # it heard us: it talks, not only greets
        if ident not in self.admitted and cls is not M.Hello and cls is not M.Refuse:
            if ident in self.departed:  # a departed peer's last words, on another connection
                self.late_frames += 1
                LOGGER.debug("%s from departed peer %s dropped", cls.__name__, ident.hex()[:8])
                return
            self.count_bad("unknown", f"{cls.__name__} from {ident.hex()[:8]} before a valid "
                                 f"HELLO")
            return
        works = []
        if cls is M.Give:
            if LOGGER.isEnabledFor(logging.DEBUG):
                LOGGER.debug("steal %d answered by %s: %d unit(s)", msg.req, ident.hex()[:8],
                             sum(hi - lo for _, _, lo, hi, _ in msg.works))
            try:
                works = M.read_give(msg, self._loads_imported, placeholder)
            except NeedsImport as exc:  # an import may take seconds: not on this thread
                self.decoder.defer(ident, msg, str(exc))
                return
        self.peer.handle_from_comm(Received(ident, msg, works))

    def _loads_imported(self, data: bytes, owner: bytes, job: int, lo: int, hi: int):
        return self.peer.loads_work(data, owner, job, lo, hi, importing=False)

    def count_bad(self, kind: str, text: str) -> None:
        """Count a rejected frame; log the first of each kind (and later every 1000th)."""
        self.bad_frames += 1
        self._bad_kinds[kind] = n = self._bad_kinds.get(kind, 0) + 1
        if n == 1 or n % 1000 == 0:
            LOGGER.warning("%s (%d rejected of this kind so far)", text, n)

    def _log_once(self, key: str, text: str) -> None:
        if key not in self._logged:
            self._logged.add(key)
            LOGGER.warning("%s", text)
