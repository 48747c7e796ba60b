"""Cluster-wide read-only constants, SCOOP's ``shared`` module.

    shared.setConst(table=big_dict, scale=2.5)   # once, anywhere (usually the origin)
    shared.getConst("table")                      # on any peer, inside any task

A constant is sent to every peer once; a peer that gives work to another sends it the
constants it knows first, so a task never arrives before the constants its giver had.
Redefining a name raises ``TypeError``. ``getConst`` waits up to ``timeout`` seconds
(``None``: no limit) and returns ``None`` if the constant has not arrived by then, as SCOOP.
Without a running runtime the constants live in this process only. While a worker imports
the program, a call stops that import quietly (``runtime/importing.py``): the origin, which
runs the program, defines the constants.
"""

from __future__ import annotations

from typing import Any

from .runtime import context, payload
from .runtime.importing import stop_if_importing

__all__ = ["setConst", "getConst"]

_local: dict[str, Any] = {}


def setConst(**kwargs: Any) -> None:
    """Define named constants on every peer, present and future."""
    stop_if_importing("shared.setConst")
    peer = context.current()
    for name, value in kwargs.items():
        if peer is None:
            if name in _local:
                raise TypeError(f"This constant already exists: {name}.")
            payload.dumps_const(value)  # the same error as with a runtime
            _local[name] = value
        else:
            peer.set_const(name, value)


def getConst(name: str, timeout: float | None = 0.1) -> Any:
    """The value of constant ``name``, waiting up to ``timeout`` s; ``None`` if absent."""
    stop_if_importing("shared.getConst")
    peer = context.current()
    if peer is None:
        return _local.get(name)
    if timeout is not None and timeout < 0:
        timeout = None
    return peer.get_const(name, timeout)
