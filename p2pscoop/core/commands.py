"""Commands: what ``NodeState.handle`` asks the shell to do, and the one way to run them.

Every command class is listed in ``COMMANDS``. A shell runs commands with an ``Executor``
subclass that has one ``on_<CommandName>`` method per command it can run; a command without
a method, or a type that is not a command, raises ``InternalError`` (never silently
dropped). The runtime's executor (``runtime/executor.py``) also routes each command to the
thread that owns what it touches; the simulator's shell (``tests/unit/sim.py``) runs them
over the in-memory transport.

    command       who runs it (runtime)   what it does
    Run           scheduler (main)        run unit ``index`` of ``work`` in a greenlet
    Resolve       main                    complete a future / fill a map window
    PublishConst  main                    unpickle and publish a shared constant
    ConstAnswer   main                    the verdict on this peer's DefineConst: wake the
                                          task waiting in setConst
    Cancelled     the caller              the answer to ``Cancel``
    Wake          any                     wake the scheduler (new work or results)
    SendMsg       comm                    encode and send a control message
    ShipWorks     comm (pickled by caller) pickle works and send the GIVE of a steal (or
                                          a push)
    ShipResults   comm (pickled by caller) send results to their owner
    Connect       comm                    open a connection to a peer
    Admit         comm                    accept pickled payloads from a peer from now on
    Drop          comm                    close a peer's connection, refuse its payloads
    SendRefuse    comm                    tell a refused peer why, on a throwaway connection
    Stop          any (a hook)            the origin ended the run
    Report        comm                    a peer's TELEMETRY, for the origin's collector
    Joined, Left, Suspected, Refused, RefusedBy, Unreachable
                  any (log + hooks)       membership news for logs and the launcher
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InternalError
from .messages import Message


@dataclass(slots=True)
class Run:
    work: Any
    index: int


@dataclass(slots=True)
class Resolve:
    job: int
    index: int
    status: int
    value: Any  # object if ``encoded`` is False, else the payload bytes from a peer
    encoded: bool


@dataclass(slots=True)
class PublishConst:
    name: str
    data: bytes


@dataclass(slots=True)
class ConstAnswer:
    """The verdict on ``DefineConst(name, data, req)`` of this peer: ``accepted``, or refused
    (the name was taken: the winner is in ``NodeState.consts`` by now), or ``error`` (no
    arbiter could decide; worded for the user)."""
    req: int
    name: str
    accepted: bool
    error: str = ""


@dataclass(slots=True)
class Cancelled:
    job: int
    ok: bool


@dataclass(slots=True)
class SendMsg:
    peer: bytes
    msg: Message


@dataclass(slots=True)
class ShipWorks:
    """Reply to a steal: the shell pickles each work that the thief does not own."""
    peer: bytes
    req: int
    works: list
    left: int = 0  # units still queued here (GIVE's ``left``)


@dataclass(slots=True)
class ShipResults:
    """Send results to their owner: the shell pickles each value."""
    peer: bytes
    entries: list  # [(job, index, status, value)]


@dataclass(slots=True)
class Wake:
    """New runnable work or resolutions for the scheduler."""


@dataclass(slots=True)
class Connect:
    peer: bytes
    address: str


@dataclass(slots=True)
class Admit:
    peer: bytes


@dataclass(slots=True)
class Drop:
    peer: bytes


@dataclass(slots=True)
class SendRefuse:
    peer: bytes
    address: str
    reason: str  # worded for the refused peer


@dataclass(slots=True)
class Stop:
    code: int


@dataclass(slots=True)
class Report:
    """A peer's TELEMETRY report (validated by the codec), for the origin's collector."""
    peer: bytes
    msg: Message


@dataclass(slots=True)
class Joined:
    peer: bytes
    rank: int
    host: str
    address: str


@dataclass(slots=True)
class Left:
    peer: bytes
    rank: int
    why: str
    units: int = 0  # units it held for this owner, taken back for re-dispatch


@dataclass(slots=True)
class Suspected:
    peer: bytes
    rank: int
    silence: float


@dataclass(slots=True)
class Unreachable:
    """A peer we greeted never answered (no HELLO back)."""
    peer: bytes
    address: str
    silence: float


@dataclass(slots=True)
class Refused:
    """We refused a HELLO."""
    peer: bytes
    rank: int
    address: str
    reason: str


@dataclass(slots=True)
class RefusedBy:
    """A peer refused our HELLO."""
    peer: bytes
    reason: str


COMMANDS = (Run, Resolve, PublishConst, ConstAnswer, Cancelled, SendMsg, ShipWorks,
            ShipResults, Wake, Connect, Admit, Drop, SendRefuse, Stop, Joined, Left, Suspected,
            Refused, RefusedBy, Unreachable, Report)

#: commands that only report news (logs, launcher hooks); they change nothing
NEWS = (Joined, Left, Suspected, Refused, RefusedBy, Unreachable)


class Executor:
    """Runs commands through ``on_<CommandName>`` methods; see the module docstring."""

    def __init__(self):
        self._methods: dict = {}

    def method(self, cmd_type: type):
        meth = self._methods.get(cmd_type)
        if meth is None:
            if cmd_type not in COMMANDS:
                raise InternalError(f"{cmd_type.__name__} is not a command: please file a "
                                    f"bug")
            meth = getattr(self, "on_" + cmd_type.__name__, None)
            if meth is None:
                raise InternalError(f"{type(self).__name__} cannot run "
                                    f"{cmd_type.__name__}: please file a bug")
            self._methods[cmd_type] = meth
        return meth

    def execute(self, cmds: list) -> None:
        for cmd in cmds:
            self.method(type(cmd))(cmd)
