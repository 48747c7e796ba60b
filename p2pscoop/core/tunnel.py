"""Tunnel routing (``--tunnel``): who dials whom, and how a frame reaches a peer nobody can
dial, when only the origin can be reached.

SCOOP's ``--tunnel`` is for networks where the workers can open connections to the broker's
machine (often through an SSH port forward) and nothing else: no connection can be opened
*to* a worker, and workers cannot reach each other. p2pscoop's ``--tunnel`` runs the
``--broker`` star (``broker.py``: workers ask the origin for work) over such a network:

    worker A ──DEALER (A dials)──▶ ROUTER origin (the hub) ◀──DEALER (B dials)── worker B
             ◀── replies on A's own connection, addressed by A's identity ──┘
    A ─▶ B:  A wraps the frames for B in a relay envelope to the hub; the hub re-wraps
             them naming A (the identity of A's connection, never a field A wrote) and
             sends them on B's connection; B handles them as if A had sent them directly.

The rules this module decides (the transport, ``transport/mesh.py``, carries them out):

* **The hub never dials.** Every peer reaches the hub on a connection of its own; the hub
  sends on that connection (``REPLY``), so a ``Connect`` the core asks of the hub opens
  nothing.
* **A worker dials the hub only**: the first peer it connects to (its bootstrap, which is
  the origin). Every other peer is *virtual* (``VIA_HUB``): its frames travel in an envelope
  through the hub. So the core is unchanged: its links, heartbeats, chained leases, results
  for a job another worker owns and constants all work over virtual links, two hops instead
  of one, and the hub (the coordinator) decides nothing for them.
* **The hub forwards only between admitted peers**, and only envelopes from a peer to
  another peer (never to itself, never to a peer it cannot reply to); anything else is
  dropped and counted. A worker accepts envelopes from the hub only. The inner frames are
  opaque here: the receiver decodes and admits them exactly as a directly received frame
  (its HELLO check ties the inner incarnation to the named sender).
* **Liveness** needs nothing new: heartbeats go over the one connection (the hub's, and
  the virtual links'), and a worker's lost connection to the hub is the hub's death.

The envelope is a transport frame, not a core message: its first frame is ``RELAY_TAG``
followed by a 16-byte peer id (``0xc1`` never starts a msgpack value, so it cannot be taken
for a message header), the rest are the inner message's frames, untouched.
"""

from __future__ import annotations

from .messages import ID_LEN

#: how a frame for a peer leaves (``TunnelRoutes.route``)
DIAL = "dial"  # our own DEALER to the peer (the hub, from a worker; everyone, untunnelled)
REPLY = "reply"  # the hub's ROUTER, on the connection the peer opened
VIA_HUB = "via-hub"  # an envelope on our DEALER to the hub

RELAY_TAG = b"\xc1relay:"
_HEAD = len(RELAY_TAG) + ID_LEN


def wrap(peer: bytes, frames: list) -> list:
    """The envelope carrying ``frames`` for (or, from the hub, from) ``peer``."""
    return [RELAY_TAG + peer, *frames]


def is_envelope(frames: list) -> bool:
    return bool(frames) and bytes(frames[0][:len(RELAY_TAG)]) == RELAY_TAG


def unwrap(frames: list) -> tuple[bytes, list] | None:
    """(the peer named, the inner frames) of an envelope; None if it is malformed."""
    head = bytes(frames[0])
    if len(head) != _HEAD or len(frames) < 2 or not head.startswith(RELAY_TAG):
        return None
    return head[len(RELAY_TAG):], list(frames[1:])


class TunnelRoutes:
    """One peer's routing table in tunnel mode (see the module docstring). Pure: the
    transport asks it and does what it says; ``forwarded`` and ``rejected`` count."""

    def __init__(self, is_hub: bool, hub: bytes | None = None):
        self.is_hub = is_hub
        #: the peer a worker dials (set by its first ``connect`` unless given)
        self.hub = hub
        self.replies: set[bytes] = set()  # the hub's peers (they dialled it)
        self.virtual: set[bytes] = set()  # a worker's peers reached through the hub
        self.forwarded = 0
        self.rejected = 0

    def connect(self, peer: bytes) -> str:
        """The core asks for a connection to ``peer``: DIAL (open one) or not."""
        if self.is_hub:
            self.replies.add(peer)
            return REPLY
        if self.hub is None:
            self.hub = peer
        if peer == self.hub:
            return DIAL
        self.virtual.add(peer)
        return VIA_HUB

    def drop(self, peer: bytes) -> None:
        self.replies.discard(peer)
        self.virtual.discard(peer)

    def route(self, peer: bytes) -> str:
        """How a frame for ``peer`` leaves. The hub answers anyone who dialled it (also a
        peer it has not admitted: a REFUSE); a worker dials only the hub."""
        if self.is_hub:
            return REPLY
        if self.hub is None or peer == self.hub:
            return DIAL
        return VIA_HUB

    def forward(self, sender: bytes, frames: list, admitted) -> tuple[bytes, list] | None:
        """The hub got an envelope on ``sender``'s connection: (the peer to send it to, the
        envelope naming ``sender``), or None (dropped: counted in ``rejected``).
        ``admitted``: the peers whose frames the transport reads (a set)."""
        got = unwrap(frames) if self.is_hub else None
        if got is None:
            self.rejected += 1
            return None
        target, inner = got
        if (sender not in admitted or target not in admitted or target == sender
                or target not in self.replies):
            self.rejected += 1
            return None
        self.forwarded += 1
        return target, wrap(sender, inner)

    def receive(self, sender: bytes, frames: list) -> tuple[bytes, list] | None:
        """A worker got an envelope from ``sender``: (the peer it comes from, its frames),
        or None (not from the hub, malformed, or naming the hub: counted)."""
        got = None if self.is_hub or sender != self.hub else unwrap(frames)
        if got is None or got[0] == self.hub:
            self.rejected += 1
            return None
        return got
