"""The one global of p2pscoop: the peer running in this process, if any.

Everything else is passed in or owned. ``None`` means "no runtime": the futures API then
runs tasks serially in-process (with a one-time warning) so a script stays debuggable.
"""

from __future__ import annotations

from typing import Any

_peer: Any = None


def current() -> Any:
    """The running ``Peer`` of this process, or ``None``."""
    return _peer


def set_current(peer: Any) -> None:
    global _peer
    if peer is not None and _peer is not None and _peer is not peer:
        raise RuntimeError("a p2pscoop runtime is already running in this process")
    _peer = peer
