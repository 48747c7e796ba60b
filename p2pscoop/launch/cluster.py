"""Cluster mode, the program's side: the secure settings, finding nodes, asking them to serve.

    python -m p2pscoop --cluster lab --secret-file F -n 2 prog.py
      origin (this process) + 1 local peer, listening on a routable address with CurveZMQ
      NodeFinder: zeroconf browse (fingerprint filter) and/or --nodes HOST:PORT
        └─▶ for each node found, a NodeClient: HELLO (role CLIENT) + SERVE(program, origin)
              node answers SERVED(k) and starts k peers that greet the origin (HELLO), get a
              WELCOME listing the other peers, and steal like any local peer

The program starts at once: nodes join while it runs (``SIZE`` counts the program's peers
at the moment it is read, as the origin counts them along the views: ``core/roster.py``). Nothing here decides who is trusted: the node's transport checks the
CURVE key, its membership check the HELLO; this module only opens the conversations.

``Secure`` gathers what a secure peer needs (cluster name, secret, derived keys, where to
listen, what address to advertise). The secret itself only ever travels through pipes to
processes we start; it is never in an environment variable, a command line or a log.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import threading
from dataclasses import dataclass, field

import zmq

from .. import __version__
from ..core import messages as M
from ..core.errors import SecurityError
from ..core.membership import Identity, Membership
from ..discovery import PeerSeen
from ..discovery.static import StaticDiscovery, split_address
from ..runtime import payload
from ..runtime.peer import PYTHON
from ..transport import security
from ..transport.secret import ClusterKeys, check_cluster_name, encode_secret, load_secret

LOGGER = logging.getLogger("p2pscoop.cluster")

REPLY_TIMEOUT = 5.0  # seconds a node has to answer a SERVE or a STATUS
ASK_AGAIN = 1.0  # pause before asking again a node that did not answer (not up yet?)


@dataclass(frozen=True)
class Secure:
    cluster: str
    secret: bytes = field(repr=False)
    keys: ClusterKeys = field(repr=False)
    listen: str  # the address the ROUTER binds
    port: int  # 0: any free port
    advertise: str  # the address peers dial
    host: str  # this machine's name, informational

    @property
    def secret_text(self) -> str:
        return encode_secret(self.secret)


def default_address() -> str:
    """The first non-loopback IPv4 address of this machine (127.0.0.1 if there is none)."""
    import ifaddr

    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                addr = ipaddress.IPv4Address(ip.ip)
                if not addr.is_loopback and not addr.is_link_local:
                    return str(addr)
    return "127.0.0.1"


def make_secure(cluster: str | None, secret_file: str | None, listen: str | None = None,
                interface: str | None = None) -> Secure:
    """Settings of a secure peer from the command line (raises SecurityError/ValueError)."""
    cluster = cluster or os.environ.get("P2PSCOOP_CLUSTER")
    if not cluster:
        raise SecurityError("give the cluster's name with --cluster NAME (or set "
                            "P2PSCOOP_CLUSTER)")
    check_cluster_name(cluster)
    secret = load_secret(secret_file)
    if secret is None:
        raise SecurityError("cluster mode needs the cluster secret: make one with `p2pscoop "
                            "secret FILE`, copy it (mode 0600) to every host, and pass "
                            "--secret-file FILE (or set P2PSCOOP_SECRET_FILE)")
    keys = ClusterKeys.derive(secret, cluster)
    port = 0
    if listen:
        host, port = parse_listen(listen)
    elif interface:
        from ..discovery.zeroconf import interface_addresses

        host = interface_addresses(interface)[0]
    else:
        host = default_address()
    advertise = default_address() if host in ("0.0.0.0", "*") else host
    return Secure(cluster, secret, keys, host, port, advertise, socket.gethostname())


def parse_listen(text: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT``, ``[IPv6]``, ``[IPv6]:PORT`` -> (host, port; 0: any free)."""
    if text.startswith("[") and text.endswith("]"):
        return text[1:-1], 0
    if text.count(":") > 1 and not text.startswith("["):
        return text, 0  # a bare IPv6 address
    if ":" in text:
        return split_address(text)
    return text, 0


