"""The one audited place where p2pscoop unpickles user objects, and pickles them (``pickler.py``).

Nothing else in the package calls ``pickle.loads`` or ``cloudpickle.loads``. What crosses the
wire here is a task's function and arguments (``dumps_work``/``loads_work``), a result or an
exception envelope (``dumps_result``/``loads_result``) and shared constants. Each is unpickled
only by the peer that runs the task or by the owner of the future, and only for a message
from a peer that completed the HELLO handshake (the comm layer drops all others before they
get here).

Failures never escape as crashes:

* ``check_submittable`` raises ``PayloadError`` at ``submit`` time if the function or an
  argument cannot travel (an argument of an atomic type costs a type test, no pickling;
  a function, or an argument object that allows weak references, is checked the first time
  it is submitted only),
  and ``check_args`` at ``map`` time for an element; a unit that then fails to pickle
  anyway (an argument changed since) stays on its peer and runs there;
* a work that cannot be decoded becomes a work whose units all fail with ``PayloadError``;
* a result that cannot be pickled becomes a ``PayloadError`` result, and one that cannot be
  unpickled becomes a ``PayloadError`` on the owner's future.

Which reducer wins, and how code travels by value: ``pickler.py``.

Exceptions travel as an envelope ``(exception or None, type name, message, traceback text)``;
the owner re-raises the same type with the remote traceback chained as ``__cause__``, or a
``RemoteError`` when the exception itself could not travel.
"""

from __future__ import annotations

import io
import os
import pickle
import socket
import sys
import threading
import traceback
import weakref
from typing import Any

import cloudpickle

from ..core.deque import Work
from .pieces import Chunked
from ..core.errors import NeedsImport, PayloadError, RemoteError
from ..core.messages import FAILED, OK, RAISED
from .pickler import PROTOCOL, Pickler, dumps  # noqa: F401  (PROTOCOL: the handshake)

MAX_TEXT = 10_000  # characters of remote traceback and message kept

#: argument types that always pickle: submit skips the check for them
_ATOMIC = frozenset((int, float, complex, str, bytes, bool, type(None), range, slice))


class _Sink(io.RawIOBase):
    """A file that forgets what is written: pickling into it only checks picklability."""

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        return len(b)


_checked_callables: dict[int, Any] = {}  # id -> the callable itself (keeps the id valid)


def _describe(obj: Any) -> str:
    text = repr(obj)
    return text if len(text) <= 80 else text[:77] + "..."


def _try_pickle(obj: Any) -> None:
    # Protocol 5 with a buffer callback that keeps buffers out of band: large arrays are
    # checked without being copied.
    Pickler(_Sink(), protocol=5, buffer_callback=lambda b: False).dump(obj)


def check_submittable(fn: Any, args: tuple, kwargs: dict) -> None:
    """Raise ``PayloadError`` if ``fn``, ``args`` or ``kwargs`` could not travel to a peer."""
    check_callable(fn)
    check_args(args, kwargs)


def check_callable(fn: Any) -> None:
    """Raise ``TypeError`` if ``fn`` is not callable, ``PayloadError`` if it could not
    travel to a peer (checked once per function object: the answer is cached)."""
    if not callable(fn):
        raise TypeError(f"submit() needs a callable, got {_describe(fn)}")
    if _checked_callables.get(id(fn)) is not fn:
        try:
            _try_pickle(fn)
        except Exception as exc:
            raise PayloadError(f"the function {_describe(fn)} cannot be pickled, so no peer "
                               f"could run it: {type(exc).__name__}: {exc}") from exc
        trust_callable(fn)


def trust_callable(fn: Any) -> None:
    """Remember ``fn`` as one that pickles (the bounded cache ``check_callable`` reads):
    after a check, or when ``fn`` was unpickled from a GIVE (each GIVE of a by-value
    function brings a new function object, and a stolen unit that submits it cost its
    thief a cloudpickle run on the main thread, 50-100 us)."""
    if len(_checked_callables) > 4096:
        _checked_callables.clear()
    _checked_callables[id(fn)] = fn


def check_args(args: tuple, kwargs: dict | None = None) -> None:
    """Raise ``PayloadError`` if an argument could not be pickled (atomic types, and tuples,
    lists and sets of them, skip)."""
    for value in args:
        if type(value) not in _ATOMIC:
            ref = _checked_args.get(id(value))  # (``_check_value``'s cache, without a call:
            if ref is None or ref() is not value:  # a recursion's context object)
                _check_value(value, "argument")
    if kwargs:
        for name, value in kwargs.items():
            if type(value) not in _ATOMIC:
                _check_value(value, f"keyword argument {name!r}")


