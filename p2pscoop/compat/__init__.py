"""``import scoop`` inside p2pscoop runs: SCOOP's module names, served by p2pscoop.

``install()`` runs on every peer before the user's program is imported or run: the launcher
calls it before running the program as ``__main__`` (``launch/program.py``), and every worker
before it imports the program (``runtime/worker.py``: local, cluster-node and SSH-started
workers all start there). From then on, in that process:

    scoop             ->  p2pscoop.compat.scoop   SCOOP's globals (IS_RUNNING, SIZE, ... live)
    scoop.futures     ->  p2pscoop.futures
    scoop.shared      ->  p2pscoop.shared
    scoop._types      ->  p2pscoop.compat.types   Future, CancelledError, CallbackType, ...
    scoop.fallbacks   ->  p2pscoop.compat.types   NotStartedProperly

The names are entries of ``sys.modules`` (the import system looks there first), and a finder
placed first on ``sys.meta_path`` serves them again if a program removes one, and answers
any other ``scoop.*`` name (SCOOP's internals: ``scoop.utils``, ``scoop._control`` ...) with a
``ModuleNotFoundError`` that says what p2pscoop provides.

Nothing is installed in site-packages, so a Python process that p2pscoop did not start
(``python -c "import scoop"``) gets the real SCOOP if it is installed. Inside a run ours wins:
modules of a real SCOOP already imported in the process are dropped from ``sys.modules``.

Invariants: the served modules keep their own names (``scoop.futures.__name__`` is
``"p2pscoop.futures"``), so whatever pickles a reference to them (a function of the program
that uses ``scoop.futures`` travels by value, its module globals by reference) names a
p2pscoop module that every peer can import, with or without this alias. ``install`` is
idempotent; ``uninstall`` removes exactly what ``install`` added.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import logging
import os
import sys
from types import ModuleType

__all__ = ["ALIASES", "install", "uninstall", "installed"]

LOGGER = logging.getLogger("p2pscoop.compat")

#: SCOOP's module name -> the p2pscoop module that stands for it
ALIASES = {
    "scoop": "p2pscoop.compat.scoop",
    "scoop.futures": "p2pscoop.futures",
    "scoop.shared": "p2pscoop.shared",
    "scoop._types": "p2pscoop.compat.types",
    "scoop.fallbacks": "p2pscoop.compat.types",
}


class _AliasLoader(importlib.abc.Loader):
    """Hands out an already imported module under another name, leaving its own
    ``__spec__`` (the import system overwrites it while loading) as it was."""

    def __init__(self, target: str):
        self.target = target
        self._spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        if self._spec is not None:
            module.__spec__ = self._spec


class ScoopFinder(importlib.abc.MetaPathFinder):
    """First on ``sys.meta_path`` while installed: serves ``ALIASES`` and refuses the rest of
    the ``scoop`` package by name, so a real SCOOP never mixes into a p2pscoop run."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != "scoop" and not fullname.startswith("scoop."):
            return None
        target_name = ALIASES.get(fullname)
        if target_name is None:
            served = ", ".join(sorted(ALIASES))
            raise ModuleNotFoundError(
                f"No module named {fullname!r}: inside a p2pscoop run, `import scoop` is "
                f"p2pscoop, which provides {served} (SCOOP's internal modules have no "
                f"counterpart; see docs/scoop-compat.md)", name=fullname)
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(target_name))


_finder: ScoopFinder | None = None


def installed() -> bool:
    """True if ``install`` has run in this process (and ``uninstall`` has not)."""
    return _finder is not None


def install(main: str = "", broker: str = "") -> None:
    """Make ``import scoop`` and its submodules resolve to p2pscoop in this process.

    ``main``: the program's path (``scoop.MAIN_MODULE``); ``broker``: the address of the
    run's origin peer (``scoop.BROKER``; p2pscoop has no broker). Call it before the
    program is imported; calling it again only updates those two values.
    """
    global _finder
    from . import scoop as shim

    shim._configure(main=main, broker=broker, cwd=os.getcwd())
    if _finder is not None:
        return
    stale = [name for name, module in sys.modules.items()
             if (name == "scoop" or name.startswith("scoop."))
             and getattr(module, "__name__", "").split(".")[0] != "p2pscoop"]
    for name in stale:  # a real SCOOP imported before the run (a sitecustomize, say)
        del sys.modules[name]
    if stale:
        LOGGER.debug("dropped the real SCOOP's modules %s: p2pscoop serves `scoop` here",
                     ", ".join(sorted(stale)))
    for name, target in ALIASES.items():
        sys.modules[name] = importlib.import_module(target)
    _finder = ScoopFinder()
    sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo ``install``: ``import scoop`` finds whatever it found before (if anything)."""
    global _finder
    if _finder is None:
        return
    try:
        sys.meta_path.remove(_finder)
    except ValueError:
        pass
    _finder = None
    for name, target in ALIASES.items():
        if sys.modules.get(name) is sys.modules.get(target):
            del sys.modules[name]
