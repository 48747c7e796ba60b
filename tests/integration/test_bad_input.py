"""Bad input never crashes or hangs a run (reliability.md, sections 0 and 3).

Each test runs a small program under ``python -m p2pscoop -n 3``. The program feeds one
kind of bad input, reports what each future became (``report`` lines of JSON), then checks
that every peer still answers and that a map afterwards is correct. Tasks that must run on
a worker are run with ``on_workers`` (the origin polls ``done()`` and never runs a task),
so what is tested does not depend on who steals what.

    unpicklable argument            PayloadError at submit, nothing sent
    unpicklable result (worker)     PayloadError on that future only
    result unpicklable at owner     PayloadError on that future only
    arguments unpicklable (worker)  PayloadError on that future only
    task raises                     the same exception type, remote traceback as __cause__
    exception that cannot travel    RemoteError (type name, message, traceback text)
    sys.exit in a task              SystemExit on that future, the peer survives
    malformed frames                dropped and counted (bad_frames), peers unharmed
"""

from __future__ import annotations

import pytest

from launcher_helpers import launcher, run, write_program

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

#: appended to every program: the cluster is whole and works after the bad input
STILL_WORKS = """
    def _square(x):
        return x * x


    def check_still_works(peers_before=None):
        peers = sorted(on_every_peer(os.getpid))
        report("PEERS_AFTER", peers)
        if peers_before is not None:
            report("SAME_PEERS", peers == sorted(peers_before))
        squares = on_workers(_square, [(i,) for i in range(50)])
        report("WORKERS_OK", [f.result() for f in squares] == [i * i for i in range(50)])
        report("MAP_OK", list(futures.map(_square, range(1000))) == [i * i for i in range(1000)])
"""


def run_program(tmp_path, *parts, args=(), n=3):
    """Run ``STILL_WORKS`` + ``parts`` as a program with ``args`` on ``n`` peers."""
    prog = write_program(tmp_path, STILL_WORKS, *parts)
    return run(launcher(prog, *args, n=n), tmp_path)


def assert_still_works(res, n=3):
    assert len(res.report("PEERS_AFTER")) == n, res
    if res.reports("SAME_PEERS"):
        assert res.report("SAME_PEERS") is True, res
    assert res.report("WORKERS_OK") is True, res
    assert res.report("MAP_OK") is True, res


# --- arguments --------------------------------------------------------------------------

def test_unpicklable_arguments_raise_payload_error_at_submit_and_send_nothing(tmp_path):
    res = run_program(tmp_path, """
        import functools
        import threading

        from p2pscoop.errors import PayloadError


        def count(*args, **kwargs):
            return len(args) + len(kwargs)


        def gen():
            yield 1


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            node = context.current().node
            before = [node._next_job, len(node.jobs), node.deque.total]
            cases = {
                "lock": lambda: futures.submit(count, threading.Lock()),
                "generator": lambda: futures.submit(count, gen()),
                "nested-lock": lambda: futures.submit(count, [1, {"k": threading.Lock()}]),
                "keyword": lambda: futures.submit(count, 1, x=threading.Lock()),
                "function": lambda: futures.submit(functools.partial(count, threading.Lock())),
            }
            errors = {}
            for name, call in cases.items():
                try:
                    call()
                    errors[name] = "no error"
                except PayloadError as exc:
                    errors[name] = ["PayloadError", str(exc)]
                except BaseException as exc:
                    errors[name] = [type(exc).__name__, str(exc)]
            report("ERRORS", errors)
            report("NOTHING_SENT", [node._next_job, len(node.jobs), node.deque.total] == before)

            got = []
            try:
                for value in futures.map(abs, [-1, -2, threading.Lock(), -4]):
                    got.append(value)
            except PayloadError:
                got.append("PayloadError")
            report("MAP", got)
            check_still_works(peers)
    """)
    assert res.code == 0, res
    errors = res.report("ERRORS")
    assert set(errors) == {"lock", "generator", "nested-lock", "keyword", "function"}, res
    for name, (kind, text) in errors.items():
        assert kind == "PayloadError", (name, res)
        assert "pickle" in text, (name, res)
    assert "'x'" in errors["keyword"][1], res  # the message names the keyword
    assert res.report("NOTHING_SENT") is True, res
    # the elements before the bad one ran, then the map raises at the bad one
    assert res.report("MAP") == [1, 2, "PayloadError"], res
    assert_still_works(res)


