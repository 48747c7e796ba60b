"""CurveZMQ + ZAP with real sockets on 127.0.0.1: members talk, nobody else gets a frame in.

Every refusal is checked twice: no message reaches the server within a bounded poll, and the
server's socket monitor reports that the handshake failed (never that it succeeded).
"""

import logging
import threading

import pytest
import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils.monitor import recv_monitor_message

from p2pscoop.errors import SecurityError
from p2pscoop.transport.security import (ZAP_ENDPOINT, Authenticator, ClusterKeys, harden,
                                         require_curve, secure_client, secure_server, self_test)

SECRET = bytes(range(32))
KEYS = ClusterKeys.derive(SECRET, "lab")
WAIT_MS = 5000  # bound of every wait for an event that must come
QUIET_MS = 300  # how long a refused client is given to (not) get a frame through
FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
          | zmq.EVENT_HANDSHAKE_FAILED_AUTH)


class Context(zmq.Context):
    """A context that closes every socket it made when the test ends."""

    made: list

    def socket(self, kind, **kwargs):
        sock = super().socket(kind, **kwargs)
        sock.setsockopt(zmq.LINGER, 0)
        self.made.append(sock)
        return sock


@pytest.fixture
def ctx():
    context = Context()
    context.made = []
    yield context
    for sock in context.made:
        sock.close(linger=0)
    context.term()


@pytest.fixture
def auth(ctx):
    authenticator = Authenticator(ctx, KEYS)
    authenticator.start()
    yield authenticator
    authenticator.stop()


class Server:
    """A secure ROUTER on an ephemeral loopback port, with a handshake monitor."""

    def __init__(self, ctx, keys=KEYS):
        self.sock = ctx.socket(zmq.ROUTER)
        harden(self.sock)
        secure_server(self.sock, keys)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.monitor = self.sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | FAILED)

    def next_handshake(self):
        """The first handshake event (an int), waiting at most WAIT_MS."""
        assert self.monitor.poll(WAIT_MS), "no handshake was even attempted"
        return recv_monitor_message(self.monitor)["event"]

    def assert_refused(self, client):
        client.send(b"let me in")
        event = self.next_handshake()
        assert event & FAILED, f"handshake event {zmq.Event(event).name}"
        assert not self.sock.poll(QUIET_MS), "a refused client got a message through"


@pytest.fixture
def server(ctx, auth):
    return Server(ctx)


def client_of(ctx, keys):
    sock = ctx.socket(zmq.DEALER)
    harden(sock)
    secure_client(sock, keys)
    return sock


def stonehouse_client(ctx):
    """A client that knows the server's public key but holds a keypair of its own."""
    public, secret = zmq.curve_keypair()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.CURVE_SERVERKEY, KEYS.public)
    sock.setsockopt(zmq.CURVE_PUBLICKEY, public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, secret)
    return sock


def test_this_libzmq_has_curve():
    require_curve()


def test_members_exchange_messages_both_ways(ctx, auth, server):
    client = client_of(ctx, KEYS)
    client.connect(server.endpoint)
    client.send(b"ping")
    assert server.sock.poll(WAIT_MS)
    identity, body = server.sock.recv_multipart()
    assert body == b"ping"
    server.sock.send_multipart([identity, b"pong"])
    assert client.poll(WAIT_MS)
    assert client.recv() == b"pong"
    assert server.next_handshake() == zmq.EVENT_HANDSHAKE_SUCCEEDED
    assert (auth.accepted, auth.refused) == (1, 0)


@pytest.mark.parametrize("secret, cluster", [(bytes(range(1, 33)), "lab"), (SECRET, "lab2")],
                         ids=["another-secret", "another-cluster-name"])
