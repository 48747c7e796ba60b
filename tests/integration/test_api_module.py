"""Module attributes of ``p2pscoop`` (SCOOP's globals), inside and outside a runtime.

``IS_RUNNING``, ``IS_ORIGIN``, ``SIZE`` and ``worker`` are read live from the peer of the
process: they always exist (SCOOP raised AttributeError for ``IS_ORIGIN``/``worker``/``SIZE``
without ``-m scoop``), and a task sees the values of the peer that runs it.
"""

import concurrent.futures as cf
import os
import textwrap

import pytest

import p2pscoop
from p2pscoop import futures, shared

from api_helpers import (need_multi, no_runtime, rt, run_elsewhere, run_program,  # noqa: F401
                         runtime_mode)

pytestmark = pytest.mark.timeout(60)


def attributes():
    return (p2pscoop.IS_RUNNING, p2pscoop.IS_ORIGIN, p2pscoop.SIZE, p2pscoop.worker)


def attributes_and_pid():
    return attributes(), os.getpid()


def test_attributes_in_the_calling_process(rt):
    is_running, is_origin, size, worker = attributes()
    if rt.serial:
        assert (is_running, is_origin, size, worker) == (False, False, 1, None)
    else:
        assert is_running is True
        assert is_origin is True
        assert size == rt.size
        assert isinstance(worker, bytes) and worker.startswith(b"127.0.0.1:")


def test_attributes_inside_a_task(rt):
    """A task that runs here sees this process's values."""
    fut = futures.submit(attributes_and_pid)
    values, task_pid = fut.result()
    if not rt.multi:
        assert task_pid == os.getpid()
    if task_pid == os.getpid():
        assert values == attributes()


def test_inside_a_task_on_a_worker_is_origin_is_false(rt):
    need_multi(rt)
    is_running, is_origin, size, worker = run_elsewhere(attributes)
    assert is_running is True
    assert is_origin is False
    assert size == rt.size
    assert isinstance(worker, bytes) and worker != p2pscoop.worker


def test_every_peer_has_its_own_worker_name(rt):
    need_multi(rt)
    names = {p2pscoop.worker, run_elsewhere(lambda: p2pscoop.worker)}
    assert len(names) == rt.size


def test_unknown_attribute_raises_attribute_error(rt):
    with pytest.raises(AttributeError):
        p2pscoop.NO_SUCH_ATTRIBUTE
    assert not hasattr(p2pscoop, "IS_SOMETHING_ELSE")


def test_attributes_follow_the_with_block(no_runtime):
    assert p2pscoop.IS_RUNNING is False
    with p2pscoop.start(n=1):
        assert (p2pscoop.IS_RUNNING, p2pscoop.IS_ORIGIN, p2pscoop.SIZE) == (True, True, 1)
    assert attributes() == (False, False, 1, None)


SECOND_RUNTIME = textwrap.dedent("""
    import faulthandler, gc
    faulthandler.dump_traceback_later(3, exit=True)   # a hang fails fast, with stacks
    import p2pscoop
    from p2pscoop import futures

    with p2pscoop.start(n=1):
        try:
            with p2pscoop.start(n=1):
                print("second runtime started")
        except RuntimeError as exc:
            print("refused:", exc)
        gc.collect()   # the refused runtime's leftovers must not hang the process
        print("first still works:", futures.submit(abs, -1).result())
    print("end")
""")


def test_a_second_runtime_in_the_same_process_is_refused(tmp_path):
    """Run in a child process: the failure mode is a hang of the whole process."""
    prog = tmp_path / "second_runtime.py"
    prog.write_text(SECOND_RUNTIME)
    rc, out, err = run_program(prog, launcher=False)
    lines = out.splitlines()
    assert lines[:1] and lines[0].startswith("refused:"), out + err
    assert "already running" in lines[0]
    assert lines[1:] == ["first still works: 1", "end"], out + err
    assert rc == 0


