"""``--trace FILE`` and the telemetry under it, in real runs of the launcher.

* a nested program on 3 peers: the file is Chrome trace JSON with exactly one complete
  event per unit run, names every peer (by pid) and host, shows steals; the summary is on
  stderr;
* with telemetry off no peer has a recorder and the origin receives no TELEMETRY (a spy on
  the origin's comm path counts what arrives by type);
* bad reports sent by a real worker over the real mesh (a malformed frame, a report that
  decodes but cannot be right) are dropped and counted, and the run ends normally;
* a path that cannot be written is a usage error.
"""

import json

import pytest

from launcher_helpers import launcher, run, write_program

NESTED = """
    def leaf(i):
        time.sleep(0.002)  # long enough that idle peers steal
        return 1

    def tree(depth):
        if depth == 0:
            return leaf(0)
        fs = [futures.submit(tree, depth - 1) for _ in range(3)]
        return sum(f.result() for f in fs)

    if __name__ == "__main__":
        leaves = tree(5)
        report("LEAVES", leaves)
        report("ORIGIN", os.getpid())
"""


@pytest.mark.timeout(120)
def test_a_nested_run_writes_a_trace_with_every_unit_and_the_steals(tmp_path):
    out = tmp_path / "run.trace.json"
    res = run(launcher("--trace", out, write_program(tmp_path, NESTED), n=3), tmp_path)
    assert res.code == 0, res
    assert res.report("LEAVES") == 3 ** 5
    units = sum(3 ** d for d in range(1, 6))  # every submit of the tree (the root is not one)
    doc = json.loads(out.read_text())
    assert doc["displayTimeUnit"] == "ms"
    events = doc["traceEvents"]
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == units, res
    assert len({(e["args"]["owner"], e["args"]["job"]) for e in complete}) == units
    assert {e["name"] for e in complete} == {"tree"}
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events
               if e["ph"] == "M" and e["name"] == "thread_name"}
    assert len(threads) == 3
    assert sum("(origin)" in name for name in threads.values()) == 1
    origin = next(n for n in threads.values() if "(origin)" in n)
    assert f"(pid {res.report('ORIGIN')})" in origin
    assert {(e["pid"], e["tid"]) for e in complete} == set(threads)  # every peer worked
    assert [e for e in events if e["ph"] == "M" and e["name"] == "process_name"]
    steals = [e for e in events if e["ph"] == "i" and e["cat"] == "steal"]
    assert steals and all(e["args"]["units"] >= 1 for e in steals)
    assert f"{units} task(s) on 3 peer(s)" in res.stderr, res
    assert f"{len(steals)} steal(s)" in res.stderr
    assert "idle" in res.stderr and str(out) in res.stderr


SPY = """
    import collections
    from p2pscoop.core import messages as M
    from p2pscoop.runtime import telemetry

    def spy_on_origin():
        peer = context.current()
        seen = collections.Counter()
        real = peer.handle_from_comm

        def handle(event):  # the real handler still runs: this only counts
            msg = getattr(event, "msg", None)
            if msg is not None:
                seen[type(msg).__name__] += 1
            real(event)

        peer.handle_from_comm = handle
        return seen

    def recorder_here(_):
        time.sleep(0.05)
        return context.current().recorder is not None

    if __name__ == "__main__":
        seen = spy_on_origin()
        flags = on_workers(recorder_here, [(i,) for i in range(40)])
        time.sleep(1.2)  # more than two report intervals (0.5 s) of every peer
        report("WORKER_RECORDERS", sorted({f.result() for f in flags}))
        report("ORIGIN_RECORDER", context.current().recorder is not None)
        report("COLLECTOR", telemetry.collector() is not None)
        report("SEEN", dict(seen))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("traced", [False, True], ids=["off", "on"])
def test_telemetry_off_sends_nothing_and_on_reports(tmp_path, traced):
    args = ["--trace", tmp_path / "t.json"] if traced else []
    res = run(launcher(*args, write_program(tmp_path, SPY), n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("WORKER_RECORDERS") == [traced]
    assert res.report("ORIGIN_RECORDER") is traced and res.report("COLLECTOR") is traced
    seen = res.report("SEEN")
    assert seen.get("Results"), seen  # the spy did see the run's traffic
    if traced:
        assert seen.get("Telemetry", 0) >= 2, seen
    else:
        assert "Telemetry" not in seen, seen


BAD_REPORTS = """
    import msgpack
    from p2pscoop.core import messages as M
    from p2pscoop.runtime import telemetry

    def send_bad(_):
        peer = context.current()
        origin = peer.node.origin_way()  # (n=2: the origin itself)
        # a frame the codec refuses: a TELEMETRY with a string where the pid goes
        bad = msgpack.packb([M.PROTOCOL_VERSION, M.Telemetry.TYPE, "h", "pid", 0, "", 0, 0,
                             0, 0, 0, 0, 0, False, [], []], use_bin_type=True)
        peer.comm.post(origin, [bad])
        # a report the codec accepts but that cannot be right: a run that ends first
        wrong = M.Telemetry("h", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, False,
                            [[0, peer.me, 2_000_000, 1_000_000, "f"]], [])
        peer.comm.post(origin, M.encode(wrong))
        return os.getpid()

    if __name__ == "__main__":
        on_workers(send_bad, [(0,)])[0].result()
        col = telemetry.collector()
        peer = context.current()
        for _ in range(2000):  # a liveness bound: the frames are on their way
            if col.bad_reports and peer.comm.bad_frames:
                break
            time.sleep(0.01)
        report("BAD", [col.bad_reports, peer.comm.bad_frames])
        report("DONE", sum(futures.map(abs, range(-50, 50))))
"""


@pytest.mark.timeout(120)
def test_bad_reports_from_a_peer_are_dropped_and_counted(tmp_path):
    res = run(launcher("--trace", tmp_path / "t.json", write_program(tmp_path, BAD_REPORTS),
                       n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("BAD") == [1, 1], res
    assert res.report("DONE") == 2500
    assert "1 malformed report(s) dropped" in res.stderr
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["missing/dir/t.json", "."])
def test_a_trace_file_that_cannot_be_written_is_a_usage_error(tmp_path, where):
    prog = write_program(tmp_path, "print('ran')")
    res = run(launcher("--trace", tmp_path / where, prog, n=1), tmp_path)
    assert res.code == 2, res
    assert "--trace" in res.stderr and "ran" not in res.stdout
