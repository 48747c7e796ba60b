"""The module a SCOOP program gets for ``import scoop`` inside a p2pscoop run.

It holds SCOOP 0.7's module globals (``docs/scoop-compat.md`` maps each one); the submodules
``futures`` and ``shared`` are p2pscoop's own. ``compat.install`` puts this module in
``sys.modules["scoop"]``; nothing else imports it.

Live attributes are read on every access, so they are right at any moment, including while a
worker imports the program (``runtime/importing.py``):

    IS_RUNNING, IS_ORIGIN, SIZE, worker   p2pscoop's values (``p2pscoop.__getattr__``)

Fixed or set by ``compat.install`` on each peer:

    __version__, __revision__   "0.7", "2.0": the SCOOP API this module stands for
    DEBUG                       False (SCOOP's --debug stats files do not exist here)
    BROKER                      BrokerInfo of the run's origin peer (there is no broker);
                                None outside a run
    logger                      the ``p2pscoop.scoop`` logger: stderr, level from -v/-q
    MAIN_MODULE                 the program's path ("" when no program was given)
    WORKING_DIRECTORY           the peer's working directory when the run started
    CONFIGURATION               {"headless": False, "backend": "ZMQ"}
    SHUTDOWN_REQUESTED          False (the origin ends the run; nobody reads this)
    TIME_BETWEEN_PARTIALDEBUG, TIME_BETWEEN_STATUS_REPORTS, TIME_BETWEEN_STATUS_PRUNING
                                SCOOP's constants (30, 25, 60 s); p2pscoop uses none of them

Invariant: assigning any of these (SCOOP's test programs write ``scoop.DEBUG = False``) is
allowed and affects only this module; p2pscoop's behaviour never depends on them.
"""

from __future__ import annotations

import logging
from collections import namedtuple
from typing import Any

import p2pscoop
from p2pscoop import futures, shared  # noqa: F401  (scoop.futures, scoop.shared)

from . import types as _types  # noqa: F401  (scoop._types)
from . import types as fallbacks  # noqa: F401  (scoop.fallbacks)

#: a package's ``__path__``, empty: ``import scoop.<internal>`` asks ``compat.ScoopFinder``,
#: which names what p2pscoop provides instead of a bare "not a package"
__path__: list[str] = []

__version__ = "0.7"
__revision__ = "2.0"

BrokerInfo = namedtuple("BrokerInfo", "hostname task_port info_port externalHostname")

DEBUG = False
BROKER: BrokerInfo | None = None
logger = logging.getLogger("p2pscoop.scoop")
MAIN_MODULE = ""
WORKING_DIRECTORY = ""
CONFIGURATION: dict[str, Any] = {"headless": False, "backend": "ZMQ"}
SHUTDOWN_REQUESTED = False
TIME_BETWEEN_PARTIALDEBUG = 30
TIME_BETWEEN_STATUS_REPORTS = 25
TIME_BETWEEN_STATUS_PRUNING = 60

_LIVE = ("IS_RUNNING", "IS_ORIGIN", "SIZE", "worker")


def broker_info(address: str) -> BrokerInfo | None:
    """``BrokerInfo`` for a peer address ``tcp://host:port`` (None for an empty address)."""
    if not address:
        return None
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        return BrokerInfo(hostport, 0, 0, hostport)
    return BrokerInfo(host, number, number, host)


def _configure(main: str, broker: str, cwd: str) -> None:
    """Set the per-run values (``compat.install`` only)."""
    global MAIN_MODULE, BROKER, WORKING_DIRECTORY
    if main:
        MAIN_MODULE = main
    if broker:
        BROKER = broker_info(broker)
    if not WORKING_DIRECTORY:
        WORKING_DIRECTORY = cwd


def __getattr__(name: str) -> Any:
    if name in _LIVE:
        return getattr(p2pscoop, name)
    raise AttributeError(f"module 'scoop' (p2pscoop's SCOOP compatibility) has no attribute "
                         f"{name!r}; see docs/scoop-compat.md for what it provides")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LIVE))
