"""Plugging p2pscoop into optional libraries, as soon as the program imports them.

    import p2pscoop
    import joblib                       # p2pscoop.joblib runs now: backend "p2pscoop" exists
    with joblib.parallel_backend("p2pscoop"): ...

What it owns: the table ``INTEGRATIONS`` (library module -> our module that registers with
it) and one ``sys.meta_path`` finder that runs our module right after the library's first
import. ``import p2pscoop`` calls ``install()``; it imports none of these libraries itself
(joblib alone costs more to import than all of p2pscoop), so a program that never uses them
pays nothing.

Invariants: a library already imported when ``install()`` runs is integrated at once; one
imported later is integrated right after its module finished executing, before its importer
gets it back, once (a ``find_spec`` look-up without an import changes nothing). An integration that fails never breaks the library's import: it becomes a
``RuntimeWarning`` naming the cause. The finder only wraps the loader of the named modules;
it finds nothing itself (the other finders do), and leaves ``sys.meta_path`` once every
library of the table was seen.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import warnings

__all__ = ["INTEGRATIONS", "install"]

#: library module -> our module that registers p2pscoop with it (on its import)
INTEGRATIONS = {"joblib": "p2pscoop.joblib"}

_lock = threading.Lock()
_waiting: set[str] = set()  # libraries not imported yet, whose import we watch


def _integrate(library: str) -> None:
    ours = INTEGRATIONS[library]
    try:
        importlib.import_module(ours)
    except Exception as exc:  # never break the user's import of the library
        warnings.warn(f"p2pscoop could not register with {library} ({ours}: "
                      f"{type(exc).__name__}: {exc})", RuntimeWarning, stacklevel=2)


class _LoaderThenIntegrate(importlib.abc.Loader):
    """The library's own loader, then our integration module."""

    def __init__(self, loader, library: str):
        self._loader = loader
        self._library = library

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        with _lock:
            if self._library not in _waiting:
                return  # integrated already (the module was executed twice: a reload)
            _waiting.discard(self._library)
            if not _waiting and _finder in sys.meta_path:
                sys.meta_path.remove(_finder)
        _integrate(self._library)

    def __getattr__(self, name):  # get_resource_reader, is_package, ...: the library's
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    """Watches the first import of each library of ``_waiting``."""

    def find_spec(self, fullname, path, target=None):
        # A spec found without an import (importlib.util.find_spec) is never executed: the
        # library stays watched until its module actually runs (_LoaderThenIntegrate).
        if fullname not in _waiting:
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderThenIntegrate(spec.loader, fullname)
                return spec
        return None  # not installed: the import fails as it would have


_finder = _Finder()


def install() -> None:
    """Integrate the libraries already imported; watch the import of the others."""
    now = []
    with _lock:
        for library in INTEGRATIONS:
            if library in sys.modules:
                now.append(library)
            else:
                _waiting.add(library)
        if _waiting and _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
    for library in now:
        _integrate(library)
