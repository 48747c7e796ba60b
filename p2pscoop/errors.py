"""The errors p2pscoop raises (defined in ``core.errors``; see there for the hierarchy)."""

from .core.errors import (InternalError, LocalProtocolError, P2PScoopError, PayloadError,
                          ProtocolError, RemoteError, RemoteProtocolError, SecurityError,
                          TaskLostError, VersionError)
from .runtime.payload import RemoteTraceback

__all__ = ["P2PScoopError", "ProtocolError", "LocalProtocolError", "RemoteProtocolError",
           "VersionError", "PayloadError", "RemoteError", "SecurityError", "TaskLostError",
           "InternalError", "RemoteTraceback"]
