"""The cluster secret, the keys derived from it, and CurveZMQ with a ZAP allow-list.

This module owns every decision about who may talk to a peer over TCP, and is the one place
the rest of p2pscoop imports security from (it re-exports ``secret``: the secret file, its
lookup, ``ClusterKeys`` and the HELLO MAC).

* **Sockets.** ``secure_server`` makes a ROUTER a CURVE server whose handshakes ZAP must
  approve; ``secure_client`` makes a DEALER a CURVE client holding the same cluster keypair;
  ``harden`` sets the size, heartbeat, reconnect and linger bounds every TCP socket needs.
* **ZAP.** ``Authenticator`` answers the ZAP requests of one ``zmq.Context`` and admits exactly
  one thing: a CURVE client in our domain whose key is the cluster public key.
* **Start-up checks.** ``require_curve``, and ``self_test``: a Stonehouse probe that proves in
  a few milliseconds that a foreign client key is refused and the cluster key admitted.

Who talks to whom (every peer is both ends, with the one cluster keypair)::

    DEALER (secure_client) ──CURVE handshake──▶ ROUTER (secure_server, zap_domain "p2pscoop")
                                                    │ ZAP request (inproc://zeromq.zap.01)
                                                    ▼
                                 Authenticator thread: 200 iff CURVE + domain + cluster key

Invariants:

* Nothing here puts the secret, the CURVE secret key or the HELLO key into a repr, a log line
  or an exception message. ``ClusterKeys.fingerprint`` is the only derived value meant to be
  published.
* A socket set up by ``secure_server`` fails closed: with ``ZAP_ENFORCE_DOMAIN`` set, a
  handshake succeeds only if an ``Authenticator`` of the same context is running and admits
  the client's key. Without a handler nobody gets in (libzmq would otherwise admit any client
  that knows the server public key).
* ZAP requests for any other domain or mechanism (NULL, PLAIN, GSSAPI) are refused. Sockets of
  the same context that are meant to use NULL (inproc, loopback pipes) must not set a
  ``zap_domain``; libzmq then never asks ZAP about them.

Threads: ``Authenticator`` runs one daemon thread that owns its REP socket and sleeps until
a request or ``stop``'s word on an inproc pipe comes (at worst it notices ``stop`` within
``_STOP_POLL_MS``), so no socket outlives it and ``ctx.term()`` never waits for one of ours;
an idle peer's thread no longer wakes ten times a second to ask. Its counters are written
only by that thread. Everything else runs in the caller's thread.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import threading
import time
from typing import Callable

import zmq
from zmq.utils import z85
from zmq.utils.monitor import recv_monitor_message

from ..core.errors import SecurityError
from .secret import (ENV_SECRET, ENV_SECRET_FILE, HKDF_SALT, SECRET_BYTES, ClusterKeys,
                     check_cluster_name, check_mac, decode_secret, encode_secret, hello_mac,
                     hkdf_sha256, load_secret, read_secret_file, write_secret_file)

__all__ = ["SecurityError", "ClusterKeys", "write_secret_file", "read_secret_file", "load_secret",
           "encode_secret", "decode_secret", "check_cluster_name", "hkdf_sha256", "hello_mac",
           "check_mac", "require_curve", "harden", "secure_server", "secure_client",
           "Authenticator", "self_test", "SECRET_BYTES", "ENV_SECRET", "ENV_SECRET_FILE",
           "ZAP_DOMAIN"]

LOGGER = logging.getLogger("p2pscoop.security")

#: the ZAP domain of our sockets, and where libzmq sends ZAP requests
ZAP_DOMAIN = b"p2pscoop"
ZAP_ENDPOINT = "inproc://zeromq.zap.01"

#: socket bounds (milliseconds unless said otherwise); see reliability.md §1.9
MAX_MESSAGE_SIZE = 256 * 1024 * 1024  # bytes; a larger frame disconnects the sender
LINGER_MS = 1000
HANDSHAKE_IVL_MS = 5000
HEARTBEAT_IVL_MS = 1000
HEARTBEAT_TIMEOUT_MS = 3000
HEARTBEAT_TTL_MS = 3000
RECONNECT_IVL_MS = 100
RECONNECT_IVL_MAX_MS = 5000

#: after the first refused handshake, at most one WARNING line per this many seconds
REFUSAL_LOG_INTERVAL = 60.0
#: how often the ZAP thread looks at its stop flag
_STARTS = itertools.count()  # (each start's stop pipe has an address of its own)
_STOP_POLL_MS = 1000  # a safety net: ``stop`` wakes the thread at once (``_stop_addr``)


# --------------------------------------------------------------------------- sockets

def require_curve() -> None:
    """Raise SecurityError unless this libzmq supports CURVE."""
    if not zmq.has("curve"):
        raise SecurityError(
            f"this libzmq ({zmq.zmq_version()}) was built without CURVE security, which "
            "p2pscoop needs to leave loopback; install a pyzmq wheel (it bundles a libzmq "
            "with CURVE) or a libzmq built with libsodium")


def harden(sock: zmq.Socket, *, max_message_size: int = MAX_MESSAGE_SIZE,
           pings: bool = True) -> None:
    """Set the bounds every TCP socket needs; call before bind/connect.

    ``pings=False`` (a mesh's ROUTER): no ZMTP heartbeats of its own. The dialling side's
    PINGs (answered by libzmq, outside the GIL) already test each connection both ways,
    and their TTL tells this side to drop a connection silent for ``HEARTBEAT_TTL_MS``;
    pinging from both ends doubled the idle mesh's wake-ups of libzmq's I/O thread (each
    heartbeat a CURVE-encrypted command) and bought nothing: only the DIALLING side's
    connection drop is read (a monitor), never the ROUTER's."""
    sock.setsockopt(zmq.MAXMSGSIZE, max_message_size)
    sock.setsockopt(zmq.LINGER, LINGER_MS)
    if pings:
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
    sock.setsockopt(zmq.HEARTBEAT_TTL, HEARTBEAT_TTL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL, RECONNECT_IVL_MS)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS)


