"""joblib on p2pscoop peers: the ``"p2pscoop"`` backend for ``joblib.Parallel``.

    import joblib, p2pscoop.joblib          # importing p2pscoop first is enough too
    with joblib.parallel_backend("p2pscoop"):
        joblib.Parallel(n_jobs=-1)(joblib.delayed(f)(x) for x in xs)
        GridSearchCV(model, grid, n_jobs=-1).fit(X, y)   # scikit-learn's n_jobs too

What it owns: the backend class, its registration with joblib under the name ``p2pscoop``,
the local peers it starts itself when no runtime runs (``_own``), and the per-greenlet
storage of joblib's active configuration (``_GreenletLocal``).

Where the work runs:

* under ``python -m p2pscoop`` or inside ``with p2pscoop.start():`` / ``p2pscoop.Executor``:
  on the running peers, which it never stops;
* in a plain process with no runtime: on ``n`` local peers it starts on first use (the
  backend argument ``n``, else ``n_jobs`` if positive, else one per core) through a
  ``p2pscoop.Executor``, kept for later calls and stopped at exit or by ``shutdown()``.

Invariants:

* Each joblib batch is one p2pscoop task (joblib's auto-batching sizes batches), pickled
  inside the task and unpickled by it (``payload.dumps_deferred``), so the peer's comm
  thread never imports the batch's libraries (heartbeats would stop meanwhile). Results
  are waited for through p2pscoop (``Future.result``), never by polling: on a peer's main
  thread the wait parks and the peer runs tasks meanwhile, so the origin computes too and a
  ``Parallel`` call inside a task (nested, at any depth) waits without blocking its peer,
  hence without deadlock. Nested calls use this backend again (one level deeper).
* ``effective_n_jobs(-1)`` is the number of peers (``p2pscoop.SIZE``); ``n_jobs=-k`` means
  all but ``k - 1`` peers; a positive ``n_jobs`` is taken as given (it only sizes joblib's
  batches and look-ahead: p2pscoop's work stealing spreads the tasks).
* A task's exception reaches the caller as joblib raises it; the calls not yet started
  are cancelled then (``abort_everything``).
* joblib keeps its active backend configuration in a ``threading.local``; p2pscoop runs
  many tasks per thread, each in its own greenlet, interleaved when they wait. That local
  is replaced by a per-greenlet one on import, so one task's ``parallel_config`` never
  leaks into another's.
"""

from __future__ import annotations

import threading
import weakref

import greenlet

try:
    import joblib as _joblib
    from joblib import parallel as _jparallel
    from joblib._parallel_backends import AutoBatchingMixin, ParallelBackendBase
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ImportError("p2pscoop.joblib needs joblib: pip install 'p2pscoop[joblib]'") from _exc

from . import futures
from .core.errors import PayloadError
from .runtime import context, importing, payload

__all__ = ["P2pscoopBackend", "register", "shutdown", "BACKEND_NAME"]

BACKEND_NAME = "p2pscoop"

_own_lock = threading.Lock()
_own = None  # the p2pscoop.Executor this module started, if any


def _own_runtime(n: int | None):
    """The running peer, starting ``n`` local peers (an ``Executor``) if none runs."""
    global _own
    peer = context.current()
    if peer is not None:
        return peer
    with _own_lock:
        peer = context.current()
        if peer is None:
            from .executor import Executor

            _own = Executor(n=n)
            peer = _own.peer
    return peer


def shutdown() -> None:
    """Stop the local peers this module started for a plain process (no-op if none).

    They also stop at interpreter exit; a later ``Parallel`` call starts new ones."""
    global _own
    with _own_lock:
        own, _own = _own, None
    if own is not None:
        own.shutdown(wait=True)


def _peers_that_would_run(n: int | None) -> int:
    peer = context.current()
    if peer is not None:
        return max(int(peer.size), 1)
    run = importing.current()  # a worker importing the program: the run's size
    if run is not None:
        return run.size
    if n is not None:
        return n
    from .launch.local import default_size

    return default_size()


