"""Wire messages: names, fields, a msgpack codec that validates everything, size limits.

A message is a list of frames: ``[header, *payloads]``. The header is msgpack
``[PROTOCOL_VERSION, type_code, *fields]``; payloads are opaque bytes (cloudpickle made by the
runtime) that this module never looks inside. ``decode`` checks the version, the type code, the
number of fields, every field's type and size, and the number of payload frames, *before*
anything acts on the message; any violation raises ``RemoteProtocolError`` (a malformed
frame never raises anything else).

    type          fields                                              payload frames
    HELLO         cluster, incarnation, rank, address, python,
                  pickle_protocol, version                            0
    WELCOME       size, peers [[incarnation, address, rank], ...]     0
    STEAL         req                                                 0
    GIVE          req, works [[owner, job, lo, hi, has_payload]...]    one per has_payload
    RESULTS       entries [[job, index, status], ...]                  one per entry
    HINT          (none: "I have work again")                         0
    CONST         name                                                1
    SHUTDOWN      code                                                0
    MOVED         job, lo, hi, to (a holder re-gave the owner's units)  0

Every request carries an id (``req``) so a stale reply is recognised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import msgpack

from .errors import RemoteProtocolError

PROTOCOL_VERSION = 1
MAX_HEADER = 64 * 1024  # bytes of msgpack header
MAX_LIST = 4096  # entries in any list field
MAX_STR = 512  # characters in any string field
MAX_INT = (1 << 63) - 1
ID_LEN = 16  # bytes of a peer incarnation id

# Result status codes (RESULTS entries and Resolve commands).
OK = 0  # payload is the pickled return value
RAISED = 1  # payload is a pickled (exception, traceback text) envelope
FAILED = 2  # payload is a pickled p2pscoop error (PayloadError...) made by the executor
STATUSES = (OK, RAISED, FAILED)


@dataclass
class Message:
    TYPE: ClassVar[int] = -1
    payloads: list = field(default_factory=list, repr=False, kw_only=True)

    def fields(self) -> list:
        raise NotImplementedError


@dataclass
class Hello(Message):
    TYPE: ClassVar[int] = 1
    cluster: str
    incarnation: bytes
    rank: int
    address: str
    python: str
    pickle_protocol: int
    version: str

    def fields(self):
        return [self.cluster, self.incarnation, self.rank, self.address, self.python,
                self.pickle_protocol, self.version]


@dataclass
class Welcome(Message):
    TYPE: ClassVar[int] = 2
    size: int
    peers: list  # [[incarnation, address, rank], ...]

    def fields(self):
        return [self.size, self.peers]


@dataclass
class Steal(Message):
    TYPE: ClassVar[int] = 3
    req: int

    def fields(self):
        return [self.req]


@dataclass
class Give(Message):
    TYPE: ClassVar[int] = 4
    req: int
    works: list  # [[owner, job, lo, hi, has_payload], ...]

    def fields(self):
        return [self.req, self.works]


@dataclass
class Results(Message):
    TYPE: ClassVar[int] = 5
    entries: list  # [[job, index, status], ...]

    def fields(self):
        return [self.entries]


@dataclass
class Hint(Message):
    TYPE: ClassVar[int] = 6

    def fields(self):
        return []


@dataclass
class Const(Message):
    TYPE: ClassVar[int] = 7
    name: str

    def fields(self):
        return [self.name]


@dataclass
class Shutdown(Message):
    TYPE: ClassVar[int] = 8
    code: int

    def fields(self):
        return [self.code]


@dataclass
class Moved(Message):
    """To a work's owner, from its holder: "I gave your units [lo, hi) of job to ``to``"."""
    TYPE: ClassVar[int] = 9
    job: int
    lo: int
    hi: int
    to: bytes

    def fields(self):
        return [self.job, self.lo, self.hi, self.to]


REGISTRY: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (Hello, Welcome, Steal, Give, Results, Hint, Const, Shutdown, Moved)
}


#: number of header fields of each message type (dataclass fields minus ``payloads``)
_NFIELDS = {cls: len(dataclasses.fields(cls)) - 1 for cls in REGISTRY.values()}


# --- field checks -----------------------------------------------------------------------

def _fail(msg: str):
    raise RemoteProtocolError(msg)


def _int(v, name, lo=0, hi=MAX_INT):
    if type(v) is not int or not lo <= v <= hi:
        _fail(f"field {name!r} must be an int in [{lo}, {hi}], got {v!r:.60}")
    return v