ON_LOAD = """
    LOAD_ERROR = {"ValueError": ValueError, "SystemExit": SystemExit,
                  "KeyboardInterrupt": KeyboardInterrupt}[sys.argv[1]]


    def _fail_on_load(text):
        raise LOAD_ERROR(text)


    class FailsOnLoad:
        \"\"\"Pickles fine; unpickling it raises LOAD_ERROR.\"\"\"

        def __reduce__(self):
            return (_fail_on_load, ("cannot unpickle me",))
"""

LOAD_ERRORS = [
    pytest.param("ValueError", id="ValueError"),
    pytest.param("SystemExit", id="SystemExit"),
    pytest.param("KeyboardInterrupt", id="KeyboardInterrupt"),
]


@pytest.mark.parametrize("error", LOAD_ERRORS)
def test_arguments_that_cannot_be_unpickled_on_a_worker_fail_that_future(tmp_path, error):
    res = run_program(tmp_path, ON_LOAD, """
        def take(x):
            return "ran" if isinstance(x, int) else "ran with an unexpected argument"


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            args = [(FailsOnLoad(),) if i % 3 == 0 else (i,) for i in range(12)]
            report("OUTCOMES", [outcome(f) for f in on_workers(take, args, bound=5)])
            check_still_works(peers)
    """, args=[error])
    assert res.code == 0, res
    for i, out in enumerate(res.report("OUTCOMES")):
        if i % 3 == 0:
            assert out["ok"] is False and out["type"] == "PayloadError", (i, res)
            assert "cannot unpickle me" in out["text"], (i, res)
        else:
            assert out == {"ok": True, "value": "ran"}, (i, res)
    assert_still_works(res)


# --- results ----------------------------------------------------------------------------

def test_unpicklable_result_of_a_task_on_a_worker_fails_that_future_only(tmp_path):
    res = run_program(tmp_path, """
        import threading


        def result_of(i):
            time.sleep(0.01)
            if i % 3 == 0 and not p2pscoop.IS_ORIGIN:
                return threading.Lock()
            return i


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            fs = on_workers(result_of, [(i,) for i in range(12)])
            report("OUTCOMES", [outcome(f) for f in fs])
            # the same inside one map: an element that failed does not stop the others
            rounds = []
            for _ in range(50):
                row = []
                it = futures.map(result_of, range(24))
                for i in range(24):
                    try:
                        value = next(it)
                        row.append(value if isinstance(value, int) else repr(value))
                    except Exception as exc:
                        row.append(type(exc).__name__)
                rounds.append(row)
                if "PayloadError" in row:
                    break
            report("MAP_ROUNDS", rounds)
            check_still_works(peers)
    """)
    assert res.code == 0, res
    for i, out in enumerate(res.report("OUTCOMES")):
        if i % 3 == 0:
            assert out["ok"] is False and out["type"] == "PayloadError", (i, res)
            assert "cannot be pickled" in out["text"], (i, res)
        else:
            assert out == {"ok": True, "value": i}, (i, res)
    rounds = res.report("MAP_ROUNDS")
    assert "PayloadError" in rounds[-1], res  # some bad element ran on a worker
    for row in rounds:
        for i, value in enumerate(row):
            if i % 3 == 0:  # failed on a worker, or ran on the origin: returned i there
                assert value in ("PayloadError", i), (i, row, res)
            else:
                assert value == i, (i, row, res)
    assert_still_works(res)


@pytest.mark.parametrize("error", [
    LOAD_ERRORS[0],
    pytest.param("SystemExit", id="SystemExit"),
])
def test_result_that_cannot_be_unpickled_at_the_owner_fails_that_future_only(tmp_path, error):
    res = run_program(tmp_path, ON_LOAD, """
        def make(i):
            return FailsOnLoad() if i % 2 == 0 else i


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            report("OUTCOMES", [outcome(f) for f in on_workers(make, [(i,) for i in range(8)])])
            check_still_works(peers)
    """, args=[error])
    assert res.code == 0, res
    for i, out in enumerate(res.report("OUTCOMES")):
        if i % 2 == 0:
            assert out["ok"] is False and out["type"] == "PayloadError", (i, res)
            assert "cannot unpickle me" in out["text"], (i, res)
        else:
            assert out == {"ok": True, "value": i}, (i, res)
    assert_still_works(res)


