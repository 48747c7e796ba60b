"""Field kinds of the wire messages (``messages.py``): how each header field is checked,
and how the docs table names it.

A kind has ``check(value, name, row=None)``, which raises ``RemoteProtocolError`` for a
value that does not fit (never anything else), and ``doc()``. Every bound is a constant
here: no field, however a peer fills it, makes the decoder allocate more than these allow.

A kind also has ``fits()``: a predicate ``value -> bool``, made once per kind, that the
decoder asks first (a field of a message takes a call and a few tests; ``check`` costs
several attribute reads and, for rows, a list and a dict per call: the comm thread decodes
every message). Invariant: ``fits(v)`` is True only for a value ``check`` accepts (without
a row: a kind that compares columns, ``Int.above``, says False and leaves it to ``check``,
except within ``Rows``, which compares them itself); when it says False, the decoder calls
``check``, which raises with the reason (or accepts, so ``fits`` may be stricter, never
laxer: ``tests/unit/test_messages.py`` compares the two on fuzzed values).
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

    def fits(self):
        lo, hi, choices = self.lo, self.hi, self.choices
        if self.above is not None:
            return lambda v: False  # needs its row: ``check`` (or ``Rows.fits``) decides
        if choices is not None:
            return lambda v: type(v) is int and lo <= v <= hi and v in choices
        return lambda v: type(v) is int and lo <= v <= hi

    def doc(self):
        if self.choices:
            return "int in " + "/".join(map(str, self.choices))
        return "int" if (self.lo, self.hi) == (0, MAX_INT) else f"int {self.lo}..{self.hi}"


@dataclass(frozen=True)
class Str:
    def check(self, v, name, row=None):
        if type(v) is not str or len(v) > MAX_STR:
            _fail(f"field {name!r} must be a str of at most {MAX_STR} chars")

    def fits(self):
        return lambda v: type(v) is str and len(v) <= MAX_STR

    def doc(self):
        return "str"


@dataclass(frozen=True)
class Id:
    def check(self, v, name, row=None):
        if type(v) is not bytes or len(v) != ID_LEN:
            _fail(f"field {name!r} must be {ID_LEN} bytes")

    def fits(self):
        return lambda v: type(v) is bytes and len(v) == ID_LEN

    def doc(self):
        return "peer id"


@dataclass(frozen=True)
class Text:
    """A longer str (a status report), at most ``max_len`` characters."""
    max_len: int = 32 * 1024

    def check(self, v, name, row=None):
        if type(v) is not str or len(v) > self.max_len:
            _fail(f"field {name!r} must be a str of at most {self.max_len} chars")

    def fits(self):
        max_len = self.max_len
        return lambda v: type(v) is str and len(v) <= max_len

    def doc(self):
        return f"text (<= {self.max_len})"


@dataclass(frozen=True)
class Bool:
    def check(self, v, name, row=None):
        if type(v) is not bool:
            _fail(f"field {name!r} must be a bool")

    def fits(self):
        return lambda v: type(v) is bool

    def doc(self):
        return "bool"


@dataclass(frozen=True)
class Blob:
    max_len: int = MAX_BLOB

    def check(self, v, name, row=None):
        if type(v) is not bytes or len(v) > self.max_len:
            _fail(f"field {name!r} must be at most {self.max_len} bytes")

    def fits(self):
        max_len = self.max_len
        return lambda v: type(v) is bytes and len(v) <= max_len

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

    def fits(self):
        """Every row a list of the right width whose columns fit, ``Int.above`` compared
        here (the column it names comes first and fits, so both are ints)."""
        columns = self.columns
        width = len(columns)
        index = {col: i for i, (col, _) in enumerate(columns)}
        preds, crosses = [], []
        for i, (_, kind) in enumerate(columns):
            above = getattr(kind, "above", None)
            if above is None:
                preds.append(kind.fits())
            elif index.get(above, width) < i:
                preds.append(Int(kind.lo, kind.hi, None, kind.choices).fits())
                crosses.append((i, index[above]))
            else:  # compared with a later column or none: leave it to ``check``
                return lambda v: False

        def fits(v):
            if type(v) is not list or len(v) > MAX_LIST:
                return False
            for r in v:
                if type(r) is not list or len(r) != width:
                    return False
                for p, x in zip(preds, r):
                    if not p(x):
                        return False
                for i, j in crosses:
                    if r[i] <= r[j]:
                        return False
            return True
        return fits

    def doc(self):
        return "[[" + ", ".join(c for c, _ in self.columns) + "], ...]"


def f(kind, **default) -> Any:
    """Declare a header field and its kind (and, optionally, its default)."""
    return field(metadata={"kind": kind}, **default)
