"""What stands for SCOOP's ``scoop._types`` and ``scoop.fallbacks`` inside a p2pscoop run.

SCOOP programs import a few names from these internal modules to annotate, test or catch:

    scoop._types.Future           p2pscoop's Future (``runtime/future.py``)
    scoop._types.CancelledError   concurrent.futures.CancelledError (SCOOP had its own class;
    scoop._types.TimeoutError     concurrent.futures.TimeoutError   these are what we raise)
    scoop._types.CallbackType     SCOOP's enum, for imports only: ``add_done_callback`` takes
                                  the standard one argument (callbacks always run in the
                                  submitting process, SCOOP's ``standard`` type)
    scoop.fallbacks.NotStartedProperly
                                  defined so ``except`` clauses keep working; p2pscoop never
                                  raises it (without a runtime every call runs serially)

Nothing else of SCOOP's internals exists here (``compat.ScoopFinder`` says so by name).
"""

from __future__ import annotations

import enum
from concurrent.futures import CancelledError, TimeoutError

from ..runtime.future import Future

__all__ = ["Future", "CancelledError", "TimeoutError", "CallbackType", "NotStartedProperly"]


class CallbackType(enum.Enum):
    """SCOOP's callback kinds; p2pscoop runs every callback in the submitting process."""

    standard = "standard"
    universal = "universal"


class NotStartedProperly(Exception):
    """SCOOP raised this when a program used the API without ``-m scoop``. p2pscoop never
    does: without a runtime the API runs tasks serially in the calling process."""