def secure_server(sock: zmq.Socket, keys: ClusterKeys) -> None:
    """Make ``sock`` (a ROUTER that binds) a CURVE server whose clients ZAP must admit.

    Call before ``bind``. Fails closed: no running ``Authenticator`` in the socket's context
    means no handshake succeeds.
    """
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN)
    option = getattr(zmq, "ZAP_ENFORCE_DOMAIN", None)
    if option is not None:
        try:
            sock.setsockopt(option, 1)
        except zmq.ZMQError:  # a libzmq older than 4.3; the Authenticator must run then
            LOGGER.debug("this libzmq has no ZAP_ENFORCE_DOMAIN")
    sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_IVL_MS)


def secure_client(sock: zmq.Socket, keys: ClusterKeys) -> None:
    """Make ``sock`` (a DEALER that connects) a CURVE client holding the cluster keypair.

    Call before ``connect``. The server's key is the cluster public key, so a server of
    another cluster fails the handshake.
    """
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_IVL_MS)


# --------------------------------------------------------------------------- ZAP

class Authenticator:
    """The ZAP handler of one ``zmq.Context``: admits exactly the cluster public key.

    ``start()`` binds the context's ZAP endpoint in a daemon thread (one handler per context:
    a second one raises SecurityError); ``stop()`` ends it, and so does ``ctx.term()``.
    ``accepted`` and ``refused`` count the handshakes answered (``self_test``'s probe is not
    counted). The first refusal is logged at WARNING with the client's address; later ones
    at most once per ``REFUSAL_LOG_INTERVAL`` seconds of ``clock``, as one line with a count.
    """

    def __init__(self, ctx: zmq.Context, keys: ClusterKeys, *,
                 clock: Callable[[], float] = time.monotonic):
        self._ctx = ctx
        self._cluster = keys.cluster
        self._key = z85.decode(keys.public)  # ZAP carries the raw 32-byte key
        self._probe = z85.decode(_probe_keypair(keys)[0])
        self._clock = clock
        self._accepted = 0
        self._refused = 0
        self._unlogged = 0
        self._last_warning: float | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._stop_addr = ""  # inproc: ``stop`` wakes ``_run`` (a new one per ``start``)
        self._start_error: zmq.ZMQError | None = None

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return (f"<Authenticator cluster={self._cluster!r} {state} "
                f"accepted={self._accepted} refused={self._refused}>")

    @property
    def accepted(self) -> int:
        """Handshakes admitted so far."""
        return self._accepted

    @property
    def refused(self) -> int:
        """Handshakes refused so far."""
        return self._refused

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Start answering ZAP requests; returns once the handler is bound."""
        if self._thread is not None:
            raise RuntimeError("this Authenticator is already running")
        ready = threading.Event()
        self._stopping.clear()
        self._stop_addr = f"inproc://p2pscoop-zap-stop-{id(self)}-{next(_STARTS)}"
        thread = threading.Thread(target=self._run, args=(ready,), name="p2pscoop-zap",
                                  daemon=True)
        thread.start()
        ready.wait()
        if self._start_error is not None:
            thread.join()
            error, self._start_error = self._start_error, None
            raise SecurityError(f"cannot start the ZAP handler: {error}; only one handler "
                                "may run per zmq.Context") from None
        self._thread = thread

    def stop(self) -> None:
        """Stop answering (handshakes then fail closed). Idempotent; returns within
        ``_STOP_POLL_MS``."""
        if self._thread is None:
            return
        self._stopping.set()
        try:  # (a terminated context: the thread is gone already)
            wake = self._ctx.socket(zmq.PAIR)
        except zmq.ZMQError:
            wake = None
        if wake is not None:
            try:
                wake.connect(self._stop_addr)
                wake.send(b"", zmq.NOBLOCK)
            except zmq.ZMQError:
                pass  # the thread is gone, or sees ``_stopping`` within ``_STOP_POLL_MS``
            finally:
                wake.close(linger=100)
        self._thread.join()
        self._thread = None

    def __enter__(self) -> Authenticator:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        handler = stop = None
        try:  # (any failure is ``start``'s error: it must never wait for ``ready`` in vain)
            handler = self._ctx.socket(zmq.REP)
            handler.setsockopt(zmq.LINGER, 0)
            handler.bind(ZAP_ENDPOINT)
            stop = self._ctx.socket(zmq.PAIR)
            stop.setsockopt(zmq.LINGER, 0)
            stop.bind(self._stop_addr)
        except zmq.ZMQError as exc:
            self._start_error = exc
            for sock in (handler, stop):
                if sock is not None:
                    sock.close()
            ready.set()
            return
        ready.set()
        poller = zmq.Poller()
        poller.register(handler, zmq.POLLIN)
        poller.register(stop, zmq.POLLIN)
        try:
            while not self._stopping.is_set():
                if handler in dict(poller.poll(_STOP_POLL_MS)):
                    handler.send_multipart(self._reply(handler.recv_multipart()))
        except zmq.ContextTerminated:
            pass
        finally:  # unbind first: ``close`` frees the endpoint later, on libzmq's reaper
            try:  # thread, and a ``start`` right after ``stop`` would find it in use
                handler.unbind(ZAP_ENDPOINT)
            except zmq.ZMQError:
                pass  # (a terminated context)
            handler.close()
            stop.close()

    def _reply(self, frames: list[bytes]) -> list[bytes]:
        """``_answer``, and a refusal if that fails (a REP socket must always reply)."""
        try:
            return self._answer(frames)
        except Exception:
            LOGGER.exception("the ZAP handler failed; refusing the handshake (please file a bug)")
            return [b"1.0", frames[1] if len(frames) > 1 else b"", b"500", b"internal error",
                    b"", b""]

    def _answer(self, frames: list[bytes]) -> list[bytes]:
        """The ZAP reply (RFC 27) to one request."""
        if len(frames) < 6 or frames[0] != b"1.0":
            request_id = frames[1] if len(frames) > 1 else b""
            return [b"1.0", request_id, b"500", b"malformed ZAP request", b"", b""]
        _version, request_id, domain, address, _identity, mechanism, *credentials = frames[:8]
        admitted = (domain == ZAP_DOMAIN and mechanism == b"CURVE" and len(credentials) == 1
                    and hmac.compare_digest(credentials[0], self._key))
        if admitted:
            self._accepted += 1
            LOGGER.debug("admitted a peer of cluster %r from %s", self._cluster,
                         address.decode("utf-8", "replace"))
            return [b"1.0", request_id, b"200", b"OK", b"p2pscoop", b""]
        if credentials == [self._probe]:
            LOGGER.debug("refused the self-test probe, as it should be")
        else:
            self._refused += 1
            self._log_refusal(address.decode("utf-8", "replace"),
                              mechanism.decode("ascii", "replace"))
        return [b"1.0", request_id, b"400", b"not a member of this cluster", b"", b""]

    def _log_refusal(self, address: str, mechanism: str) -> None:
        now = self._clock()
        if self._last_warning is None:
            LOGGER.warning("refused a %s handshake from %s: not a member of cluster %r "
                           "(later refusals are logged at most once every %.0f s)",
                           mechanism, address or "an unknown address", self._cluster,
                           REFUSAL_LOG_INTERVAL)
        elif now - self._last_warning >= REFUSAL_LOG_INTERVAL:
            LOGGER.warning("refused %d more handshakes not of cluster %r (the latest: %s "
                           "from %s)", self._unlogged + 1, self._cluster, mechanism,
                           address or "an unknown address")
        else:
            self._unlogged += 1
            return
        self._last_warning = now
        self._unlogged = 0


# --------------------------------------------------------------------------- self-test

_HANDSHAKE_EVENTS = (zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                     | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


def _probe_keypair(keys: ClusterKeys) -> tuple[bytes, bytes]:
    """The foreign keypair ``self_test`` tries: not the cluster's, but one the Authenticator
    recognises, so that its refusal is neither counted nor logged as an attack."""
    secret = z85.encode(hkdf_sha256(z85.decode(keys.secret), salt=HKDF_SALT,
                                    info=b"p2pscoop/v1/probe"))
    return zmq.curve_public(secret), secret


def self_test(ctx: zmq.Context, keys: ClusterKeys, *, timeout: float = 5.0) -> None:
    """Prove on 127.0.0.1 that ``ctx`` admits the cluster key and refuses a foreign one.

    A client with the right server key but a foreign client keypair (what an attacker who
    learnt the public key would try) must fail its handshake, and a client with the cluster
    keypair must get a message through. Raises SecurityError otherwise. Needs the context's
    ``Authenticator`` running; takes a few milliseconds.
    """
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    secure_server(server, keys)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    monitor = server.get_monitor_socket(_HANDSHAKE_EVENTS)
    clients: list[zmq.Socket] = []

    def client(public: bytes, secret: bytes) -> zmq.Socket:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.CURVE_SERVERKEY, keys.public)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
        sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
        sock.connect(f"tcp://127.0.0.1:{port}")
        clients.append(sock)
        return sock

    try:
        client(*_probe_keypair(keys)).send(b"foreign")
        if not monitor.poll(int(timeout * 1000)):
            raise SecurityError("CURVE self-test inconclusive: no handshake on 127.0.0.1 "
                                f"within {timeout:g} s")
        event = recv_monitor_message(monitor)["event"]
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED or server.poll(0):
            raise SecurityError("CURVE self-test failed: a client with a foreign key was "
                                "admitted; another ZAP handler that admits any key runs in "
                                "this zmq.Context")
        clients.pop().close()
        client(keys.public, keys.secret).send(b"member")
        if not _member_got_through(server, monitor, timeout):
            raise SecurityError("CURVE self-test failed: the cluster's own key was refused; "
                                "start an Authenticator for this zmq.Context first")
    finally:
        server.disable_monitor()
        monitor.close()
        for sock in clients:
            sock.close()
        server.close()


def _member_got_through(server: zmq.Socket, monitor: zmq.Socket, timeout: float) -> bool:
    """Wait for the member's message; give up after two failed handshakes (one may be a
    late attempt of the closed foreign client) or ``timeout`` seconds."""
    poller = zmq.Poller()
    poller.register(server, zmq.POLLIN)
    poller.register(monitor, zmq.POLLIN)
    deadline = time.monotonic() + timeout
    failures = 0
    while failures < 2:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        events = dict(poller.poll(int(left * 1000) + 1))
        if server in events:
            return server.recv_multipart()[-1] == b"member"
        if monitor in events:
            if recv_monitor_message(monitor)["event"] != zmq.EVENT_HANDSHAKE_SUCCEEDED:
                failures += 1
    return False
