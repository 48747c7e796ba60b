"""Telemetry's pure parts: the TELEMETRY message through the real codec, the node's routing
of it, the origin's collector (snapshot as docs/dashboard.md says, bad reports dropped and
counted) and the Chrome trace built from it. Real runs are in tests/integration/test_trace.py.
"""

import json

import msgpack
import pytest

from p2pscoop.core import commands as C
from p2pscoop.core import messages as M
from p2pscoop.core.config import NodeConfig
from p2pscoop.core.errors import RemoteProtocolError
from p2pscoop.core.events import PeerUp, Received
from p2pscoop.core.membership import Identity
from p2pscoop.core.node import NodeState
from p2pscoop.runtime import telemetry, trace

A, B, C_ = b"a" * 16, b"b" * 16, b"c" * 16
T0 = 1_700_000_000_000_000  # µs since the epoch


def report(done=0, runs=(), steals=(), final=False, host="h1", pid=10, running="",
           queue=0, known=0, idle=0):
    """A TELEMETRY as a peer sends it, decoded by the real codec."""
    msg = M.Telemetry(host, pid, queue, running, done, known, 1, 1, 0, 0, idle, final,
                      [list(r) for r in runs], [list(s) for s in steals])
    return M.decode(M.encode(msg))


def test_config_fields_default_off_and_travel_as_json():
    assert not NodeConfig().telemetry and not NodeConfig().trace
    cfg = NodeConfig(telemetry=True, trace=True)
    assert NodeConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("bad", [
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", 1],  # too few fields
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", -1, 0, "", 0, 0, 0, 0, 0, 0, 0, False, [], []],
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, False,
     [[0, b"short", 0, 1, "f"]], []],  # not a peer id
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, False,
     [], [[A, 0, 5]]],  # a steal of no units
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", 1, 0, "x" * 600, 0, 0, 0, 0, 0, 0, 0, False,
     [], []],  # a name too long
    [M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, False,
     [[0, A, 0, 1, "f"]] * (M.MAX_LIST + 1), []],  # too many rows
])
def test_a_malformed_report_is_refused_by_the_codec(bad):
    with pytest.raises(RemoteProtocolError):
        M.decode([msgpack.packb(bad, use_bin_type=True)])


def test_the_origin_takes_reports_others_pass_them_on_towards_it():
    origin = NodeState(A, identity=Identity(A, rank=0))
    origin.handle(PeerUp(B), 0.0)
    msg = report(done=1)
    assert origin.handle(Received(B, msg), 0.0) == [C.Report(B, msg)]
    # a worker not linked to the origin's view passes its links' reports on to the link
    # nearest to the origin, naming the reporting peer (``src``); the origin files it so
    worker = NodeState(B, identity=Identity(B, rank=1))
    worker.handle(PeerUp(A), 0.0)
    worker.handle(PeerUp(C_), 0.0)
    assert worker.handle(Received(C_, report(done=2)), 0.0) == []  # no way known yet
    assert worker.roster_lost == 1
    worker.handle(Received(A, M.Ping([], A, 1, 0, 3)), 0.5)  # A is the origin
    out = worker.handle(Received(C_, report(done=2)), 1.0)
    assert [(type(c), c.peer, c.msg.src, c.msg.done) for c in out] == [
        (C.SendMsg, A, C_, 2)]
    passed = M.decode(M.encode(out[0].msg))
    assert origin.handle(Received(B, passed), 1.0) == [C.Report(C_, passed)]
    assert worker.counters.bad_messages == 0


def test_snapshot_has_the_schema_keys_and_totals():
    col = telemetry.Collector("prog.py", "aaaaaaaa")
    assert col.ingest(A, report(done=3, known=10, running="fib", queue=2))
    assert col.ingest(B, report(done=4, host="h2", pid=11))
    snap = col.snapshot()
    assert set(snap) == {"program", "origin", "started", "now", "peers", "hosts", "totals",
                         "throughput", "programs"}
    assert snap["program"] == "prog.py" and snap["origin"] == "aaaaaaaa"
    assert [p["peer"] for p in snap["peers"]] == [A.hex()[:8], B.hex()[:8]]
    row = snap["peers"][0]
    assert set(row) == {"peer", "host", "pid", "alive", "queue", "running", "units_done",
                        "steals_sent", "steals_granted", "steals_denied",
                        "units_redispatched", "age"}
    assert (row["running"], row["queue"], row["alive"]) == ("fib", 2, True)
    assert snap["peers"][1]["running"] is None
    assert snap["hosts"] == ["h1", "h2"]
    assert snap["totals"] == {"units_done": 7, "units_known": 10, "steals_sent": 2,
                              "steals_granted": 2, "steals_denied": 0,
                              "units_redispatched": 0}
    assert snap["programs"] == [{"program": "prog.py", "peers": 2}]
    json.dumps(snap)  # JSON-able
    col.gone(B)
    assert not col.snapshot()["peers"][1]["alive"]


def test_units_known_is_never_below_units_done_when_reports_cross():
    """The owner reported 108 units known; a worker's newer report has 109 done (the
    owner's next report is on its way): the total known shows 109, not 108."""
    col = telemetry.Collector("prog.py", "aaaaaaaa")
    assert col.ingest(A, report(done=50, known=108))
    assert col.ingest(B, report(done=59, host="h2", pid=11))
    assert col.snapshot()["totals"]["units_known"] == 109