def test_serial_fallback_warns_once_per_process(tmp_path):
    prog = tmp_path / "serial_prog.py"
    prog.write_text(textwrap.dedent("""
        import warnings
        warnings.simplefilter("always")
        from p2pscoop import futures, shared
        assert futures.submit(abs, -1).result() == 1
        assert list(futures.map(abs, [-1, -2])) == [1, 2]
        assert futures.mapReduce(abs, max, [-3, 2]) == 3
        shared.setConst(k=1)
        print("ok")
    """))
    rc, out, err = run_program(prog, launcher=False)
    assert rc == 0, err
    assert out.split() == ["ok"]
    assert err.count("RuntimeWarning") == 1, err
    assert "p2pscoop is not running" in err


PROGRAM = textwrap.dedent("""
    import os
    import p2pscoop
    from p2pscoop import futures, shared

    def where():
        return os.getpid(), p2pscoop.IS_ORIGIN, p2pscoop.IS_RUNNING, p2pscoop.SIZE

    if __name__ == "__main__":
        assert p2pscoop.IS_RUNNING and p2pscoop.IS_ORIGIN and p2pscoop.SIZE == 2
        fut = futures.submit(where)
        while not fut.done():      # poll without parking: the worker must run it
            pass
        pid, is_origin, running, size = fut.result()
        assert pid != os.getpid()
        print("worker", is_origin, running, size)
""")


def test_attributes_under_the_launcher(tmp_path):
    prog = tmp_path / "attrs_prog.py"
    prog.write_text(PROGRAM)
    rc, out, err = run_program(prog)
    assert rc == 0, out + err
    assert "worker False True 2" in out.splitlines(), out + err


def test_futures_has_scoops_names_and_the_standard_constants(rt):
    for name in ("submit", "map", "map_as_completed", "mapReduce", "mapScan", "wait",
                 "as_completed", "shutdown", "Future"):
        assert callable(getattr(futures, name)), name
    assert futures.FIRST_COMPLETED == cf.FIRST_COMPLETED == "FIRST_COMPLETED"
    assert futures.FIRST_EXCEPTION == cf.FIRST_EXCEPTION == "FIRST_EXCEPTION"
    assert futures.ALL_COMPLETED == cf.ALL_COMPLETED == "ALL_COMPLETED"
    assert callable(shared.setConst) and callable(shared.getConst)


def test_shutdown_is_a_harmless_no_op(rt):
    assert futures.shutdown() is None
    assert futures.shutdown(wait=False) is None
    assert futures.submit(abs, -5).result(timeout=30) == 5
    assert p2pscoop.IS_RUNNING is rt.running


def test_attributes_and_api_while_a_worker_imports_the_program(no_runtime):
    """What ``runtime.worker`` shows the program during its import (no peer runs yet)."""
    from p2pscoop.runtime import importing

    with importing.importing(rank=3, size=5, worker=b"127.0.0.1:1234"):
        assert attributes() == (True, False, 5, b"127.0.0.1:1234")
        for call in (lambda: futures.submit(abs, -1), lambda: futures.map(abs, [1]),
                     lambda: futures.mapReduce(abs, max, [1]),
                     lambda: futures.mapScan(abs, max, [1]),
                     lambda: futures.map_as_completed(abs, [1]),
                     lambda: shared.setConst(k=1), lambda: shared.getConst("k")):
            with pytest.raises(importing.NotRunningHere):
                call()
    assert attributes() == (False, False, 1, None)
    assert importing.current() is None


IMPORT_PROGRAM = textwrap.dedent("""
    import sys
    import p2pscoop
    from p2pscoop import futures

    AT_IMPORT = (p2pscoop.IS_RUNNING, p2pscoop.IS_ORIGIN, p2pscoop.SIZE,
                 type(p2pscoop.worker).__name__)
    print(__name__, AT_IMPORT, flush=True)
    print("total", sum(futures.map(abs, range(-3, 3))), flush=True)  # unguarded
    sys.exit(4)
""")


def test_unguarded_program_under_the_launcher(tmp_path):
    """Workers see the run's attributes while importing; the top-level work runs once,
    without the serial warning; the top-level ``sys.exit(4)`` is the origin's status."""
    prog = tmp_path / "import_prog.py"
    prog.write_text(IMPORT_PROGRAM)
    rc, out, err = run_program(prog)
    assert rc == 4, out + err
    lines = out.splitlines()
    assert sorted(lines) == sorted(["__p2pscoop_main__ (True, False, 2, 'bytes')",
                                    "__main__ (True, True, 2, 'bytes')", "total 9"]), out + err
    assert err == "", err
