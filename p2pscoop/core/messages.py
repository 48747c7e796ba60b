"""Wire messages: one schema per message class, from which the codec, the checks and the
docs table (``tools/state_diagram.py``) are all derived.

A message is a list of frames: ``[header, *payloads]``. The header is msgpack
``[PROTOCOL_VERSION, type_code, *fields]``; payloads are opaque bytes (cloudpickle made by the
runtime) that this module never looks inside. ``decode`` checks the version, the type code,
the number of fields, every field against its schema, and the number of payload frames,
*before* anything acts on the message (each field's ``fits`` first, its ``check`` for the
reason when it does not: ``fields.py``); any violation raises ``RemoteProtocolError`` (a
malformed frame never raises anything else), except a ``HELLO`` of another protocol version,
which raises ``VersionError`` naming both versions so that the refusal can say what differs.

Declaring a message: a dataclass subclass of ``Message`` with a unique ``TYPE`` code, a
one-line ``DOC``, and each header field declared with ``f(kind)`` where ``kind`` is one of the
field kinds of ``fields.py`` (``Int``, ``Str``, ``Id``, ``Bool``, ``Blob``, ``Rows``...). A message that
carries payload frames overrides ``payload_count`` and ``PAYLOADS`` (its doc). ``REGISTRY``
maps each code to its class. Handlers are registered per class by their consumers (see
``core/node.py`` and ``core/membership.py``).

Two messages keep their shape across protocol versions, so that peers of different versions
can still tell each other why they disagree: ``HELLO`` (whose version is read before its
fields) and ``REFUSE`` (decoded whatever the version).

``give_message``/``read_give`` and ``results_messages`` are the pure codec of the two
messages that carry work and results: the runtime and the simulator both build them here,
with their own (un)pickling functions passed in (a result passed on towards its owner
travels as the payload it came in: ``Encoded``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import msgpack

from .errors import RemoteProtocolError, VersionError
from .fields import (ID_LEN, MAX_BLOB, MAX_INT, MAX_LIST, MAX_STR, Blob,  # noqa: F401
                     Bool, Id, Int, Rows, Str, Text, _fail, f)

PROTOCOL_VERSION = 8  # 3: constants arbitrated by the origin; PING gossips members,
                      # PRUNE; 4: TELEMETRY, SERVE's config; 5: leases chain (RESULTS
                      # rows name their owner; MOVED and HOLDING are gone); 6: the origin
                      # is reached along the views (PING's origin fields, ORIGIN_GONE,
                      # CONST_VERDICT's error; SHUTDOWN and CONST are forwarded; ROSTER
                      # and TELEMETRY hop towards the origin, PING carries its count),
                      # RANGE rows (a stolen range's results in one row); 7: GIVE's
                      # suspects (a relay's suspect going home carries its deaths);
                      # 8: GIVE and HINT say the sender's queued units (``left``)
MAX_HEADER = 64 * 1024  # bytes of msgpack header
TELEMETRY_ROWS, TELEMETRY_NAME = 256, 96  # rows and fn name length: a report's header fits
RESULTS_ROWS = 1024  # entries per RESULTS message: its header fits MAX_HEADER however large

# HELLO roles: a peer of a program (its origin or a worker), a node supervisor
# (``p2pscoop join``), a client that only asks a node something (launcher, status).
ROLE_PEER, ROLE_NODE, ROLE_CLIENT = 0, 1, 2

# Result status codes (RESULTS entries and Resolve commands).
OK = 0  # payload is the pickled return value
RAISED = 1  # payload is a pickled (exception, traceback text) envelope
FAILED = 2  # payload is a pickled p2pscoop error (PayloadError...) made by the executor
RANGE = 3  # the values of units index, index + 1, ... of a map (``core/ranges.py``)
STATUSES = (OK, RAISED, FAILED, RANGE)


#: a member as gossip carries it (WELCOME, PING)
MEMBER_ROWS = (("incarnation", Id()), ("address", Str()), ("rank", Int()), ("host", Str()))


# --- the messages -------------------------------------------------------------------------

@dataclass
class Message:
    TYPE: ClassVar[int] = -1
    DOC: ClassVar[str] = ""
    PAYLOADS: ClassVar[str] = "0"
    SCHEMA: ClassVar[tuple] = ()  # ((name, kind), ...), filled by ``_register``
    FITS: ClassVar[tuple] = ()  # each field's ``kind.fits()`` (``fields.py``), likewise
    payloads: list = field(default_factory=list, repr=False, kw_only=True)
    #: the protocol version the sender spoke (differs from ours only on a HELLO or REFUSE)
    proto: int = field(default=PROTOCOL_VERSION, repr=False, compare=False, kw_only=True)

    def fields(self) -> list:
        return [getattr(self, name) for name, _ in self.SCHEMA]

    def payload_count(self) -> int:
        return 0


@dataclass
class Hello(Message):
    TYPE: ClassVar[int] = 1
    DOC: ClassVar[str] = "first message on a connection: who I am, what I run"
    cluster: str = f(Str())  # the cluster's public fingerprint (or a per-run token)
    incarnation: bytes = f(Id())
    rank: int = f(Int())
    address: str = f(Str())
    host: str = f(Str())
    python: str = f(Str())
    pickle_protocol: int = f(Int(0, 255))
    version: str = f(Str())
    role: int = f(Int(0, 2))  # ROLE_PEER, ROLE_NODE or ROLE_CLIENT
    program: str = f(Str())  # the program this peer serves ("" for a node or a client)
    mac: bytes = f(Blob())  # HMAC of the fields above with the cluster's hello key, or b""


@dataclass
class Welcome(Message):
    TYPE: ClassVar[int] = 2
    DOC: ClassVar[str] = "an accepted peer learns a sample of the members its introducer knows"
    size: int = f(Int(1, MAX_LIST))
    peers: list = f(Rows(MEMBER_ROWS))


@dataclass
class Steal(Message):
    TYPE: ClassVar[int] = 3
    DOC: ClassVar[str] = "an idle peer asks for work"
    req: int = f(Int())


@dataclass
class Give(Message):
    TYPE: ClassVar[int] = 4
    DOC: ClassVar[str] = "the answer to STEAL (no rows: denied)"
    PAYLOADS: ClassVar[str] = "one per row with `has_payload`"
    req: int = f(Int())
    works: list = f(Rows((("owner", Id()), ("job", Int()), ("lo", Int()),
                          ("hi", Int(above="lo")), ("has_payload", Bool()))))
    #: units of the receiver's own jobs that come back after a holder died running them
    #: (a relay's suspects, ``chains.py``): the receiver never runs them either
    suspects: list = f(Rows((("job", Int()), ("index", Int()), ("deaths", Int(1)))),
                       default_factory=list)
    #: units still queued on the sender after this answer (a thief's next idle spell asks
    #: the link that said most first: ``policy.py``)
    left: int = f(Int(), default=0)

    def payload_count(self) -> int:
        return sum(row[4] for row in self.works)


@dataclass
class Results(Message):
    TYPE: ClassVar[int] = 5
    DOC: ClassVar[str] = ("results of units, to the peer each came from (which passes on "
                          "those it does not own, hop by hop, to their owner)")
    PAYLOADS: ClassVar[str] = "one per entry"
    entries: list = f(Rows((("owner", Id()), ("job", Int()), ("index", Int()),
                            ("status", Int(choices=STATUSES)))))

    def payload_count(self) -> int:
        return len(self.entries)


@dataclass
class Hint(Message):
    TYPE: ClassVar[int] = 6
    DOC: ClassVar[str] = "lifeline: I have work again (``left``: units queued here)"
    left: int = f(Int(), default=0)


@dataclass
class Const(Message):
    TYPE: ClassVar[int] = 7
    DOC: ClassVar[str] = "a shared constant's value"
    PAYLOADS: ClassVar[str] = "1"
    name: str = f(Str())

    def payload_count(self) -> int:
        return 1


@dataclass
class Shutdown(Message):
    TYPE: ClassVar[int] = 8
    DOC: ClassVar[str] = ("the origin ends the run; a peer forwards it once to its other "
                          "links, then stops")
    code: int = f(Int(0, 255))


#: PING's ``hops`` while the sender knows no way to the program's origin
NO_ROUTE = 0xFFFF
#: hops a CONST_PROPOSE may travel toward the origin (distances a ping interval old could
#: otherwise send it round a loop)
PROPOSE_TTL = 64


@dataclass
class OriginGone(Message):
    TYPE: ClassVar[int] = 16
    DOC: ClassVar[str] = ("the program's origin died: drop the program; forwarded once to "
                          "every link; ignored by a peer that heard a later heartbeat count "
                          "of the origin than `beat` (the sender's last)")
    origin: bytes = f(Id())
    beat: int = f(Int())


@dataclass
class Refuse(Message):
    TYPE: ClassVar[int] = 10
    DOC: ClassVar[str] = "a HELLO was refused, and why (same shape in every version)"
    reason: str = f(Str())


@dataclass
class Ping(Message):
    TYPE: ClassVar[int] = 11
    DOC: ClassVar[str] = ("heartbeat, to every linked peer each ping interval, with a few "
                          "members sampled from the sender's view (gossip), the program's "
                          "origin as far as the sender knows (empty: unknown), the origin's "
                          "heartbeat count it heard last, its distance to it in links and "
                          "the program's size that came with that count (0: unknown)")
    peers: list = f(Rows(MEMBER_ROWS), default_factory=list)
    origin: bytes = f(Blob(ID_LEN), default=b"")
    beat: int = f(Int(), default=0)
    hops: int = f(Int(0, NO_ROUTE), default=NO_ROUTE)
    size: int = f(Int(), default=0)  # the program's peers as the origin counts them


@dataclass
class Bye(Message):
    TYPE: ClassVar[int] = 12
    DOC: ClassVar[str] = "I am leaving: forget me now, no need to wait for a timeout"


@dataclass
class Prune(Message):
    TYPE: ClassVar[int] = 15
    DOC: ClassVar[str] = ("I close our link to keep my view bounded; I am alive and no lease "
                          "joins us (not a death: nothing is re-dispatched)")


@dataclass
class Serve(Message):
    TYPE: ClassVar[int] = 20
    DOC: ClassVar[str] = "to a node: start up to `workers` peers for this program"
    program: str = f(Str())
    origin: bytes = f(Id())
    address: str = f(Str())  # the origin's address, as the node's peers should dial it
    workers: int = f(Int(0, MAX_LIST))  # 0: as many as the node offers
    #: NodeConfig fields (JSON) the program's peers must share: telemetry and trace only
    #: (``launch/node.py`` keeps those and ignores the rest); "" for none
    config: str = f(Text(4096), default="")


@dataclass
class Served(Message):
    TYPE: ClassVar[int] = 21
    DOC: ClassVar[str] = "a node's answer to SERVE: how many peers it starts"
    program: str = f(Str())
    workers: int = f(Int(0, MAX_LIST))


@dataclass
class Status(Message):
    TYPE: ClassVar[int] = 22
    DOC: ClassVar[str] = "to a node: describe yourself"
    req: int = f(Int())


@dataclass
class StatusReport(Message):
    TYPE: ClassVar[int] = 23
    DOC: ClassVar[str] = "a node's answer to STATUS: JSON text (peers, programs, load)"
    req: int = f(Int())
    report: str = f(Text())


@dataclass
class ConstPropose(Message):
    TYPE: ClassVar[int] = 13
    DOC: ClassVar[str] = ("to the origin, which arbitrates constants, hop by hop toward it "
                          "(`ttl`: hops left): may I define `name`?")
    PAYLOADS: ClassVar[str] = "1 (the proposed value)"
    req: int = f(Int())
    name: str = f(Str())
    ttl: int = f(Int(0, 255), default=PROPOSE_TTL)

    def payload_count(self) -> int:
        return 1


@dataclass
class ConstVerdict(Message):
    TYPE: ClassVar[int] = 14
    DOC: ClassVar[str] = ("the origin's answer to CONST_PROPOSE, back the way it came; when "
                          "refused, the winner's CONST was sent first; `error`: no verdict "
                          "(the way to the origin is lost)")
    req: int = f(Int())
    accepted: bool = f(Bool())
    error: str = f(Str(), default="")


@dataclass
class Telemetry(Message):
    TYPE: ClassVar[int] = 24
    DOC: ClassVar[str] = ("to the origin (hop by hop along the views, `src` naming the "
                          "reporting peer), while telemetry is on: this peer's counters, "
                          "queue, running function, its unit runs and granted steals "
                          "(--trace)")
    host: str = f(Str())
    pid: int = f(Int())
    queue: int = f(Int())  # units queued here now
    running: str = f(Str())  # qualified name of the function running now, "" if none
    done: int = f(Int())  # units this peer finished (any owner)
    known: int = f(Int())  # units submitted by this peer (it owns them)
    sent: int = f(Int())  # Counters.steals_sent
    granted: int = f(Int())
    denied: int = f(Int())
    redispatched: int = f(Int())  # Counters.units_redispatched
    idle: int = f(Int())  # microseconds this peer's scheduler slept with nothing to run
    final: bool = f(Bool())  # its last report
    #: unit runs and steals granted (as victim); times: µs since the epoch, sender's clock
    runs: list = f(Rows((("job", Int()), ("owner", Id()), ("start", Int()), ("end", Int()),
                         ("fn", Str()))))
    steals: list = f(Rows((("thief", Id()), ("units", Int(1)), ("at", Int()))))
    src: bytes = f(Blob(ID_LEN), default=b"")  # the reporting peer (passed on hop by hop)


@dataclass
class Roster(Message):
    TYPE: ClassVar[int] = 25
    DOC: ClassVar[str] = ("towards the origin, hop by hop (the link nearest to it): a peer "
                          "of the program that joined (its own row, once it has a way) and "
                          "peers that left or died (each of their links reports them; the origin "
                          "believes two reporters)")
    joined: list = f(Rows(MEMBER_ROWS), default_factory=list)
    gone: list = f(Rows((("incarnation", Id()), ("reporter", Id()))), default_factory=list)
    hops: int = f(Int(0, 255), default=0)  # links crossed so far (distances may be stale)


REGISTRY: dict[int, type[Message]] = {}


def _register(*classes) -> None:
    for cls in classes:
        if cls.TYPE in REGISTRY:
            raise ValueError(f"message code {cls.TYPE} used twice")
        cls.SCHEMA = tuple((fl.name, fl.metadata["kind"]) for fl in dataclasses.fields(cls)
                           if "kind" in fl.metadata)
        cls.FITS = tuple(kind.fits() for _, kind in cls.SCHEMA)
        REGISTRY[cls.TYPE] = cls


_register(Hello, Welcome, Steal, Give, Results, Hint, Const, Shutdown, Refuse, Ping, Bye,
          Prune, ConstPropose, ConstVerdict, OriginGone, Serve, Served, Status, StatusReport,
          Telemetry, Roster)


# --- codec ----------------------------------------------------------------------------

def encode(msg: Message) -> list[bytes]:
    """Frames for ``msg``: the header, then its payload frames."""
    header = msgpack.packb([PROTOCOL_VERSION, msg.TYPE, *msg.fields()], use_bin_type=True)
    if len(header) > MAX_HEADER:
        raise ValueError(f"{type(msg).__name__} header of {len(header)} bytes exceeds "
                         f"{MAX_HEADER}: split the message")
    return [header, *msg.payloads]


def hello_body(msg: Hello) -> bytes:
    """The canonical bytes a HELLO's MAC covers: every field but the MAC itself."""
    return msgpack.packb([PROTOCOL_VERSION, *msg.fields()[:-1]], use_bin_type=True)