#: id -> weak reference of an argument that pickled (objects that support weak references
#: only: a cache must not keep a large argument alive). A recursive program passes the same
#: context object to every call; checking it once saves a cloudpickle run per submit (~7 µs).
#: Like a function's (``_checked_callables``), the verdict is not re-checked if the object
#: changes afterwards; a unit that fails to pickle later stays on its peer and runs there.
_checked_args: dict[int, Any] = {}


#: containers whose elements, if all of atomic types, make them pickle for sure
_SCANNED = frozenset((tuple, list, set, frozenset))
_all_atomic = _ATOMIC.issuperset  # (of an iterable of types: stops at the first other one)


class _NotPlain(Exception):
    """Raised by ``_PlainCheck``: an object that is not of a plain type."""


class _PlainCheck(pickle.Pickler):
    """The C pickler, checking only that an object is made of plain values: exact
    instances of the builtin atomic types and containers (``None``, ``bool``, ``int``,
    ``float``, ``bytes``, ``str``, ``tuple``, ``list``, ``dict``, ``set``, ``frozenset``,
    which the C pickler saves without calling ``reducer_override``) and the rest of
    ``_ATOMIC``; anything else raises ``_NotPlain`` at once. Such an object pickles for sure,
    with any pickler (cloudpickle's too)."""

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t in _ATOMIC or (t is type and obj in _ATOMIC):  # complex, range, slice, and
            return NotImplemented                            # their classes (by name)
        raise _NotPlain


def plain_chunk(chunk: list) -> bool:
    """Does every argument tuple of a map's ``chunk`` hold only plain values (atomic values
    and builtin containers of them, at any depth: ``_PlainCheck``)? Then the chunk travels
    and needs no check per element: one run of the C pickler over the lot, writing nowhere,
    without a memo (about 20 ns per element of one int, 45 of a job tuple of 3 atomic
    values). False for anything else, and for what the pickler refuses (a cyclic or very
    deep structure): the caller then checks element by element (``check_args``)."""
    return plain_pickle(chunk, False) is not None


def plain_pickle(chunk: list, keep: bool = True) -> bytes | None:
    """``plain_chunk``'s check, keeping what it writes: the pickle of ``chunk`` (C pickler,
    no memo: shared parts travel as copies), or None if ``chunk`` is not plain. A map keeps
    it with its units (``pieces.Chunked``), so a unit given to a thief is not pickled again
    on the comm thread (``dumps_work``). ``keep`` False: written nowhere (b"" if plain)."""
    buf = io.BytesIO() if keep else _Sink()
    checker = _PlainCheck(buf, PROTOCOL)
    checker.fast = True  # no memo: plain values need none, and cycles raise
    try:
        checker.dump(chunk)
    except (_NotPlain, ValueError, RecursionError, pickle.PicklingError):
        return None
    return buf.getvalue() if keep else b""


def _check_value(value: Any, what: str) -> None:
    if type(value) in _SCANNED and _all_atomic(map(type, value)):
        return  # a map's job tuple, a list of bytes...: 0.15 µs for 2, 1.1 µs for 57 items,
        # where a cloudpickle run takes 2 and 3.3 µs (and a generator scan 0.44 and 1.8)
    ref = _checked_args.get(id(value))
    if ref is not None and ref() is value:
        return
    try:
        _try_pickle(value)
    except Exception as exc:
        raise PayloadError(f"the {what} {_describe(value)} cannot be pickled, so no peer "
                           f"could run this task: {type(exc).__name__}: {exc}") from exc
    try:
        ref = weakref.ref(value)
    except TypeError:  # lists, dicts, tuples...: checked each time
        return
    if len(_checked_args) > 4096:
        _checked_args.clear()
    _checked_args[id(value)] = ref


_by_value_roots: list[str] = []
_by_value_seen = 0  # len(sys.modules) at the last scan, set once that scan ended
_by_value_lock = threading.Lock()  # one scan at a time; a caller waits for the running one


def travel_by_value(root: str) -> None:
    """Modules loaded from under ``root`` (the program's directory, not site-packages)
    travel by value, so a host without the program's files can run its tasks."""
    root = os.path.abspath(root)
    if root not in _by_value_roots:
        _by_value_roots.append(root)


