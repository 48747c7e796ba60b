"""A peer that closes its connection to us and dials again under the same identity (its
incarnation) is heard on the new connection at once, even while our ROUTER still holds the
old one (``transport/mesh.py``: ROUTER_HANDOVER).

Without it, libzmq ignores the new connection until the old one's end is read: in the
32-peer lab the origin's own worker, pruned and re-dialing at once, greeted the origin
for 14 s unheard and gave it up. Real ZeroMQ sockets on loopback; the comm thread is not
started, so nothing reads the old connection's end before the new one arrives.
"""

import time

import zmq

from p2pscoop.transport.mesh import Comm


def dealer(ctx, identity, address):
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.IDENTITY, identity)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    return sock


def test_a_peer_redialing_under_its_identity_is_heard_on_the_new_connection():
    comm = Comm()
    ctx = zmq.Context()
    try:
        router, me = comm.router, b"w" * 16
        old = dealer(ctx, me, comm.address)
        old.send(b"first")
        assert router.poll(5000) and router.recv_multipart() == [me, b"first"]
        old.send(b"unread")  # still queued at our end when the peer closes the link
        time.sleep(0.2)  # (it reaches our end; nothing here reads it)
        old.close(linger=0)
        new = dealer(ctx, me, comm.address)
        time.sleep(0.2)  # (the new connection reaches our end before anything is read)
        new.send(b"hello again")
        got = []
        while router.poll(3000):
            got.append(router.recv_multipart())
            if got[-1] == [me, b"hello again"]:
                break
        assert got and got[-1] == [me, b"hello again"], got
        new.close(linger=0)
    finally:
        ctx.destroy(linger=0)
        comm.close()
