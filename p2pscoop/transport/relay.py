"""The comm thread's tunnel-mode half (``--tunnel``), a mixin of ``mesh.Comm``: it carries
out the routes ``core/tunnel.py`` decides, and notices when our messages do not reach a peer.

    the hub (origin, rank 0)                      a worker
    send(peer): ROUTER [peer, *frames]            send(hub): its one DEALER
      (on the connection the peer opened)         send(other): DEALER to the hub, in an
    envelope from A for B: ``forward``ed to B       envelope naming ``other``
      (A = the connection's identity)             frames from the hub: read on that DEALER;
                                                    an envelope's inner frames are handled
                                                    as received from the peer it names

Rules (on top of ``mesh.py``'s): only the comm thread runs these methods; an envelope is
never decoded by the hub, and the receiver applies the usual admission checks to the peer
the hub names (the hub names the connection it came on, never a field of the sender's); a
rejected envelope is counted and logged like any bad frame, except one for a peer that
has just left (``departed``): a race, counted in ``late_frames`` as its own late words are.

Outside tunnel mode one thing here still runs: ``_greeted_again``. A peer that reaches us
but never hears our answers (a firewall lets it dial us, and nobody dial it) keeps re-sending
its HELLO; after ``REHELLO_WARN`` of them, with nothing else from it in between, we say so
once and name ``--tunnel``.
"""

from __future__ import annotations

from typing import Any

import zmq

from ..core import messages as M
from ..core import tunnel as T

#: an admitted peer's HELLOs after which our messages are deemed not to reach it (it re-sends
#: one each ping interval while it has not heard ours; any other message resets the count)
REHELLO_WARN = 3


class RelayMixin:
    """Tunnel-mode sending and receiving of ``mesh.Comm`` (see the module docstring).
    ``Comm`` provides ``routes`` (None outside tunnel mode), ``router``, ``dealers``,
    ``admitted``, ``departed``, ``late_frames``, ``_inbound``, ``_hellos``, ``_on_frames``,
    ``count_bad``, ``_log_once``."""

    routes: T.TunnelRoutes | None
    router: Any
    dealers: dict
    admitted: set
    departed: dict
    late_frames: int
    _inbound: dict
    _hellos: dict

    def _send_tunnel(self, peer: bytes, frames: list) -> bool:
        """On the ROUTER (the hub), or in an envelope on our DEALER to the hub."""
        routes = self.routes
        how = routes.route(peer)
        try:
            if how == T.REPLY:
                self.router.send_multipart([peer, *frames], zmq.NOBLOCK)
                return True
            sock = self.dealers.get(routes.hub) if how == T.VIA_HUB else None
            if sock is None:
                return False
            sock.send_multipart(T.wrap(peer, frames), zmq.NOBLOCK)
            return True
        except zmq.Again:
            self._log_once("hwm", "a peer is not reading its messages: dropping some")
            return False

    def _drain_dealer(self, sock: zmq.Socket) -> None:
        """A worker: the hub's frames arrive on our DEALER to it."""
        for _ in range(1000):
            peer = self._inbound.get(sock)
            if peer is None:  # dropped while draining
                return
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames([peer, *frames])

    def _relay_in(self, ident: bytes, body: list) -> tuple[bytes, list] | None:
        """An envelope arrived from ``ident``. The hub forwards it (None: nothing to read
        here); a worker gets (the peer it comes from, its frames), or None if rejected."""
        routes = self.routes
        if routes.is_hub:
            named = T.unwrap(body)
            if named is not None and named[0] in self.departed:  # for a peer just gone
                self.late_frames += 1
                return None
            fwd = routes.forward(ident, body, self.admitted)
            if fwd is None:
                self.count_bad("relay", f"relay envelope from {ident.hex()[:8]} to a peer "
                                        f"not admitted, or malformed")
            else:
                self._send_tunnel(*fwd)
            return None
        got = routes.receive(ident, body)
        if got is None:
            self.count_bad("relay", f"relay envelope rejected from {ident.hex()[:8]}")
        return got

    def _greeted_again(self, ident: bytes, msg: M.Hello) -> None:
        """An admitted peer greets us again and again and says nothing else: it never got
        our answers, so our connection to it does not work (see the module docstring)."""
        seen = self._hellos[ident] = self._hellos.get(ident, 0) + 1
        if seen == REHELLO_WARN:
            self._log_once("rehello", f"peer {msg.rank} at {msg.address} reaches us but our "
                                      f"messages do not reach it: is a firewall blocking "
                                      f"connections to it? If only this machine can be "
                                      f"reached, run with --tunnel (docs/hosts.md)")