def _register_local_modules() -> None:
    """Register the program's modules (under ``_by_value_roots``) with cloudpickle if any
    were imported since the last scan. A thread that comes mid-scan waits for its end."""
    global _by_value_seen
    if len(sys.modules) == _by_value_seen:
        return
    with _by_value_lock:
        count = len(sys.modules)
        if count == _by_value_seen:  # (scanned by the thread this one waited for)
            return
        for name, module in list(sys.modules.items()):
            path = getattr(module, "__file__", None)
            if (not path or name == "__main__" or "site-packages" in path
                    or name.startswith("p2pscoop")):
                continue
            path = os.path.abspath(path)
            if any(path.startswith(root + os.sep) for root in _by_value_roots):
                try:
                    cloudpickle.register_pickle_by_value(module)
                except (ValueError, TypeError):
                    pass
        _by_value_seen = count


def dumps_work(work: Work) -> bytes:
    """The payload of a work item leaving this peer: function, its args slice, kwargs. A
    map's plain arguments go as the pickles of their chunks (``pieces.Chunked``), made
    when the map read them: ``(skip, count, [chunk pickles])`` in place of the list."""
    if _by_value_roots:
        _register_local_modules()
    items, lo, hi = work.items, work.lo - work.base, work.hi - work.base
    got = items.pickled(lo, hi) if type(items) is Chunked else None
    return dumps((work.fn, items[lo:hi] if got is None else got, work.kwargs, work.error))


def _unchunk(spec: tuple, importing: bool) -> list:
    """The argument tuples of ``dumps_work``'s ``(skip, count, [chunk pickles])``."""
    skip, count, parts = spec
    items: list = []
    for part in parts:
        items += _safe_loads(part, importing)
    return items[skip:skip + count]


class _ImportedOnly(pickle.Unpickler):
    """An unpickler that resolves globals of modules imported already, and raises
    ``NeedsImport`` for any other (a few microseconds more than ``pickle.loads``). A module
    still being imported (by another thread) counts as not imported: resolving a name in it
    would wait for that import to end."""

    def find_class(self, module: str, name: str) -> Any:
        mod = sys.modules.get(module)
        if mod is None or getattr(getattr(mod, "__spec__", None), "_initializing", False):
            raise NeedsImport(module)
        return super().find_class(module, name)


def _safe_loads(data: bytes, importing: bool = True) -> Any:
    """``pickle.loads`` that turns *any* failure, even ``SystemExit`` or
    ``KeyboardInterrupt`` raised by a hostile ``__reduce__``, into ``PayloadError``;
    ``importing=False``: ``NeedsImport`` (not a failure) if a module must be imported."""
    try:
        if importing:
            return pickle.loads(data)
        return _ImportedOnly(io.BytesIO(data)).load()
    except NeedsImport:
        raise
    except BaseException as exc:
        raise PayloadError(f"{type(exc).__name__}: {exc}") from None


def loads_work(owner: bytes, job: int, lo: int, hi: int, payload: bytes,
               importing: bool = True) -> Work:
    """Rebuild a stolen work item; a payload that cannot be decoded fails its units.
    ``importing=False`` (the comm thread): ``NeedsImport`` if a module must be imported."""
    try:
        fn, items, kwargs, error = _safe_loads(payload, importing)
        if type(items) is tuple:  # a map's chunk pickles (``dumps_work``)
            items = _unchunk(items, importing)
        if len(items) != hi - lo:
            raise PayloadError(f"{len(items)} argument tuples for {hi - lo} units")
        return Work(owner, job, lo, hi, fn, items, lo, kwargs, error)
    except NeedsImport:
        raise
    except Exception as exc:
        err = PayloadError(f"the task could not be unpickled on host "
                           f"{socket.gethostname()} (pid {os.getpid()}): {exc}")
        return Work(owner, job, lo, hi, None, None, lo, None, err)


def dumps_deferred(fn: Any) -> bytes:
    """A callable pickled now, to travel as plain bytes inside a task (``call_deferred``):
    the comm thread that receives the task then unpickles bytes only, and the callable is
    unpickled by the task itself, on the peer's main thread. For payloads whose unpickling
    imports heavy modules (a joblib batch imports scikit-learn: seconds on a loaded host,
    during which a comm thread would send no heartbeat)."""
    if _by_value_roots:
        _register_local_modules()
    return dumps(fn)