def decode(frames: list) -> Message:
    """Parse and validate frames into a message, or raise ``RemoteProtocolError``
    (``VersionError`` for a HELLO of another protocol version)."""
    if not frames:
        _fail("empty message")
    raw = frames[0]
    if len(raw) > MAX_HEADER:
        _fail(f"header of {len(raw)} bytes exceeds {MAX_HEADER}")
    try:
        header = msgpack.unpackb(bytes(raw), raw=False, use_list=True,
                                 strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise RemoteProtocolError(f"header is not valid msgpack: {exc}") from None
    if type(header) is not list or len(header) < 2:
        _fail("header must be a list [version, type, ...]")
    version, code = header[0], header[1]
    cls = REGISTRY.get(code) if type(code) is int else None
    other = type(version) is not int or version != PROTOCOL_VERSION  # 1.0 and True == 1
    if other and (type(version) is not int or version < 1 or cls not in (Hello, Refuse)):
        _fail(f"protocol version {version!r:.20} is not {PROTOCOL_VERSION}")
    if cls is None:
        _fail(f"unknown message type {code!r:.20}")
    args = header[2:]
    schema = cls.SCHEMA
    try:
        if len(args) != len(schema):
            _fail(f"{cls.__name__} takes {len(schema)} fields, got {len(args)}")
        for fits, value in zip(cls.FITS, args):
            if not fits(value):  # the first that does not fit: ``check`` says why
                named = dict(zip((name for name, _ in schema), args))
                for (name, kind), value in zip(schema, args):
                    kind.check(value, name, named)
                break
    except RemoteProtocolError as exc:
        if other:  # a HELLO of another version that we cannot even read
            raise VersionError(f"protocol {version} there, {PROTOCOL_VERSION} here "
                               f"(its HELLO is unreadable here: {exc})") from None
        raise
    msg = cls(*args)
    msg.proto = version
    want = msg.payload_count()
    if len(frames) - 1 != want:
        _fail(f"{cls.__name__} must carry {want} payload frames, got {len(frames) - 1}")
    msg.payloads = [bytes(fr) if not isinstance(fr, bytes) else fr for fr in frames[1:]]
    return msg


# --- the work and result codec (pure: pickling is passed in) ----------------------------

def give_message(req: int, works: list, thief: bytes, dumps: Callable[[Any], bytes],
                 left: int = 0) -> tuple[Give, list]:
    """The GIVE answering ``req`` with ``works``, and the works that ``dumps`` refused;
    ``left``: the units still queued on the victim.

    A work the thief owns travels as a row only (it has the function and arguments); the
    others carry ``dumps(work)``. ``dumps`` may raise: that work is returned in the second
    list and left out of the message.
    """
    rows, frames, bad, suspects = [], [], [], []
    for w in works:
        if w.owner == thief:
            rows.append([w.owner, w.job, w.lo, w.hi, False])
            if w.deaths:  # a suspect going home (``chains.py``): its deaths go with it
                suspects.append([w.job, w.lo, w.deaths])
            continue
        try:
            frames.append(dumps(w))
        except Exception:
            bad.append(w)
            continue
        rows.append([w.owner, w.job, w.lo, w.hi, True])
    return Give(req, rows, suspects, left, payloads=frames), bad


def read_give(msg: Give, loads: Callable[[bytes, bytes, int, int, int], Any],
              placeholder: Callable[[bytes, int, int, int], Any]) -> list:
    """The works of a decoded GIVE: ``loads(payload, owner, job, lo, hi)`` for rows with a
    payload, ``placeholder(owner, job, lo, hi)`` for the receiver's own units."""
    payloads = iter(msg.payloads)
    return [loads(next(payloads), owner, job, lo, hi) if has
            else placeholder(owner, job, lo, hi)
            for owner, job, lo, hi, has in msg.works]


class Encoded:
    """A result payload already encoded (one a peer passes on towards its owner): sent as
    it came, never pickled again."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __eq__(self, other: object) -> bool:
        return type(other) is Encoded and other.data == self.data

    def __repr__(self) -> str:
        return f"Encoded({len(self.data)} bytes)"


def results_messages(entries: list,
                     dumps: Callable[[int, Any], tuple[int, bytes]]) -> list[Results]:
    """RESULTS messages for ``[(owner, job, index, status, value)]``; ``dumps(status,
    value)`` returns the status and payload to send (it may turn a value into a failure);
    an ``Encoded`` value is sent as it is."""
    out = []
    for start in range(0, len(entries), RESULTS_ROWS):
        rows, frames = [], []
        for owner, job, index, status, value in entries[start:start + RESULTS_ROWS]:
            if type(value) is Encoded:
                data = value.data
            else:
                status, data = dumps(status, value)
            rows.append([owner, job, index, status])
            frames.append(data)
        out.append(Results(rows, payloads=frames))
    return out
