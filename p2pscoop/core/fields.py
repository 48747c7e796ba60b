"""Field kinds of the wire messages (``messages.py``): how each header field is checked,
and how the docs table names it.

A kind has ``check(value, name, row=None)``, which raises ``RemoteProtocolError`` for a
value that does not fit (never anything else), and ``doc()``. Every bound is a constant
here: no field, however a peer fills it, makes the decoder allocate more than these allow.
(Apart from ``messages.py``, which re-exports them, to keep that module within its budget.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import RemoteProtocolError

MAX_LIST = 4096  # entries in any list field
MAX_STR = 512  # characters in any string field
MAX_INT = (1 << 63) - 1
ID_LEN = 16  # bytes of a peer incarnation id
MAX_BLOB = 64  # bytes of a small binary field (a MAC)


def _fail(msg: str):
    raise RemoteProtocolError(msg)


@dataclass(frozen=True)
class Int:
    lo: int = 0
    hi: int = MAX_INT
    above: str | None = None  # the value must exceed this other field of the same row
    choices: tuple | None = None

    def check(self, v, name, row=None):
        if type(v) is not int or not self.lo <= v <= self.hi:
            _fail(f"field {name!r} must be an int in [{self.lo}, {self.hi}], got {v!r:.60}")
        if self.choices is not None and v not in self.choices:
            _fail(f"field {name!r} must be one of {self.choices}")
        if self.above is not None and row is not None and v <= row[self.above]:
            _fail(f"field {name!r} must be greater than {self.above!r}")

    def doc(self):
        if self.choices:
            return "int in " + "/".join(map(str, self.choices))
        return "int" if (self.lo, self.hi) == (0, MAX_INT) else f"int {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Str:
    def check(self, v, name, row=None):
        if type(v) is not str or len(v) > MAX_STR:
            _fail(f"field {name!r} must be a str of at most {MAX_STR} chars")

    def doc(self):
        return "str"


@dataclass(frozen=True)
class Id:
    def check(self, v, name, row=None):
        if type(v) is not bytes or len(v) != ID_LEN:
            _fail(f"field {name!r} must be {ID_LEN} bytes")

    def doc(self):
        return "peer id"


@dataclass(frozen=True)
class Text:
    """A longer str (a status report), at most ``max_len`` characters."""
    max_len: int = 32 * 1024

    def check(self, v, name, row=None):
        if type(v) is not str or len(v) > self.max_len:
            _fail(f"field {name!r} must be a str of at most {self.max_len} chars")

    def doc(self):
        return f"text (<= {self.max_len})"


@dataclass(frozen=True)
class Bool:
    def check(self, v, name, row=None):
        if type(v) is not bool:
            _fail(f"field {name!r} must be a bool")

    def doc(self):
        return "bool"


@dataclass(frozen=True)
class Blob:
    max_len: int = MAX_BLOB

    def check(self, v, name, row=None):
        if type(v) is not bytes or len(v) > self.max_len:
            _fail(f"field {name!r} must be at most {self.max_len} bytes")

    def doc(self):
        return f"bytes (<= {self.max_len})"


@dataclass(frozen=True)
class Rows:
    """A list of at most ``MAX_LIST`` rows, each a list of the named columns."""
    columns: tuple  # ((name, kind), ...)

    def check(self, v, name, row=None):
        if type(v) is not list or len(v) > MAX_LIST:
            _fail(f"field {name!r} must be a list of at most {MAX_LIST} entries")
        columns = self.columns
        width = len(columns)
        names = [c for c, _ in columns]
        checks = [(kind.check, f"{name}.{col}") for col, kind in columns]
        # a row's dict only for the kinds that compare two of its columns (``Int.above``)
        cross = any(getattr(kind, "above", None) for _, kind in columns)
        for r in v:
            if type(r) is not list or len(r) != width:
                _fail(f"field {name!r} must hold lists of {width} values")
            named = dict(zip(names, r)) if cross else None
            for (check, label), value in zip(checks, r):
                check(value, label, named)

    def doc(self):
        return "[[" + ", ".join(c for c, _ in self.columns) + "], ...]"


def f(kind, **default) -> Any:
    """Declare a header field and its kind (and, optionally, its default)."""
    return field(metadata={"kind": kind}, **default)