# --- exceptions -------------------------------------------------------------------------

def test_a_task_that_raises_gives_the_same_exception_type(tmp_path):
    res = run_program(tmp_path, """
        from p2pscoop.errors import RemoteTraceback


        class CustomError(Exception):
            def __init__(self, text, code):
                super().__init__(text, code)
                self.code = code


        def raiser(kind):
            if kind == "key":
                raise KeyError("missing-key")
            if kind == "value":
                raise ValueError("bad value", 42)
            if kind == "os":
                open("/nonexistent/p2pscoop-test/file")
            if kind == "custom":
                raise CustomError("custom text", 7)
            if kind == "chained":
                try:
                    {}["x"]
                except KeyError as exc:
                    raise RuntimeError("chained") from exc


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            kinds = ["key", "value", "os", "custom", "chained"]
            out = {}
            for kind, fut in zip(kinds, on_workers(raiser, [(k,) for k in kinds])):
                exc = fut.exception()
                cause = exc.__cause__
                out[kind] = {
                    "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
                    "args": repr(exc.args),
                    "custom_class_is_ours": type(exc) is CustomError,
                    "code": getattr(exc, "code", None),
                    "errno": getattr(exc, "errno", None),
                    "cause": type(cause).__name__,
                    "remote_traceback_names_the_task": isinstance(cause, RemoteTraceback)
                    and "raiser" in str(cause),
                }
            report("EXCEPTIONS", out)
            try:
                list(futures.map(raiser, ["key"] * 5))
                report("MAP_RAISED", None)
            except KeyError as exc:
                report("MAP_RAISED", ["KeyError", repr(exc.args)])
            check_still_works(peers)
    """)
    assert res.code == 0, res
    exc = res.report("EXCEPTIONS")
    assert exc["key"]["type"] == "builtins.KeyError", res
    assert exc["key"]["args"] == repr(("missing-key",)), res
    assert exc["value"]["type"] == "builtins.ValueError", res
    assert exc["value"]["args"] == repr(("bad value", 42)), res
    assert exc["os"]["type"] == "builtins.FileNotFoundError", res
    assert exc["os"]["errno"] == 2, res
    assert exc["custom"]["type"] == "__main__.CustomError", res
    assert exc["custom"]["custom_class_is_ours"] is True, res
    assert exc["custom"]["code"] == 7, res
    assert exc["chained"]["type"] == "builtins.RuntimeError", res
    for kind, info in exc.items():
        assert info["cause"] == "RemoteTraceback", (kind, res)
        assert info["remote_traceback_names_the_task"] is True, (kind, res)
    assert res.report("MAP_RAISED") == ["KeyError", repr(("missing-key",))], res
    assert_still_works(res)


UNTRAVELLED = """
    import threading

    from p2pscoop.errors import P2PScoopError, RemoteError


    class HoldsALock(Exception):
        \"\"\"Cannot be pickled: one of its attributes is a lock.\"\"\"

        def __init__(self, text):
            super().__init__(text)
            self.lock = threading.Lock()


    class TwoArguments(Exception):
        \"\"\"Pickles, but cannot be unpickled: __init__ needs two arguments, args has one.\"\"\"

        def __init__(self, text, extra):
            super().__init__(text)
            self.extra = extra


    def raise_it(kind):
        if kind == "unpicklable":
            raise HoldsALock("hello world")
        raise TwoArguments("hello world", 2)


    if __name__ == "__main__":
        peers = sorted(on_every_peer(os.getpid))
        (fut,) = on_workers(raise_it, [(sys.argv[1],)])
        exc = fut.exception()
        report("ERROR", {
            "type": type(exc).__name__,
            "is_remote_error": isinstance(exc, RemoteError),
            "is_p2pscoop_error": isinstance(exc, P2PScoopError),
            "str": str(exc),
            "type_name": getattr(exc, "type_name", None),
            "message": getattr(exc, "message", None),
            "traceback_text": getattr(exc, "traceback_text", None),
        })
        check_still_works(peers)
"""


