"""CPython's own ``concurrent.futures`` tests, pointed at p2pscoop futures.

``FutureTests``, ``WaitTests`` and ``AsCompletedTests`` of CPython's
``Lib/test/test_concurrent_futures.py`` (Debian: ``libpython3.11-testsuite``, installed by
``tools/setup-test-host``) are imported as they ship, not copied. ``make_classes`` derives
test cases from them in which:

* ``Future`` (the bare futures the tests build with ``create_future``, and the constants
  ``PENDING_FUTURE`` ... ``SUCCESSFUL_FUTURE``) is ``p2pscoop.futures.Future``;
* ``futures`` (where the tests find ``wait``, ``as_completed``, ``TimeoutError``,
  ``InvalidStateError``...) is ``p2pscoop.futures`` or the stdlib's ``concurrent.futures``,
  so the stdlib's ``wait``/``as_completed`` are held to the contract on our futures too;
* the executor of ``WaitTests``/``AsCompletedTests`` is the one given (a
  ``p2pscoop.Executor``, or ``futures.submit`` under the launcher).

The CPython module's globals are swapped in ``setUp`` and restored in ``tearDown``; its task
functions (``mul``, ``sleep_and_raise``) stay the module's own, so worker processes import
them from the same installed module. ``CPY`` is None when the test suite is not installed.
"""

from __future__ import annotations

import concurrent.futures as stdlib_futures
import importlib
import importlib.util
import pathlib
import sys
import unittest

import cloudpickle

import p2pscoop
from p2pscoop import futures as p2p_futures
from p2pscoop.futures import Future


def _load():
    """CPython's test module: this Python's own if it ships one, else the system's
    (``/usr/lib/python3.X/test``, Debian's package), loaded under a name of its own; its
    functions then travel to workers by value (workers may not find the file by name)."""
    try:
        return importlib.import_module("test.test_concurrent_futures")
    except ImportError:
        pass
    minor = sys.version_info[1]
    path = pathlib.Path(f"/usr/lib/python3.{minor}/test/test_concurrent_futures.py")
    if not path.is_file():
        return None
    name = "cpython_test_concurrent_futures"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # noqa: BLE001 - e.g. a test.support too old or too new for it
        del sys.modules[name]
        return None
    cloudpickle.register_pickle_by_value(module)
    return module


CPY = _load()

MISSING = ("CPython's test suite is not installed (Debian: apt-get install "
           "libpython3.11-testsuite, which tools/setup-test-host does as root)")

NAMESPACES = {"p2pscoop": p2p_futures, "stdlib": stdlib_futures}
SUITES = ("FutureTests", "WaitTests", "AsCompletedTests")

# The module constants the tests use, rebuilt as p2pscoop futures for every test.
_CONSTANTS = {
    "PENDING_FUTURE": dict(state="PENDING"),
    "RUNNING_FUTURE": dict(state="RUNNING"),
    "CANCELLED_FUTURE": dict(state="CANCELLED"),
    "CANCELLED_AND_NOTIFIED_FUTURE": dict(state="CANCELLED_AND_NOTIFIED"),
    "EXCEPTION_FUTURE": dict(state="FINISHED", exception=OSError()),
    "SUCCESSFUL_FUTURE": dict(state="FINISHED", result=42),
}


class _Swapped:
    """Swaps the CPython module's ``futures`` and ``Future`` (and rebuilds its constant
    futures) for the duration of one test."""

    namespace = p2p_futures

    def setUp(self):
        names = ("futures", "Future", *_CONSTANTS)
        self._saved = {name: getattr(CPY, name) for name in names}
        CPY.futures = self.namespace
        CPY.Future = Future
        for name, kwargs in _CONSTANTS.items():
            setattr(CPY, name, CPY.create_future(**kwargs))
        super().setUp()

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            for name, value in self._saved.items():
                setattr(CPY, name, value)


def make_classes(executor_type, label: str, namespaces=("p2pscoop", "stdlib"),
                 suites=SUITES, worker_count: int = 5) -> dict[str, type]:
    """Test case classes ``{name: class}`` for each suite and namespace. FutureTests uses
    no executor or ``wait``, so it is made with the p2pscoop namespace only."""
    classes = {}
    for suite in suites:
        for ns in namespaces:
            if suite == "FutureTests" and ns != "p2pscoop":
                continue
            bases: tuple = (_Swapped,)
            attrs = {"namespace": NAMESPACES[ns]}
            if suite == "FutureTests":
                bases += (CPY.FutureTests,)
            else:
                bases += (CPY.ExecutorMixin, getattr(CPY, suite), CPY.BaseTestCase)
                attrs.update(executor_type=executor_type, worker_count=worker_count)
            name = f"{suite}_{label}_{ns}"
            classes[name] = type(name, bases, attrs)
    return classes


class _WithRuntime:
    """A ``p2pscoop.Executor`` runs (its peer is this process's runtime) during the class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.runtime = p2pscoop.Executor(n=2)

    @classmethod
    def tearDownClass(cls):
        cls.runtime.shutdown()
        super().tearDownClass()


def in_process_classes() -> dict[str, type]:
    """Every suite with a ``p2pscoop.Executor`` per test (``executor``), and FutureTests
    with no runtime (``serial``) and while an executor runs (``running``)."""
    classes = make_classes(p2pscoop.Executor, "executor")
    classes.update(make_classes(None, "serial", suites=("FutureTests",)))
    for name, cls in make_classes(None, "running", suites=("FutureTests",)).items():
        classes[name] = type(name, (_WithRuntime, cls), {})
    return classes


class _Collect(unittest.TestResult):
    """Records each test's outcome as ``(id, "pass"|"fail"|"error"|"skip", detail)``."""

    def __init__(self):
        super().__init__()
        self.outcomes: list = []

    def addSuccess(self, test):
        self.outcomes.append((test.id(), "pass", ""))

    def addFailure(self, test, err):
        self.outcomes.append((test.id(), "fail", self._exc_info_to_string(err, test)))

    def addError(self, test, err):
        self.outcomes.append((test.id(), "error", self._exc_info_to_string(err, test)))

    def addSkip(self, test, reason):
        self.outcomes.append((test.id(), "skip", reason))


def run_classes(classes: dict[str, type]) -> list:
    """Run the given test case classes with unittest; the outcome of every test."""
    CPY.support.verbose = False  # else each test prints its duration
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(cls) for cls in classes.values())
    result = _Collect()
    suite.run(result)
    return result.outcomes