def _str(v, name):
    if type(v) is not str or len(v) > MAX_STR:
        _fail(f"field {name!r} must be a str of at most {MAX_STR} chars")
    return v


def _id(v, name):
    if type(v) is not bytes or len(v) != ID_LEN:
        _fail(f"field {name!r} must be {ID_LEN} bytes")
    return v


def _list(v, name, width=None):
    if type(v) is not list or len(v) > MAX_LIST:
        _fail(f"field {name!r} must be a list of at most {MAX_LIST} entries")
    if width is not None:
        for row in v:
            if type(row) is not list or len(row) != width:
                _fail(f"field {name!r} must hold lists of {width} values")
    return v


def _check(msg: Message, npayloads: int) -> int:
    """Validate one decoded message; return how many payload frames it must carry."""
    t = msg.TYPE
    if t == Hello.TYPE:
        _str(msg.cluster, "cluster")
        _id(msg.incarnation, "incarnation")
        _int(msg.rank, "rank")
        _str(msg.address, "address")
        _str(msg.python, "python")
        _int(msg.pickle_protocol, "pickle_protocol", 0, 255)
        _str(msg.version, "version")
        return 0
    if t == Welcome.TYPE:
        _int(msg.size, "size", 1, MAX_LIST)
        for inc, addr, rank in _list(msg.peers, "peers", 3):
            _id(inc, "peers.incarnation")
            _str(addr, "peers.address")
            _int(rank, "peers.rank")
        return 0
    if t == Steal.TYPE:
        _int(msg.req, "req")
        return 0
    if t == Give.TYPE:
        _int(msg.req, "req")
        want = 0
        for owner, job, lo, hi, has in _list(msg.works, "works", 5):
            _id(owner, "works.owner")
            _int(job, "works.job")
            _int(lo, "works.lo")
            _int(hi, "works.hi", lo + 1)
            if type(has) is not bool:
                _fail("field 'works.has_payload' must be a bool")
            want += has
        return want
    if t == Results.TYPE:
        for job, index, status in _list(msg.entries, "entries", 3):
            _int(job, "entries.job")
            _int(index, "entries.index")
            if status not in STATUSES or type(status) is not int:
                _fail(f"field 'entries.status' must be one of {STATUSES}")
        return len(msg.entries)
    if t == Hint.TYPE:
        return 0
    if t == Const.TYPE:
        _str(msg.name, "name")
        return 1
    if t == Shutdown.TYPE:
        _int(msg.code, "code", 0, 255)
        return 0
    if t == Moved.TYPE:
        _int(msg.job, "job")
        _int(msg.lo, "lo")
        _int(msg.hi, "hi", msg.lo + 1)
        _id(msg.to, "to")
        return 0
    raise AssertionError(t)  # unreachable: the registry only holds the types above


# --- codec ----------------------------------------------------------------------------

def encode(msg: Message) -> list[bytes]:
    """Frames for ``msg``: the header, then its payload frames."""
    header = msgpack.packb([PROTOCOL_VERSION, msg.TYPE, *msg.fields()], use_bin_type=True)
    if len(header) > MAX_HEADER:
        raise ValueError(f"{type(msg).__name__} header of {len(header)} bytes exceeds "
                         f"{MAX_HEADER}: split the message")
    return [header, *msg.payloads]


def decode(frames: list) -> Message:
    """Parse and validate frames into a message, or raise ``RemoteProtocolError``."""
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
    if type(version) is not int or version != PROTOCOL_VERSION:  # 1.0 and True == 1
        _fail(f"protocol version {version!r:.20} is not {PROTOCOL_VERSION}")
    cls = REGISTRY.get(code) if type(code) is int else None
    if cls is None:
        _fail(f"unknown message type {code!r:.20}")
    args = header[2:]
    nfields = _NFIELDS[cls]
    if len(args) != nfields:
        _fail(f"{cls.__name__} takes {nfields} fields, got {len(args)}")
    try:
        msg = cls(*args)
    except TypeError as exc:
        raise RemoteProtocolError(f"{cls.__name__}: {exc}") from None
    want = _check(msg, len(frames) - 1)
    if len(frames) - 1 != want:
        _fail(f"{cls.__name__} must carry {want} payload frames, got {len(frames) - 1}")
    msg.payloads = [bytes(f) if not isinstance(f, bytes) else f for f in frames[1:]]
    return msg