class P2pscoopBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib's ``ParallelBackendBase`` on p2pscoop peers (registered as ``"p2pscoop"``).

    ``n``: the number of local peers to start when no p2pscoop runtime is running (default:
    ``n_jobs`` if positive, else one per core); ignored when one runs. Pass it as
    ``joblib.parallel_backend("p2pscoop", n=4)``.
    """

    # -1: a Parallel (or scikit-learn estimator) that leaves n_jobs unset uses every peer.
    default_n_jobs = -1
    uses_threads = False
    supports_sharedmem = False
    supports_timeout = True
    # joblib retrieves results in the caller, which waits through p2pscoop (see the module
    # docstring); only return_as="generator_unordered" switches to joblib's callback mode,
    # where results are taken in by done-callbacks (``configure``).
    supports_retrieve_callback = False
    supports_return_generator = True

    def __init__(self, nesting_level: int | None = None, inner_max_num_threads=None,
                 n: int | None = None, **backend_kwargs):
        if n is not None and n < 1:
            raise ValueError(f"the number of peers must be at least 1, got n={n}")
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **backend_kwargs)
        self.n = n
        self._pending: set = set()
        self._pending_lock = threading.Lock()

    # -- sizing ---------------------------------------------------------------------------

    def effective_n_jobs(self, n_jobs) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            n_jobs = self.default_n_jobs
        if n_jobs < 0:
            return max(_peers_that_would_run(self.n) + 1 + n_jobs, 1)
        return int(n_jobs)

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None, **kwargs) -> int:
        importing.stop_if_importing("joblib.Parallel")  # a worker importing the program
        n_jobs = self.effective_n_jobs(n_jobs)
        self.parallel = parallel
        if n_jobs == 1:
            return 1  # joblib runs the calls itself, in order: no peers needed
        _own_runtime(self.n if self.n is not None else (n_jobs if n_jobs > 1 else None))
        # Instance attribute: joblib reads it per call. Unordered results need joblib's
        # callback mode (its caller then polls and the done-callbacks take results in).
        self.supports_retrieve_callback = (parallel is not None
                                           and not getattr(parallel, "return_ordered", True))
        return self.effective_n_jobs(n_jobs)

    # -- running --------------------------------------------------------------------------

    def submit(self, func, callback=None):
        """One joblib batch (``BatchedCalls``) as one p2pscoop task. The batch travels
        pickled inside the task (``payload.dumps_deferred``): unpickling it imports the
        batch's libraries (scikit-learn...), which must happen in the task, on the peer's
        main thread, not on the comm thread that receives stolen work."""
        try:
            blob = payload.dumps_deferred(func)
        except Exception as exc:
            raise PayloadError(f"a joblib batch cannot be pickled: "
                                       f"{type(exc).__name__}: {exc}") from exc
        fut = futures.submit(payload.call_deferred, blob)
        with self._pending_lock:
            self._pending.add(fut)
        fut.add_done_callback(self._forget)
        if callback is not None:
            fut.add_done_callback(callback)
        return fut

    def _forget(self, fut) -> None:
        with self._pending_lock:
            self._pending.discard(fut)

    def retrieve_result(self, out, timeout=None):
        return out.result(timeout=timeout)

    def retrieve_result_callback(self, out):
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """A task failed (or the caller gave up): cancel the batches not started anywhere."""
        with self._pending_lock:
            pending, self._pending = list(self._pending), set()
        for fut in pending:
            fut.cancel()

    def get_nested_backend(self):
        """``Parallel`` inside a task: this backend again, one level deeper (it waits
        through p2pscoop, so the task's peer goes on running other work meanwhile)."""
        level = (self.nesting_level or 0) + 1
        return P2pscoopBackend(nesting_level=level, n=self.n), None

    def __reduce__(self):
        # The nested backend travels inside every batch: send its settings only.
        return (P2pscoopBackend, (self.nesting_level, self.inner_max_num_threads, self.n))


# -- joblib's active configuration, per greenlet -----------------------------------------

class _GreenletLocal:
    """Like ``threading.local``, but per greenlet (each thread's main greenlet is its own,
    so threads stay apart as before)."""

    def __init__(self, initial: dict | None = None):
        store: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        if initial:
            store[greenlet.getcurrent()] = dict(initial)
        object.__setattr__(self, "_store", store)

    def _slots(self) -> dict:
        store = object.__getattribute__(self, "_store")
        here = greenlet.getcurrent()
        slots = store.get(here)
        if slots is None:
            slots = store[here] = {}
        return slots

    def __getattr__(self, name):
        try:
            return self._slots()[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value) -> None:
        self._slots()[name] = value

    def __delattr__(self, name) -> None:
        try:
            del self._slots()[name]
        except KeyError:
            raise AttributeError(name) from None


def _greenlet_local_config() -> None:
    current = getattr(_jparallel, "_backend", None)
    if isinstance(current, _GreenletLocal) or not isinstance(current, threading.local):
        return  # done already, or a joblib whose internals we do not know: leave it
    _jparallel._backend = _GreenletLocal(getattr(current, "__dict__", None))


def register() -> None:
    """Register the backend with joblib as ``"p2pscoop"`` (done on import; idempotent)."""
    _joblib.register_parallel_backend(BACKEND_NAME, P2pscoopBackend)
    _greenlet_local_config()


register()
