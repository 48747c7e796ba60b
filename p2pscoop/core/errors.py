"""Every error p2pscoop raises, and whose fault each one is.

The core owns the hierarchy so that every layer (core, runtime, API) raises the same classes;
``p2pscoop.errors`` re-exports them for users.

    P2PScoopError
     +-- ProtocolError            a frame broke the wire rules (never crashes a peer)
     |    +-- LocalProtocolError  we were about to do something illegal (a bug of ours)
     |    +-- RemoteProtocolError a peer sent something illegal (counted and dropped)
     |         +-- VersionError   a peer speaks another protocol or Python version
     +-- PayloadError             a function, argument or result could not be (un)pickled
     +-- RemoteError              a task raised an exception that could not travel as itself
     +-- TaskLostError            every peer that could run a task died (also BrokenExecutor)
     +-- SecurityError            the cluster secret or CurveZMQ set-up is missing, unsafe or broken
     +-- InternalError            an impossible state: please file a bug
"""

from __future__ import annotations

from concurrent.futures import BrokenExecutor


class P2PScoopError(Exception):
    """Base class of every error raised by p2pscoop itself."""


class ProtocolError(P2PScoopError):
    """A message broke the protocol. Raised by the codec and the state machines."""


class LocalProtocolError(ProtocolError):
    """This peer tried an illegal transition: a bug in p2pscoop, not in the user's code."""


class RemoteProtocolError(ProtocolError):
    """A peer sent a malformed, oversize or out-of-place message; it is dropped and counted."""


class VersionError(RemoteProtocolError):
    """A peer speaks another protocol version or runs another Python; it is refused."""


class PayloadError(P2PScoopError):
    """A task's function, arguments or result could not be pickled or unpickled."""


class RemoteError(P2PScoopError):
    """A task raised an exception that could not be sent back as itself.

    Carries the exception's type name, message and the formatted remote traceback.
    """

    def __init__(self, type_name: str, message: str, traceback_text: str = ""):
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.message = message
        self.traceback_text = traceback_text

    def __reduce__(self):
        return (type(self), (self.type_name, self.message, self.traceback_text))


class TaskLostError(P2PScoopError, BrokenExecutor):
    """No live peer can finish this task (its executors died)."""


class SecurityError(P2PScoopError):
    """The cluster secret is missing, malformed or unsafe, or CurveZMQ cannot be set up safely.

    The message says what is wrong and how to fix it; it never contains the secret.
    """


class InternalError(P2PScoopError):
    """An impossible state was reached. This is a bug in p2pscoop: please file a bug."""


class NeedsImport(Exception):
    """Not an error: unpickling a payload would import ``module`` first (the runtime's
    ``payload.loads_work`` with ``importing=False``). The comm thread must not import: an
    import may take seconds (a scientific library on a loaded host), during which the peer
    would send no heartbeat and be declared dead; ``transport/decoding.py`` unpickles such a
    payload on a thread of its own."""
