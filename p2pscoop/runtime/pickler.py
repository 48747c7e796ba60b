"""``Pickler``: how every payload leaving a peer is pickled (``payload.py`` is the one module
that calls it and that unpickles).

Which reducer wins (``Pickler``): a library's own way of pickling always does, by-value
pickling is only for what plain ``pickle`` cannot do. In order, for an object of type ``t``:

1. lists, tuples, dicts, sets: as plain pickle does (it ignores ``copyreg`` for them too);
2. a ``copyreg.dispatch_table`` entry for ``t`` (for a class: for its metaclass), as plain
   pickle does. DEAP registers one for the classes its ``creator`` makes, and re-creates and
   rebinds the class at each unpickling. cloudpickle alone honours the entry only while the
   class is reachable by name; once an individual has come back (the class rebound), it ships
   the older class by value, which DEAP's metaclass cannot rebuild (``TypeError: metaclass
   conflict``). Here the entry always wins;
3. a class that cloudpickle would ship by value (not reachable by its module and name) but
   whose metaclass defines its own ``__reduce_ex__``/``__reduce__``: that reducer;
4. cloudpickle's rules: functions and classes of ``__main__`` and of the program's modules
   (``travel_by_value``) by value, everything else by reference; any other object by its own
   ``__reduce_ex__``/``__reduce__``, as plain pickle does.

By-value code keeps its file name (``_code_reduce``): cloudpickle writes ``<dynamic-code>``
instead, and a traceback of a program's task that raised on another peer then named no file
and showed no source line.
"""

from __future__ import annotations

import collections
import copyreg
import io
import pickle
import types
from typing import Any

import cloudpickle

PROTOCOL = pickle.HIGHEST_PROTOCOL

#: containers plain pickle saves itself, before looking at copyreg: the fast path
_PLAIN = frozenset((list, tuple, dict, set, frozenset))
_registered = copyreg.dispatch_table  # the live dict: later registrations count
_own_reducer: dict[type, Any] = {}  # metaclass -> _metaclass_reducer(metaclass)


def _metaclass_reducer(meta: type) -> Any:
    """``f(cls, protocol)`` calling the ``__reduce_ex__`` or ``__reduce__`` that ``meta`` (a
    metaclass) or a base of it other than ``type`` defines, or None if none does.

    They are looked up on the metaclass: ``cls.__reduce__`` would be the method of ``cls``'s
    instances."""
    try:
        return _own_reducer[meta]
    except KeyError:
        pass
    own = None
    mine = [klass for klass in meta.__mro__ if klass is not type and klass is not object]
    if any("__reduce_ex__" in vars(klass) for klass in mine):
        own = meta.__reduce_ex__
    elif any("__reduce__" in vars(klass) for klass in mine):
        reduce = meta.__reduce__
        own = lambda cls, protocol: reduce(cls)  # noqa: E731
    _own_reducer[meta] = own
    return own


_cloudpickle_override = cloudpickle.CloudPickler.reducer_override
_cloudpickle_tables = getattr(cloudpickle.CloudPickler, "_dispatch_table", {})
_cloudpickle_code = _cloudpickle_tables.get(types.CodeType)


def _code_reduce(code: types.CodeType) -> tuple:
    """cloudpickle's reduction of a code object, its file name kept. cloudpickle writes
    ``<dynamic-code>`` in its place, so a task of the program (by value) that raised on
    another peer named no file and showed no source line in its traceback."""
    rebuild, args = _cloudpickle_code(code)
    try:
        at = args.index("<dynamic-code>")  # (its file name's place: by value, not by index,
    except ValueError:                     # which changes between Python versions)
        return rebuild, args
    return rebuild, args[:at] + (code.co_filename,) + args[at + 1:]


class Pickler(cloudpickle.CloudPickler):
    """cloudpickle's pickler where the libraries' reducers win (see the module docstring),
    and by-value code keeps its file name (``_code_reduce``)."""

    if _cloudpickle_code is not None:  # (a private table of cloudpickle: used if there)
        dispatch_table = collections.ChainMap({types.CodeType: _code_reduce},
                                              cloudpickle.CloudPickler.dispatch_table)

    def reducer_override(self, obj: Any) -> Any:
        t = type(obj)
        if t in _PLAIN:
            return NotImplemented
        reduce = _registered.get(t)
        if reduce is not None:
            return reduce(obj)
        rv = _cloudpickle_override(self, obj)
        if rv is not NotImplemented and t is not type and isinstance(obj, type):
            # cloudpickle would ship this class by value: its metaclass may know better
            own = _metaclass_reducer(t)
            if own is not None:
                return own(obj, self.proto)
        return rv


def dumps(obj: Any) -> bytes:
    """``obj`` pickled with ``Pickler``: how every payload leaving this peer is made."""
    buf = io.BytesIO()
    Pickler(buf, protocol=PROTOCOL).dump(obj)
    return buf.getvalue()