def test_a_client_of_another_cluster_gets_nothing_through(ctx, auth, server, secret, cluster):
    client = client_of(ctx, ClusterKeys.derive(secret, cluster))
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_a_null_mechanism_client_gets_nothing_through(ctx, auth, server):
    client = ctx.socket(zmq.DEALER)
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_a_plain_mechanism_client_gets_nothing_through(ctx, auth, server):
    client = ctx.socket(zmq.DEALER)
    client.setsockopt(zmq.PLAIN_USERNAME, b"admin")
    client.setsockopt(zmq.PLAIN_PASSWORD, b"admin")
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_the_right_server_key_with_a_random_client_key_is_refused_by_zap(ctx, auth, server):
    """The Stonehouse attack: the public key leaked, the client makes up its own keypair."""
    client = stonehouse_client(ctx)
    client.connect(server.endpoint)
    client.send(b"let me in")
    assert server.next_handshake() == zmq.EVENT_HANDSHAKE_FAILED_AUTH
    assert not server.sock.poll(QUIET_MS)
    assert auth.refused >= 1 and auth.accepted == 0


def test_a_client_refuses_a_server_of_another_cluster(ctx, auth):
    server = Server(ctx, ClusterKeys.derive(SECRET, "elsewhere"))
    client = client_of(ctx, KEYS)
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_without_an_authenticator_nobody_is_admitted(ctx):
    """Fail closed: ZAP_ENFORCE_DOMAIN and no ZAP handler refuse even the cluster's key."""
    server = Server(ctx)
    client = client_of(ctx, KEYS)
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_after_stop_nobody_is_admitted(ctx):
    authenticator = Authenticator(ctx, KEYS)
    authenticator.start()
    authenticator.stop()
    authenticator.stop()  # idempotent
    server = Server(ctx)
    client = client_of(ctx, KEYS)
    client.connect(server.endpoint)
    server.assert_refused(client)


def test_only_one_zap_handler_per_context(ctx, auth):
    with pytest.raises(SecurityError, match="one handler"):
        Authenticator(ctx, KEYS).start()


def test_null_sockets_without_zap_domain_still_work_beside_the_authenticator(ctx, auth):
    """The local runtime's loopback sockets share the context and must not be vetoed."""
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    dealer.send(b"local")
    assert router.poll(WAIT_MS)
    assert router.recv_multipart()[-1] == b"local"
    assert auth.refused == 0


def test_harden_sets_the_bounds():
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    try:
        harden(sock, max_message_size=1 << 20)
        assert sock.getsockopt(zmq.MAXMSGSIZE) == 1 << 20
        assert 0 <= sock.getsockopt(zmq.LINGER) <= 1000
        assert sock.getsockopt(zmq.HEARTBEAT_IVL) == 1000
        assert sock.getsockopt(zmq.HEARTBEAT_TIMEOUT) == 3000
        assert sock.getsockopt(zmq.RECONNECT_IVL) == 100
        assert sock.getsockopt(zmq.RECONNECT_IVL_MAX) == 5000
    finally:
        sock.close(linger=0)


def test_a_router_without_pings_still_answers_the_dialler_and_tells_it_a_ttl(ctx, auth):
    # the mesh's ROUTER (``pings=False``) sends no heartbeats of its own; the dealer's
    # PINGs, answered by libzmq, keep the connection, and messages flow both ways
    server = ctx.socket(zmq.ROUTER)
    client = ctx.socket(zmq.DEALER)
    try:
        harden(server, pings=False)
        assert server.getsockopt(zmq.HEARTBEAT_IVL) == 0
        assert server.getsockopt(zmq.HEARTBEAT_TTL) == 3000
        secure_server(server, KEYS)
        port = server.bind_to_random_port("tcp://127.0.0.1")
        harden(client)
        secure_client(client, KEYS)
        client.connect(f"tcp://127.0.0.1:{port}")
        client.send(b"ping me")
        assert server.poll(WAIT_MS)
        ident, body = server.recv_multipart()
        assert body == b"ping me"
        server.send_multipart([ident, b"back"])
        assert client.poll(WAIT_MS) and client.recv() == b"back"
    finally:
        server.close(linger=0)
        client.close(linger=0)


def test_an_authenticator_stopped_and_started_again_admits_members(ctx):
    auth = Authenticator(ctx, KEYS)
    for _ in range(3):  # each start has a stop pipe of its own
        auth.start()
        assert auth.running
        self_test(ctx, KEYS)
        auth.stop()
        assert not auth.running