def client_identity(secure: Secure, me: bytes) -> Identity:
    return Identity(me, 0, "", secure.host, secure.keys.fingerprint, PYTHON, payload.PROTOCOL,
                    __version__, 1, secure.keys.hello_key, M.ROLE_CLIENT, "")


def ask_node(secure: Secure, address: str, request: M.Message,
             timeout: float = REPLY_TIMEOUT) -> M.Message:
    """Send HELLO + ``request`` to the node at ``address``; return its answer (the reply,
    or a REFUSE). Raises TimeoutError when nothing comes back in time."""
    me = os.urandom(M.ID_LEN)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    try:
        security.harden(sock)
        security.secure_client(sock, secure.keys)
        sock.setsockopt(zmq.IDENTITY, me)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(address)
        sock.send_multipart(M.encode(Membership(client_identity(secure, me)).hello()))
        sock.send_multipart(M.encode(request))
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no answer from {address} within {timeout:.0f} s (is it a "
                               f"node of cluster {secure.cluster!r}? same secret?)")
        return M.decode(sock.recv_multipart())
    finally:
        sock.close(linger=0)
        ctx.term()


class NodeFinder:
    """Find the cluster's nodes (zeroconf and/or a static list) and ask each to serve."""

    def __init__(self, secure: Secure, program: str, origin: bytes, origin_address: str,
                 nodes: list[str] | None = None, zeroconf: bool = True, workers: int = 0,
                 config: str = ""):
        """``config``: the NodeConfig fields the served peers must share (``M.Serve``)."""
        self.secure = secure
        self.serve = M.Serve(program, origin, origin_address, workers, config)
        self.nodes = list(nodes or [])
        self.use_zeroconf = zeroconf
        self.asked: dict[str, int] = {}  # node address -> workers it started
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._zc = None
        self._static = None

    def start(self) -> None:
        if self.nodes:
            self._static = StaticDiscovery(self.nodes, self._on_event)
            self._static.start()
        if self.use_zeroconf and self.secure.advertise != "127.0.0.1":
            from ..discovery.zeroconf import ZeroconfDiscovery

            try:
                self._zc = ZeroconfDiscovery(self.secure.keys.fingerprint,
                                             "origin-" + os.urandom(6).hex(),
                                             "", self.secure.host, self._on_event,
                                             announce=False)
                self._zc.start()
            except OSError as exc:
                LOGGER.warning("zeroconf discovery is off (%s): use --nodes HOST:PORT", exc)
                self._zc = None

    def _on_event(self, event) -> None:
        if type(event) is not PeerSeen:
            return
        with self._lock:
            if event.address in self.asked:
                return
            self.asked[event.address] = 0
        threading.Thread(target=self._ask, args=(event.address,), daemon=True,
                         name="p2pscoop-serve").start()

    def _ask(self, address: str) -> None:
        # A node that does not answer may simply not be up yet (`--nodes` names it before
        # its `join` runs): keep asking while the program runs, so it joins when it comes.
        # SERVE is idempotent on the node (a second one for a program it serves starts none).
        silent = 0
        while not self._stopped.is_set():
            try:
                reply = ask_node(self.secure, address, self.serve)
                break
            except TimeoutError as exc:
                silent += 1
                if silent == 1:
                    LOGGER.warning("node %s: %s; asking again until it answers", address, exc)
                self._stopped.wait(ASK_AGAIN)
            except (OSError, zmq.ZMQError, M.RemoteProtocolError) as exc:
                LOGGER.warning("node %s: %s", address, exc)
                return
        else:
            return
        if type(reply) is M.Refuse:
            LOGGER.warning("node %s refused this program: %s", address, reply.reason)
        elif type(reply) is M.Served:
            self.asked[address] = reply.workers
            LOGGER.info("node %s starts %d peer(s) for this program", address, reply.workers)

    def stop(self) -> None:
        self._stopped.set()
        if self._zc is not None:
            self._zc.stop()
            self._zc = None
