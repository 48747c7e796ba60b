"""Events: what the shell tells ``NodeState.handle`` (see ``node.py`` for who sends which).

    event         sent by              meaning
    Submit        API (main)           a new job owned here (made by ``NodeState.new_job``)
    Pop           scheduler (main)     give me one unit to run
    Idle          scheduler (main)     nothing to run: steal, or say how long to sleep
    Finished      scheduler (main)     a unit ended (value or exception, not pickled)
    Cancel        API (main)           cancel a one-unit job that has not started
    DefineConst   API (main)           this peer defines a shared constant
    EndRun        launcher (main)      the origin ends the run: tell every peer (a
                                       SHUTDOWN to its links, passed on along the views)
    Leave         node supervisor      this peer leaves: say BYE to every peer
    Bootstrap     launcher, discovery  greet a peer known by identity and address
    Received      comm                 a decoded, validated message from a peer
    Unshippable   comm                 works of a GIVE that could not be pickled
    Disconnected  comm                 a connection to a peer was lost
    Tick          comm                 time passed (the deadline ``next_tick`` asked for)
    PeerUp/Down   simulator, tests     a peer known alive/dead without a handshake
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .deque import Work
from .messages import Message


@dataclass(slots=True)
class Submit:
    work: Work  # made by NodeState.new_job


@dataclass(slots=True)
class Pop:
    """The scheduler wants one unit to run."""


@dataclass(slots=True)
class Idle:
    """The scheduler has nothing to run: steal, or say how long to sleep."""


@dataclass(slots=True)
class Finished:
    owner: bytes
    job: int
    index: int
    status: int  # messages.OK / RAISED / FAILED
    value: Any  # the return value or exception envelope, not pickled


@dataclass(slots=True)
class Received:
    peer: bytes
    msg: Message
    works: list = field(default_factory=list)  # decoded Work items of a Give


@dataclass(slots=True)
class Unshippable:
    """Works of a Give reply that could not be pickled: take them back, never steal again."""
    peer: bytes
    works: list


@dataclass(slots=True)
class Cancel:
    job: int


@dataclass(slots=True)
class PeerUp:
    peer: bytes


@dataclass(slots=True)
class PeerDown:
    peer: bytes


@dataclass(slots=True)
class Tick:
    """Time passed: flush old result batches, forget unanswered steal requests, heartbeats."""


@dataclass(slots=True)
class Bootstrap:
    """Greet a peer known by identity and address (a worker's origin, a static list)."""
    peer: bytes
    address: str


@dataclass(slots=True)
class Disconnected:
    """The transport lost its connection to ``peer`` (its process is gone)."""
    peer: bytes


@dataclass(slots=True)
class DefineConst:
    """This peer defines a shared constant (``data`` is its pickle). The verdict comes back
    as ``ConstAnswer(req, ...)``: at once on the arbiter (the origin), later elsewhere."""
    name: str
    data: bytes
    req: int = 0


@dataclass(slots=True)
class EndRun:
    """The origin ends the run: every peer is told to stop with ``code`` (its links
    directly, the others along the views: ``origin.py``)."""
    code: int


@dataclass(slots=True)
class Leave:
    """This peer leaves: every peer is told (BYE), so none waits for a timeout."""
