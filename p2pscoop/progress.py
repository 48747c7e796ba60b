"""Progress bars: a live bar for each long map and one for the run as a whole.

    python -m p2pscoop --progress prog.py           # drawn when stderr is a terminal
    python -m p2pscoop --progress=always prog.py    # drawn into a pipe or file too

    with p2pscoop.progress():                       # from Python (a running runtime)
        results = list(futures.map(work, range(10_000)))
    for r in p2pscoop.progress(futures.as_completed(fs), total=len(fs)): ...

What it owns: ``hook.tracker`` (the one running ``Tracker`` of this process, or None)
and the daemon thread that draws. The helper is ``progress(...)``, not a ``progress=``
argument of ``futures.map``: SCOOP's ``map`` signature stays as it was, and a ``with`` block
covers every map inside it, nested ones included.

Where the numbers come from:

* a map's bar: the map's own window (``futures._MapRun``), read by the drawing thread:
  done = results consumed + results waiting to be consumed; total = the length of the
  input when it has one (``len``), else the number issued once the input is exhausted,
  and until then the bar shows the count and the rate. The only cost in the map's path is
  one ``hook.tracker is not None`` test per ``map`` call (``futures._map``), none per unit.
  A map gets a bar once it has run ``SHOW_AFTER`` seconds (short maps never flicker).
* the run's bar: ``runtime.telemetry.collector().snapshot()["totals"]`` (units done /
  units known, over every peer; docs/progress.md) when telemetry runs, else the sum of
  this process's own maps (done / issued), which misses plain ``submit`` calls and the
  maps of other peers.

When stdout is the same terminal as the bars, ``sys.stdout`` is wrapped while they are
drawn (``_StdoutAbove``), so the program's lines are written above the bars, not through
them; the real stream is put back when the bars end.

Invariants: nothing is drawn from the scheduler or the comm thread: one daemon thread,
``p2pscoop-progress``, redraws every ``INTERVAL`` seconds and touches no peer state but
integers and lengths it reads (and the telemetry collector's ``snapshot()``, safe from any
thread by its contract); ``stop()`` draws once more (the final counts), closes the
bars and joins that thread. When off (``hook.tracker is None``) nothing is imported or
started.

The library is tqdm, not rich: a 80 kB wheel with no dependency, about 30 ms to import
(against 310 kB plus pygments and markdown-it-py, about 14 MB installed and 40-60 ms for
``rich.progress``); it draws several bars at fixed positions, ETA and rate included, and it
is imported only when a bar is drawn.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Iterable, Iterator

from .runtime.telemetry import fn_name

__all__ = ["progress", "Tracker", "hook", "watch_map", "should_draw", "start", "stop",
           "with_telemetry", "MODES"]

MODES = ("auto", "always", "never")
INTERVAL = 0.15  # seconds between redraws (about 7 Hz)
SHOW_AFTER = 0.5  # a map gets its own bar once it has run this long
SETTLE = 1.2  # seconds the last draw may wait for the peers' last reports (``_settle``)



class _Hook:
    """``hook.tracker``: the running Tracker, or None (``futures._map`` tests it once per
    map). An object, not a module global, because ``p2pscoop.progress`` is the helper's
    name in the package: the module is reached by ``from .progress import hook``."""

    __slots__ = ("tracker",)

    def __init__(self):
        self.tracker: "Tracker | None" = None


hook = _Hook()
_start_lock = threading.Lock()


def should_draw(mode: str, stream=None) -> bool:
    """Draw in ``mode`` on ``stream`` (default stderr)? ``auto``: only on a terminal."""
    if mode not in MODES:
        raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "never":
        return False
    if mode == "always":
        return True
    return _is_tty(sys.stderr if stream is None else stream)


def _input_length(iterables: tuple) -> int | None:
    """The number of units of a map over ``iterables`` (zip: the shortest), if known."""
    try:
        return min(len(it) for it in iterables) if iterables else None
    except TypeError:  # one of them has no len(): a generator, an iterator
        return None


class _MapWatch:
    """What the drawing thread knows of one map: counts read from its window."""

    __slots__ = ("run", "total", "name", "since", "bar", "last", "per")

    def __init__(self, run, total: int | None, name: str, per: int = 1):
        #: held until the map is over (or its consumer dropped it: ours is the last
        #: reference), so the last look still reads its final counts: a fast map may end and
        #: be dropped between two looks, and the bar must not close at its previous count
        self.run = run
        self.total = total  # in input elements (per: elements per unit, Executor chunks)
        self.name = name
        self.since = time.monotonic()
        self.bar = None
        self.last = (0, 0)  # (done, issued) at the last look, in elements
        self.per = per

    def look(self) -> tuple[int, int, int | None, bool]:
        """(done, issued, total, finished) in input elements."""
        run = self.run
        if run is None:  # over: the counts of the last look
            done, issued = self.last
            return done, issued, self.total, True
        done = run.consumed + len(run.slots)
        issued = run.issued
        total = self.total
        if run.exhausted:
            issued_total = issued + (1 if run.error_at is not None else 0)
            units = issued_total if total is None else min(-(-total // self.per), issued_total)
            finished = run.consumed >= issued_total or done >= units
            if total is None:
                total = issued_total * self.per
        else:
            finished = False
        if finished or sys.getrefcount(run) <= 3:  # (self.run, ``run`` and the argument)
            finished, self.run = True, None  # over, or dropped by its consumer
        done, issued = done * self.per, issued * self.per  # in elements: capped by total
        if total is not None:
            done, issued = min(done, total), min(issued, total)
        self.last = (done, issued)
        return self.last[0], self.last[1], total, finished


class _IterWatch:
    """A bar over any iterable: counts what the consumer took (``progress(iterable)``)."""

    __slots__ = ("done", "total", "name", "since", "bar", "finished")

    def __init__(self, total: int | None, name: str):
        self.done = 0
        self.total = total
        self.name = name
        self.since = time.monotonic() - SHOW_AFTER  # asked for explicitly: shown at once
        self.bar = None
        self.finished = False

    def look(self) -> tuple[int, int, int | None, bool]:
        return self.done, self.done, self.total, self.finished


class Tracker:
    """Draws the bars of this process on ``stream`` from a daemon thread (see the module
    docstring). ``title`` names the run's bar; ``interval``: seconds between redraws."""

    def __init__(self, stream=None, title: str = "run", interval: float = INTERVAL):
        import tqdm  # only when drawing (see the module docstring)

        self._tqdm = tqdm.tqdm
        self.stream = sys.stderr if stream is None else stream
        self.title = title
        self.interval = interval
        self.watches: list = []
        self._new: list = []  # registered by any thread, taken by the drawing thread
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._run_bar = None
        self._stdout: _StdoutAbove | None = None  # sys.stdout while drawing (start)
        self.own_done = 0  # elements done / issued by maps already over (fallback totals)
        self.own_known = 0
        self._thread = threading.Thread(target=self._loop, name="p2pscoop-progress",
                                        daemon=True)

    # -- registration (any thread) ---------------------------------------------------------

    def add_map(self, run, iterables: tuple, fn: Any, per: int = 1,
                total: int | None = None) -> None:
        """Watch the map window ``run`` (``futures._MapRun``) over ``iterables`` (their
        length is the total, if they have one), ``per`` input elements a unit."""
        if total is None:
            total = _input_length(iterables)
        with self._lock:
            self._new.append(_MapWatch(run, total, fn_name(fn), per))

    def add_iter(self, watch: _IterWatch) -> None:
        with self._lock:
            self._new.append(watch)

    # -- drawing (the daemon thread) -------------------------------------------------------

    def start(self) -> "Tracker":
        if _is_tty(self.stream) and _is_tty(sys.stdout):  # bars and prints on one screen
            self._stdout = sys.stdout = _StdoutAbove(sys.stdout, self._tqdm)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Draw the final counts, close the bars, end the thread (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        wrapper, self._stdout = self._stdout, None
        if wrapper is not None:
            wrapper.flush()
            if sys.stdout is wrapper:
                sys.stdout = wrapper.real

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self.draw()
            self.draw(final=True)
        except Exception:  # noqa: BLE001 - a bar must never break the run: stop drawing
            import logging

            logging.getLogger("p2pscoop.progress").warning(
                "progress bars stopped after an error", exc_info=True)
        finally:
            try:
                self._close_all()
            except Exception:  # noqa: BLE001 - e.g. the stream was closed
                pass

    def _bar(self, desc: str, n: int, total: int | None, leave: bool):
        """A new bar at ``n`` (its rate counts from there, not from 0)."""
        return self._tqdm(total=total, initial=n, desc=desc, file=self.stream,
                          leave=leave, mininterval=0, miniters=0, smoothing=0.3,
                          unit="task", dynamic_ncols=True)

    def draw(self, final: bool = False) -> None:
        """Read every count and redraw the bars once."""
        with self._lock:
            self.watches.extend(self._new)
            self._new.clear()
        now = time.monotonic()
        live_done = live_known = 0
        keep = []
        for w in self.watches:
            done, issued, total, finished = w.look()
            if finished or final:  # counted for the run, its bar closed at its count
                self.own_done += done
                self.own_known += max(issued, done)
                if w.bar is not None:
                    _set(w.bar, done, total)
                    w.bar.close()
                    w.bar = None
                continue
            live_done += done
            live_known += max(issued, done)
            keep.append(w)
            if w.bar is None and now - w.since >= SHOW_AFTER:
                w.bar = self._bar(f"map {w.name}", done, total, leave=False)
            if w.bar is not None:
                _set(w.bar, done, total)
        self.watches = keep
        done, known = self._run_totals(live_done, live_known)
        if final and done < known and _collector() is not None:
            done, known = self._settle(done, known)
        if self._run_bar is None:
            if not known:  # nothing counted yet (or only submits, without telemetry)
                return
            self._run_bar = self._bar(self.title, done, known, leave=True)
        _set(self._run_bar, done, known)

    def _run_totals(self, live_done: int, live_known: int) -> tuple[int, int]:
        """(units done, units known) of the whole run: telemetry's, else our maps'. Our
        maps' counts are exact and a lower bound of the run's, so each is also the least
        shown: telemetry hears from the other peers only every so often, and its last
        snapshot may lag behind a map that has just been read to its end."""
        done, known = self.own_done + live_done, self.own_known + live_known
        collector = _collector()
        if collector is not None:
            try:
                totals = collector.snapshot()["totals"]
                done = max(done, int(totals["units_done"]))
                known = max(known, int(totals["units_known"]))
            except Exception:  # noqa: BLE001 - a bar must never break the run
                pass
        return done, known

    def _settle(self, done: int, known: int) -> tuple[int, int]:
        """The last counts of the run bar: the other peers report only every
        ``telemetry_interval``, so at the end of a short run the collector may not have
        heard of their last units yet. Wait for their next reports (``SETTLE`` seconds at
        most) rather than leave a finished run at 98%."""
        deadline = time.monotonic() + SETTLE
        while done < known and time.monotonic() < deadline:
            time.sleep(0.05)
            done, known = self._run_totals(0, 0)
        return done, known

    def _close_all(self) -> None:
        for w in self.watches:
            if w.bar is not None:
                w.bar.close()
        if self._run_bar is not None:
            self._run_bar.close()
            self._run_bar = None


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _StdoutAbove:
    """``sys.stdout`` while bars are drawn on the terminal it writes to: each line the
    program prints is written above the bars (they are cleared, the line is written, they
    are redrawn) instead of through them. Text without a newline waits for one, or for
    ``flush()``. Everything else is the real stream's."""

    def __init__(self, real, tqdm_cls):
        self.real = real
        self._tqdm = tqdm_cls
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            if "\n" not in self._pending:
                return len(text)
            lines, _, self._pending = self._pending.rpartition("\n")
        self._emit(lines + "\n")
        return len(text)

    def flush(self) -> None:
        with self._lock:
            text, self._pending = self._pending, ""
        if text:
            self._emit(text)
        self.real.flush()

    def _emit(self, text: str) -> None:
        # tqdm clears the bars of stderr for a write to sys.stdout (this object)
        with self._tqdm.external_write_mode(file=self):
            self.real.write(text)
            self.real.flush()

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def _set(bar, n: int, total: int | None) -> None:
    """Move ``bar`` to ``n`` of ``total`` (tqdm's update keeps its rate and ETA right)."""
    if total != bar.total:
        bar.total = total
    bar.update(n - bar.n)


def _collector():
    """The origin's telemetry collector (runtime/telemetry.py), or None."""
    try:
        from .runtime import telemetry
    except ImportError:  # telemetry not there (yet)
        return None
    try:
        return telemetry.collector()
    except Exception:  # noqa: BLE001
        return None


def watch_map(run, iterables: tuple, fn: Any, per: int = 1) -> None:
    """The hook of ``futures._map`` and ``Executor.map`` (called when ``hook.tracker`` is
    set): watch the map window ``run`` if bars are still drawn."""
    t = hook.tracker  # read once: another thread may stop the bars meanwhile
    if t is not None:
        t.add_map(run, iterables, fn, per)


# -- the launcher's side -----------------------------------------------------------------

def with_telemetry(config, mode: str):
    """The origin's ``NodeConfig`` with telemetry on if bars will be drawn in ``mode``
    (``config`` None: the default one). Telemetry off when nothing is drawn: it costs."""
    if not should_draw(mode):
        return config
    import dataclasses

    from .core.config import NodeConfig

    return dataclasses.replace(config if config is not None else NodeConfig(), telemetry=True)


def start(mode: str = "auto", stream=None, title: str = "run") -> Tracker | None:
    """Start this process's tracker if ``mode`` says to draw on ``stream`` and none runs;
    return it (None: nothing started, it is off or already running)."""
    if not should_draw(mode, stream):
        return None
    with _start_lock:
        if hook.tracker is not None:
            return None
        hook.tracker = Tracker(stream, title).start()
        return hook.tracker


def stop(started: Tracker | None) -> None:
    """Stop ``started`` (what ``start`` returned): final counts, bars closed."""
    if started is None:
        return
    with _start_lock:
        if hook.tracker is started:
            hook.tracker = None
    started.stop()


# -- the Python helper -------------------------------------------------------------------

class progress:
    """Show progress bars from Python (the launcher's ``--progress``, for a block).

    ``with progress(): ...``: a bar for each long map made in the block (``futures.map``,
    ``map_as_completed``, ``Executor.map``) and one for the run. ``progress(iterable,
    total=None)``: iterate ``iterable`` (a map, ``as_completed(fs)``...) with a bar that
    counts what is taken from it; a map made before is counted from its window.
    ``when``: ``auto`` (draw only if ``file``, default stderr, is a terminal), ``always``
    or ``never``. Under ``--progress`` the launcher's bars are used and this adds nothing
    but the iterable's bar.
    """

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None,
                 when: str = "auto", file=None, desc: str | None = None):
        should_draw(when, file)  # a bad mode fails here, not later
        self.iterable = iterable
        self.total = total
        self.when = when
        self.file = file
        self.desc = desc
        self._started: Tracker | None = None

    def __enter__(self) -> "progress":
        self._started = start(self.when, self.file,
                              self.desc or os.path.basename(sys.argv[0] or "run") or "run")
        return self

    def __exit__(self, *exc) -> None:
        stop(self._started)
        self._started = None

    def __iter__(self) -> Iterator:
        if self.iterable is None:
            raise TypeError("progress() without an iterable is a context manager: "
                            "use `with p2pscoop.progress(): ...`")
        return self._iterate()

    def _iterate(self) -> Iterator:
        from .futures import _MapRun

        it = self.iterable
        total = self.total if self.total is not None else _input_length((it,))
        with self:
            t = hook.tracker
            if t is None:  # off (not a terminal, or never): just iterate
                yield from it
                return
            if isinstance(it, _MapRun):
                t.add_map(it, (), it.fn, total=total)
                yield from it
                return
            watch = _IterWatch(total, self.desc or fn_name(type(it)))
            t.add_iter(watch)
            try:
                for item in it:
                    watch.done += 1
                    yield item
            finally:
                watch.finished = True