def call_deferred(data: bytes) -> Any:
    """The task of ``dumps_deferred``: unpickle the callable here, then call it."""
    return _safe_loads(data)()


def envelope(exc: BaseException) -> tuple:
    """What a raised exception becomes before it travels to the owner: its type name,
    message and traceback text, which always travel, and the exception itself."""
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (exc, f"{type(exc).__module__}.{type(exc).__qualname__}",
            str(exc)[:MAX_TEXT], tb[-MAX_TEXT:])


def dumps_result(status: int, value: Any) -> tuple[int, bytes]:
    """Pickle a result for its owner. Never raises: failures become a FAILED result.

    An exception travels as ``(pickled exception or None, type name, message, traceback)``:
    the inner pickle is separate so that an exception that pickles but cannot be unpickled
    still arrives with its type, message and traceback (as ``RemoteError``).
    """
    try:
        if status == RAISED:
            exc, type_name, message, tb = value
            try:
                inner = dumps(exc)
            except Exception:
                inner = None
            return status, pickle.dumps((inner, type_name, message, tb), protocol=PROTOCOL)
        if type(value) in _ATOMIC:  # plain pickle makes the same bytes, many times faster
            return status, pickle.dumps(value, protocol=PROTOCOL)
        return status, dumps(value)
    except Exception as exc:
        err = PayloadError(f"the task's result {_describe(value)} cannot be pickled to "
                           f"send it to its owner: {type(exc).__name__}: {exc}")
        return FAILED, pickle.dumps(err, protocol=PROTOCOL)


class RemoteTraceback(Exception):
    """Holds the formatted traceback of a task that raised on another peer."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return "\n\n" + self.text.rstrip() + "\n\n(the traceback above happened on another peer)"


def rebuild_exception(env: tuple) -> BaseException:
    """The owner's side of ``envelope``: the same exception with the remote traceback as
    its ``__cause__``, or ``RemoteError`` if the exception itself cannot be rebuilt."""
    inner, type_name, message, tb = env
    exc = None
    if inner is not None:
        try:
            exc = _safe_loads(inner)
        except PayloadError:
            exc = None
    if not isinstance(exc, BaseException):
        return RemoteError(str(type_name), str(message), str(tb))
    exc.__cause__ = RemoteTraceback(str(tb))
    return exc


def loads_result(status: int, payload: bytes) -> tuple[bool, Any]:
    """Decode a result from a peer: ``(True, value)`` or ``(False, exception)``."""
    try:
        value = _safe_loads(payload)
    except PayloadError as exc:
        return False, PayloadError(f"the task's result could not be unpickled here: {exc}")
    if status == OK:
        return True, value
    if status == RAISED:
        try:
            return False, rebuild_exception(value)
        except Exception as exc:  # a malformed envelope
            return False, PayloadError(f"malformed exception envelope: {exc}")
    if isinstance(value, BaseException):
        return False, value
    return False, PayloadError(f"malformed failure payload: {_describe(value)}")


def dumps_values(values: list) -> bytes | None:
    """The values of a range of a map's units run in one loop (``runtime/ranges.py``),
    pickled as ``dumps_result`` pickles one value (plain pickle when all are atomic); None
    if they do not pickle (the caller then sends them one by one, each failure reported)."""
    try:
        if _all_atomic(map(type, values)):
            return pickle.dumps(values, protocol=PROTOCOL)
        return dumps(values)
    except Exception:
        return None


def loads_values(data: bytes, count: int) -> tuple[list | None, PayloadError | None]:
    """The owner's side of ``dumps_values``: ``(values, None)``, the ``count`` values; or
    ``(None, error)`` for a payload that cannot be unpickled or holds another number of
    values (the error of every one of them)."""
    try:
        values = _safe_loads(data)
        if type(values) is not list or len(values) != count:
            raise PayloadError(f"a range of {count} results holds "
                               f"{len(values) if type(values) is list else 'no list'}")
    except PayloadError as exc:
        return None, PayloadError(f"the tasks' results could not be unpickled here: {exc}")
    return values, None


def dumps_const(value: Any) -> bytes:
    try:
        return dumps(value)
    except Exception as exc:
        raise PayloadError(f"the constant {_describe(value)} cannot be pickled: "
                           f"{type(exc).__name__}: {exc}") from exc


def loads_const(payload: bytes) -> Any:
    """Decode a shared constant; raises ``PayloadError`` whatever goes wrong."""
    return _safe_loads(payload)