@pytest.mark.parametrize("kind, class_name", [
    pytest.param("unpicklable", "HoldsALock", id="cannot-be-pickled"),
    pytest.param("unloadable", "TwoArguments", id="cannot-be-unpickled"),
])
def test_an_exception_that_cannot_travel_becomes_remote_error(tmp_path, kind, class_name):
    res = run_program(tmp_path, UNTRAVELLED, args=[kind])
    assert res.code == 0, res
    err = res.report("ERROR")
    assert err["is_remote_error"] is True and err["is_p2pscoop_error"] is True, res
    assert err["type_name"].endswith(class_name), res
    assert err["message"] == "hello world", res
    assert class_name in err["str"] and "hello world" in err["str"], res
    assert "raise_it" in err["traceback_text"], res  # where it happened, on the worker
    assert_still_works(res)


def test_sys_exit_in_a_task_is_that_futures_exception_and_the_peer_survives(tmp_path):
    (tmp_path / "exited").mkdir()
    res = run_program(tmp_path, """
        EXITED = sys.argv[1]


        def leave(i):
            open(os.path.join(EXITED, str(os.getpid())), "a").close()
            sys.exit(2)


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            fs = on_workers(leave, [(i,) for i in range(6)])
            report("WORKERS", [[type(f.exception()).__name__, f.exception().code] for f in fs])
            report("EXITED_ON", sorted(int(p) for p in os.listdir(EXITED)))
            try:  # wherever it runs, result() raises SystemExit(2), which we catch
                futures.submit(leave, 0).result()
                report("SUBMIT", None)
            except SystemExit as exc:
                report("SUBMIT", exc.code)
            check_still_works(peers)
            report("ORIGIN", os.getpid())
    """, args=[tmp_path / "exited"])
    assert res.code == 0, res
    assert res.report("WORKERS") == [["SystemExit", 2]] * 6, res
    assert res.report("SUBMIT") == 2, res
    exited_on = res.report("EXITED_ON")
    assert exited_on and res.report("ORIGIN") not in exited_on, res
    assert set(exited_on) <= set(res.report("PEERS_AFTER")), res  # they still run
    assert_still_works(res)


@pytest.mark.parametrize("error", ["KeyboardInterrupt", "CustomBase"])
def test_a_task_raising_a_base_exception_on_a_worker_fails_that_future(tmp_path, error):
    (tmp_path / "ran").mkdir()
    res = run_program(tmp_path, """
        class CustomBase(BaseException):
            pass


        ERROR = {"KeyboardInterrupt": KeyboardInterrupt, "CustomBase": CustomBase}[sys.argv[1]]
        RAN = sys.argv[2]


        def raiser(i):
            open(os.path.join(RAN, f"{i}-{os.getpid()}"), "a").close()
            raise ERROR("from a task")


        if __name__ == "__main__":
            peers = sorted(on_every_peer(os.getpid))
            (fut,) = on_workers(raiser, [(0,)], bound=5)
            report("ERROR", type(fut.exception()).__name__)
            report("RUNS", len(os.listdir(RAN)))
            check_still_works(peers)
    """, args=[error, tmp_path / "ran"])
    assert res.code == 0, res
    assert res.report("ERROR") == error, res
    assert res.report("RUNS") == 1, res  # a user exception is not retried
    assert_still_works(res)


# --- malformed frames -------------------------------------------------------------------