def test_a_bad_report_is_dropped_and_counted_never_raised():
    col = telemetry.Collector("p", "a")
    assert col.ingest(A, report(done=5, runs=[(0, A, T0, T0 + 10, "f")]))
    # the codec lets these through; the collector knows better
    assert not col.ingest(A, report(done=6, runs=[(1, A, T0 + 10, T0, "f")]))  # ends first
    assert not col.ingest(A, report(done=2))  # its count went down
    assert not col.ingest(A, M.Hint())  # not a report at all
    assert col.bad_reports == 3 and col.reports == 1
    assert col.snapshot()["totals"]["units_done"] == 5 and len(col.runs) == 1


def test_a_final_report_marks_the_peer_gone():
    col = telemetry.Collector("p", "a")
    col.ingest(A, report(done=1, running="f"))
    col.ingest(A, report(done=2, final=True))
    row = col.snapshot()["peers"][0]
    assert (row["alive"], row["running"], row["units_done"]) == (False, None, 2)


def test_chrome_trace_has_one_complete_event_per_run_and_names_every_peer():
    col = telemetry.Collector("p", A.hex()[:8])
    col.ingest(A, report(done=2, runs=[(0, A, T0, T0 + 100, "fib"), (1, A, T0 + 20, T0 + 50,
                                                                      "fib")],
                         steals=[(B, 3, T0 + 30)]))
    col.ingest(B, report(done=1, host="h2", pid=11, runs=[(1, A, T0 + 40, T0 + 90, "leaf")]))
    col.ingest(C_, report(host="h2", pid=12, steals=[(b"z" * 16, 1, T0 + 60)]))
    col.finish()
    events = col.trace_events()
    json.dumps(events)
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == 3
    assert {(e["name"], e["args"]["job"]) for e in complete} == {("fib", 0), ("fib", 1),
                                                                 ("leaf", 1)}
    assert min(e["ts"] for e in complete) == 0 and all(e["dur"] >= 0 for e in complete)
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
             if e["name"] == "thread_name"}
    hosts = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert sorted(hosts.values()) == ["host h1", "host h2"]
    assert len(names) == 3 and any("(origin)" in n for n in names.values())
    assert {(e["pid"], e["tid"]) for e in complete} <= set(names)
    steals = [e for e in events if e["ph"] == "i"]
    assert [e["args"]["units"] for e in steals] == [3, 1]
    flows = [e for e in events if e["ph"] in "sf"]
    assert len(flows) == 2  # the thief z never reported: no arrow to nowhere


def test_summary_counts_busy_time_as_the_union_of_runs():
    col = telemetry.Collector("p", "a")
    # a parent unit waits for its child: the two overlap, busy is 100 µs, not 130
    col.ingest(A, report(done=2, runs=[(0, A, T0, T0 + 100, "parent"),
                                       (1, A, T0 + 10, T0 + 40, "child")]))
    col.ingest(B, report(done=0, host="h2", idle=1))  # it slept 1 µs with nothing to run
    col.finish()
    s = col.summary()
    assert s["tasks"] == 2 and s["steals"] == 0
    a, b = s["peers"]
    assert a["tasks"] == 2 and a["busy"] == pytest.approx(100e-6) and a["idle"] == 0
    assert b["tasks"] == 0 and b["busy"] == 0 and b["idle"] == pytest.approx(min(1e-6,
                                                                                s["wall"]))
    text = trace.summary_text(s)
    assert "2 task(s) on 2 peer(s)" in text and a["peer"] in text


def test_trace_file_is_chrome_json(tmp_path):
    col = telemetry.Collector("p", "a")
    col.ingest(A, report(done=1, runs=[(0, A, T0, T0 + 5, "f")]))
    path = tmp_path / "t.json"
    summary = trace.write(col, str(path))
    doc = json.loads(path.read_text())
    assert doc["displayTimeUnit"] == "ms" and summary["tasks"] == 1
    assert [e["ph"] for e in doc["traceEvents"] if e["ph"] == "X"] == ["X"]


def test_a_report_too_large_for_one_header_is_split():
    # 256 runs of 96 four-byte characters cannot fit in one 64 KiB header
    name = "\U0001F600" * M.TELEMETRY_NAME
    runs = [[i, A, T0, T0 + 1, name] for i in range(M.TELEMETRY_ROWS)]
    msg = M.Telemetry("h", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, True, runs, [])
    with pytest.raises(ValueError):
        M.encode(msg)
    parts = [M.decode(frames) for frames in telemetry._encode(msg)]
    assert len(parts) > 1
    assert [r for p in parts for r in p.runs] == runs
    assert [p.final for p in parts] == [False] * (len(parts) - 1) + [True]


def test_function_names_are_qualified_and_bounded():
    import functools

    class K:
        def method(self):
            pass

    assert telemetry.fn_name(K.method).endswith("K.method")
    assert telemetry.fn_name(functools.partial(len)) == "len"
    assert len(telemetry.fn_name(type("x" * 500, (), {}))) == M.TELEMETRY_NAME
