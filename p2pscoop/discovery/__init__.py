"""Discovery: who *might* be out there. It suggests peers; it never admits them.

Owns: the events that every discovery source reports (``PeerSeen``, ``PeerGone``) and the
sources themselves:

    static.py     a fixed list of addresses (``--peers HOST:PORT``), for networks without
                  multicast; also the one parser of peer addresses (``parse_peer``)
    zeroconf.py   mDNS/DNS-SD on the LAN (service ``_p2pscoop._tcp.local.``)

Invariants, for every source:

* **A hint, not a credential.** A ``PeerSeen`` only says "try to connect here". Anyone on the
  LAN can announce anything over mDNS; trust comes from the authenticated handshake (CURVE keys
  of the cluster, then HELLO), never from what discovery reported. What a source reads from the
  network is validated before it becomes an event; bad input is dropped and counted, and never
  raises in the thread that read it.
* **Not a liveness signal.** mDNS never says when a host crashed or its cable was cut (a
  ``PeerGone`` comes from a goodbye, i.e. a clean stop, or after a cache expiry of 18 minutes
  or more). Liveness comes from heartbeats. A ``PeerGone`` is a hint too: a peer whose
  connection is healthy may be kept.
* **Events are values.** Sources call ``on_event(event)`` with the frozen dataclasses below, from
  whatever thread they run on (each source documents which); the consumer hands them to its
  owner thread. A source reports ``PeerSeen`` again when it learns something new about a peer,
  so consumers treat it as idempotent.
* Nothing here imports ``p2pscoop.runtime``: discovery is an input to the runtime, not part of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PeerSeen", "PeerGone", "DiscoveryEvent"]


@dataclass(frozen=True)
class PeerSeen:
    """A peer may be reachable at ``address``.

    ``name`` identifies the peer within its source: the node id for zeroconf, the address itself
    for a static entry. ``address`` is a ZeroMQ endpoint, ``tcp://IP:PORT`` (or
    ``tcp://HOST:PORT`` / ``tcp://[IPv6]:PORT`` from a static list). ``host`` is the machine's
    name as the peer announced it (informational; never used for identity). ``props`` holds the
    validated properties the peer announced (``fp``, ``v`` as an int, ``id``, ``host`` for
    zeroconf; empty for a static entry).
    """

    name: str
    address: str
    host: str
    props: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PeerGone:
    """A peer reported earlier as ``PeerSeen(name=...)`` said goodbye (or its record expired)."""

    name: str


DiscoveryEvent = PeerSeen | PeerGone