FRAMES = """
    import pickle

    import msgpack
    import zmq

    from p2pscoop.core import messages

    BOMB_PATH = sys.argv[1]


    class Bomb:
        \"\"\"Creates BOMB_PATH if anyone ever unpickles it.\"\"\"

        def __reduce__(self):
            return (open, (BOMB_PATH, "w"))


    V = messages.PROTOCOL_VERSION


    def header(*fields):
        return msgpack.packb(list(fields), use_bin_type=True)


    def hello(cluster, incarnation, python="cpython-%d.%d" % sys.version_info[:2],
              version=p2pscoop.__version__):
        return header(V, 1, cluster, incarnation, 1, "tcp://127.0.0.1:9", "h", python, 5,
                      version, 0, "", b"")


    def bad_messages(ident, cluster):
        bomb = pickle.dumps(Bomb())
        foreign = "f" * len(cluster)
        return {
            "garbage": [b"\\xc1garbage"],
            "empty": [b""],
            "random": [os.urandom(300)],
            "deep-nesting": [b"\\x91" * 60000],
            "huge-declared-array": [b"\\xdd\\xff\\xff\\xff\\xff"],
            "header-70KiB": [b"\\x00" * (70 * 1024)],
            "str-field-70KiB": [header(V, 3, "x" * (70 * 1024))],
            "map-not-list": [msgpack.packb({"v": 1, "t": 3}, use_bin_type=True)],
            "version-99": [header(99, 3, 1)],
            "ping-without-hello": [header(V, 11)],
            "bye-without-hello": [header(V, 12)],
            "version-str": [header("1", 3, 1)],
            "version-float": [header(float(V), 3, 1)],
            "version-bool": [header(True, 3, 1)],
            "type-unknown": [header(V, 99)],
            "type-negative": [header(V, -1)],
            "type-str": [header(V, "3", 1)],
            "steal-req-str": [header(V, 3, "x")],
            "steal-req-negative": [header(V, 3, -5)],
            "steal-req-bool": [header(V, 3, True)],
            "steal-no-fields": [header(V, 3)],
            "steal-extra-field": [header(V, 3, 1, 2)],
            "hello-wrong-types": [header(V, 1, 5, b"x", "r", 1, "h", "py", 5, "v", 0, "", b"")],
            "hello-node-role": [header(V, 1, cluster, ident, 1, "tcp://127.0.0.1:9", "h",
                                       "cpython-%d.%d" % sys.version_info[:2], 5,
                                       p2pscoop.__version__, 1, "", b"")],
            "hello-other-protocol": [header(V + 1, 1, cluster, ident, 1, "tcp://127.0.0.1:9",
                                            "h", "cpython-3.11", 5, "0.1.0", 0, "", b"")],
            "hello-long-cluster": [hello("c" * 2000, ident)],
            "hello-foreign-cluster": [hello(foreign, ident)],
            "hello-other-incarnation": [hello(cluster, os.urandom(16))],
            "hello-other-python": [hello(cluster, ident, python="cpython-2.7")],
            "hello-other-version": [hello(cluster, ident, version="0.0.0")],
            "steal-without-hello": [header(V, 3, 1)],
            "give-pickle-without-hello": [header(V, 4, 1, [[ident, 0, 0, 1, True]]), bomb],
            "results-pickle-without-hello": [header(V, 5, [[0, 0, 0]]), bomb],
            "const-pickle-without-hello": [header(V, 7, "name"), bomb],
            "shutdown-without-hello": [header(V, 8, 0)],
            "welcome-without-hello": [header(V, 2, 1, [])],
            "many-frames": [header(V, 3, 1)] + [b"frame"] * 500,
            "payload-count-mismatch": [header(V, 4, 1, [[ident, 0, 0, 1, True]])],
        }


    def peer_info():
        return [p2pscoop.worker.decode(), context.current().comm.bad_frames]


    if __name__ == "__main__":
        cluster = context.current().cluster
        before = on_every_peer(peer_info)
        ident = os.urandom(16)
        messages = bad_messages(ident, cluster)
        flood = 2000
        ctx = zmq.Context()
        for address, _ in before.values():
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.IDENTITY, ident)
            sock.setsockopt(zmq.LINGER, 10_000)
            sock.connect("tcp://" + address)
            for frames in messages.values():
                sock.send_multipart(frames)
            for i in range(flood):  # many frames, one after another
                sock.send(b"\\xc1" + i.to_bytes(4, "big"))
            sock.close()
        ctx.term()  # returns once everything was sent (linger)
        expected = len(messages) + flood
        report("EXPECTED", expected)
        deadline = time.monotonic() + 30  # liveness bound for the peers to read them all
        while True:
            after = on_every_peer(peer_info)
            counted = {pid: after[pid][1] - before[pid][1] for pid in before}
            if min(counted.values()) >= expected or time.monotonic() > deadline:
                break
        report("COUNTED", sorted(counted.values()))
        report("BOMB_EXPLODED", os.path.exists(BOMB_PATH))
        check_still_works(list(before))
"""


def test_malformed_frames_are_dropped_and_counted_and_the_peers_go_on(tmp_path):
    bomb = tmp_path / "bomb-exploded"
    res = run_program(tmp_path, FRAMES, args=[bomb])
    assert res.code == 0, res
    expected = res.report("EXPECTED")
    assert res.report("COUNTED") == [expected] * 3, res  # each one counted, on every peer
    assert res.report("BOMB_EXPLODED") is False and not bomb.exists(), res
    assert_still_works(res)
    # the log is rate-limited: not one line per bad frame
    assert len(res.stderr.splitlines()) < 100, res