def test_a_stopped_authenticator_has_freed_the_zap_endpoint(ctx):
    auth = Authenticator(ctx, KEYS)
    for _ in range(20):  # libzmq frees a closed socket's endpoints later, on another thread
        auth.start()
        auth.stop()
        other = ctx.socket(zmq.REP)
        try:
            other.bind(ZAP_ENDPOINT)  # raises "Address already in use" if still bound
            other.unbind(ZAP_ENDPOINT)
        finally:
            other.close(linger=0)


def test_an_oversize_message_never_arrives(ctx, auth):
    server = ctx.socket(zmq.ROUTER)
    harden(server, max_message_size=1024)
    secure_server(server, KEYS)
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client = client_of(ctx, KEYS)
    client.connect(f"tcp://127.0.0.1:{port}")
    client.send(b"x" * 4096)
    assert not server.poll(QUIET_MS)
    other = client_of(ctx, KEYS)
    other.connect(f"tcp://127.0.0.1:{port}")
    other.send(b"small")
    assert server.poll(WAIT_MS)
    assert server.recv_multipart()[-1] == b"small"


class _Lines(logging.Handler):
    """The lines one thread logs (attached to the logger itself: whether records propagate
    to the root logger depends on what earlier tests configured, see ``logs.configure``)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread: int | None = None
        self.lines: list[str] = []

    def emit(self, record):
        if record.thread == self.thread:
            self.lines.append(record.getMessage())


def test_the_first_refusal_is_a_warning_later_ones_are_rate_limited(ctx):
    clock = [1000.0]
    authenticator = Authenticator(ctx, KEYS, clock=lambda: clock[0])
    logger = logging.getLogger("p2pscoop.security")
    lines, level = _Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.WARNING)
    try:
        with authenticator:
            lines.thread = authenticator._thread.ident  # this handler's lines only
            server = Server(ctx)

            def refused_attempt():
                intruder = stonehouse_client(ctx)
                # one handshake per attempt: no reconnect behind our back under load
                intruder.setsockopt(zmq.RECONNECT_IVL, -1)
                intruder.connect(server.endpoint)
                assert server.next_handshake() == zmq.EVENT_HANDSHAKE_FAILED_AUTH
                intruder.close(linger=0)

            for _ in range(3):
                refused_attempt()
            assert len(lines.lines) == 1, lines.lines
            assert "127.0.0.1" in lines.lines[0] and "CURVE" in lines.lines[0]
            clock[0] += 61
            refused_attempt()
            assert len(lines.lines) == 2 and "3 more" in lines.lines[1], lines.lines
            assert authenticator.refused == 4
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)


def test_self_test_passes_with_the_authenticator(ctx, auth):
    self_test(ctx, KEYS)
    assert auth.refused == 0  # the probe is recognised and not counted as an attack
    assert auth.accepted == 1


def test_self_test_fails_when_no_authenticator_runs(ctx):
    with pytest.raises(SecurityError, match="start an Authenticator"):
        self_test(ctx, KEYS)


def test_self_test_catches_a_zap_handler_that_admits_any_key(ctx):
    """pyzmq's ThreadAuthenticator with CURVE_ALLOW_ANY is exactly the Stonehouse mistake."""
    stonehouse = ThreadAuthenticator(ctx)
    stonehouse.start()
    try:
        stonehouse.configure_curve(domain="*", location=zmq.auth.CURVE_ALLOW_ANY)
        with pytest.raises(SecurityError, match="foreign key was admitted"):
            self_test(ctx, KEYS)
    finally:
        stonehouse.stop()


def test_terminating_the_context_ends_the_authenticator():
    context = zmq.Context()
    authenticator = Authenticator(context, KEYS)
    authenticator.start()
    terminator = threading.Thread(target=context.term, daemon=True)
    terminator.start()
    terminator.join(WAIT_MS / 1000)
    assert not terminator.is_alive(), "ctx.term() waits for a socket of the Authenticator"
    authenticator.stop()
    assert not authenticator.running
