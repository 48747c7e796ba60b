"""Attacks on cluster mode: clients without the cluster's key against a node and against a
running program's origin reach no user code, and the cluster keeps working.

Three lab hosts: a node (``p2pscoop join -n 1``) on h1; the attacker on h2, which also runs
a recording TCP relay in front of the node; a program on h3 whose origin asks the node
*through the relay*, so the relay captures the bytes of a legit client (the launcher's
HELLO + SERVE), and then of ``p2pscoop status``. The origin's address is read from the
node's ``-v`` log line of its peer joining the origin.

The attacker (``_attacker.py``) sends, to the node and to the origin, pickles that create a
sentinel when unpickled: from plain ZeroMQ (NULL), CURVE with the cluster's public key and
a random client key (Stonehouse), CURVE of another secret, raw TCP garbage, a ZMTP stream
with a pickle frame, oversize frames, and the captured legit bytes replayed. A last test
plays a holder of the transport key that skips the HELLO (defence in depth).

Every test checks: no sentinel (a control proves the pickles do create one when loaded),
the program's maps around the attacks give every result exactly once, and no process of
ours crashed. No test asserts a duration.
"""

import json
import pickle
import time

import pytest

import _attacker
import _chaos
from _chaos import PY, Cluster, check_exactly_once, check_round, env, executions

ATTACKER = _attacker.__file__
TASKS = 120
DELAY = 0.02
RELAY_PORT = 47000
JOINED_ORIGIN = r"\(rank 0, host h3, (tcp://[\d.]+:\d+)\) joined"
#: what a frame that reached the app layer without a valid HELLO is logged as
APP_REJECTS = ("before a valid HELLO", "malformed frame", "refused HELLO")
ZAP_REFUSED = "handshake from"


@pytest.fixture
def lab3():
    yield from _chaos.lab(3)


@pytest.fixture
def setup(lab3, tmp_path):
    """A node on h1, a recording relay to it on h2, and a 2-round program on h3 that found
    the node through the relay and has finished round 1."""
    c = Cluster(lab3, tmp_path)
    c.node_proc = node = c.node("h1", 1)
    c.capture = tmp_path / "capture"
    c.capture.mkdir()
    c.relay = f"{lab3['h2'].ip}:{RELAY_PORT}"
    relay = c.start("h2", [PY, ATTACKER, "relay", c.relay, node.address.removeprefix("tcp://"),
                           str(c.capture)], "relay")
    relay.wait_line("^READY$", stream="out")
    c.prog, c.run = c.program("h3", [c.relay], TASKS, DELAY, want=2, rounds=2)
    c.prog.wait_line(r"^size 2$", stream="out")
    check_round(c.prog, TASKS, {"h1", "h3"}, 1)
    c.origin = node.wait_line(JOINED_ORIGIN).group(1)
    c.program_id = node.wait_line(r"serving program (\w+) of").group(1)
    c.sentinels = tmp_path / "sentinels"
    c.sentinels.mkdir()
    # the control: these pickles do create a sentinel when something loads them
    pickle.loads(_attacker.bomb(str(c.sentinels), "control", "x"))
    assert (c.sentinels / "sentinel-control-x").is_dir()
    (c.sentinels / "sentinel-control-x").rmdir()
    yield c
    print(c.report())


def attack(c, targets, *extra):
    """Run the attacker against each target (in parallel); its reports by target."""
    procs = {name: c.start("h2", [PY, ATTACKER, "attack", name,
                                  address.removeprefix("tcp://"), str(c.sentinels),
                                  str(c.secret), c.name, *extra], f"attacker-{name}")
             for name, address in targets.items()}
    reports = {}
    for name, proc in procs.items():
        assert proc.wait(180) == 0, proc.text()
        assert proc.out[-1] == "DONE", proc.text()
        reports[name] = {r["variant"]: r for r in map(json.loads, proc.out[:-1])}
    return reports


def captured(c, k):
    """The client's bytes of the relay's k-th connection (written once it has ended)."""
    path = c.capture / f"c{k}.bin"
    deadline = time.monotonic() + 30
    while not path.exists():
        if time.monotonic() >= deadline:
            pytest.fail(f"the relay's connection {k} never ended:\n{c.report()}")
        time.sleep(0.05)
    return path


def lines(proc, markers):
    return [x for x in proc.err if any(m in x for m in markers)]


def assert_no_sentinel(c):
    assert sorted(p.name for p in c.sentinels.iterdir()) == [], "a pickle was loaded"


def assert_no_crash(c):
    for proc in c.procs:
        assert not proc.crashes(), f"{proc.name} crashed:\n{proc.text()}"


def test_unauthenticated_clients_reach_no_user_code(setup, lab3):
    c, node = setup, setup.node_proc
    # a legit `status` through the relay: the second capture (the first is the SERVE)
    st = lab3.run("h2", [PY, "-m", "p2pscoop", "status", *c.args(), "--nodes", c.relay,
                         "--no-zeroconf", "--json"], env=env(), timeout=60)
    assert st.returncode == 0, st.stderr
    report = json.loads(st.stdout)
    assert [p["program"] for p in report["programs"]] == [c.program_id]
    serve, status = captured(c, 1), captured(c, 2)
    assert serve.stat().st_size > 0 and status.stat().st_size > 0

    reports = attack(c, {"node": node.address, "origin": c.origin},
                     "--replay", str(serve), str(status))

    assert_no_sentinel(c)
    for target, report in reports.items():
        for variant, outcome in report.items():
            if "handshakes_ok" in outcome:  # a ZeroMQ client: never got in, never answered
                assert outcome["handshakes_ok"] == 0, (target, variant, outcome)
                assert outcome["replies"] == [], (target, variant, outcome)
        for variant in ("oversize-curve", "oversize-null"):
            assert report[variant]["closed"], f"{target} kept reading a 1 TiB frame"
        for k in (1, 2):  # a replay gets less back than the legit client did: no answer
            legit = (c.capture / f"s{k}.bin").stat().st_size
            outcome = report[f"replay-c{k}.bin"]
            assert outcome["received"] < legit, (target, k, outcome, legit)
    # nothing reached the app layer; the key checks refused the CURVE clients and said so
    for proc in (node, c.prog):
        assert lines(proc, APP_REJECTS) == [], proc.text()
        assert lines(proc, [ZAP_REFUSED]), f"{proc.name} logged no refused handshake"

    # the cluster keeps working: the program's next map, then a new program
    (c.run / "release2").write_text("")
    check_exactly_once(c.prog, TASKS, {"h1", "h3"}, rounds=2)
    assert set(executions(c.run)) == {"h1", "h3"}

    # the SERVE replayed once the program has ended starts nothing
    attack(c, {"node-after": node.address}, "--no-outsiders", "--replay", str(serve))
    again, d = c.program("h3", [node], TASKS, DELAY, want=2)
    check_exactly_once(again, TASKS, {"h1", "h3"})
    assert "h1" in executions(d), "the node served the new program"
    served = [x for x in node.err if "serving program" in x]
    assert len(served) == 2 and sum(c.program_id in x for x in served) == 1, served
    assert_no_sentinel(c)
    assert node.alive()
    assert_no_crash(c)


def test_a_key_holder_without_a_valid_hello_gets_no_pickle_read(setup):
    """Defence in depth: a client that passes CURVE (it holds the cluster key) but never
    sends a valid HELLO has every frame dropped before any pickle is loaded."""
    c, node = setup, setup.node_proc
    reports = attack(c, {"node": node.address, "origin": c.origin}, "--keyholder",
                     "--no-outsiders")

    assert_no_sentinel(c)
    for target, report in reports.items():
        assert report["keyholder"]["handshakes_ok"] >= 1, f"{target}: the key was refused"
    for proc in (node, c.prog):  # its frames reached the mesh and were dropped there
        assert lines(proc, APP_REJECTS), f"{proc.name} logged no rejected frame"

    (c.run / "release2").write_text("")
    check_exactly_once(c.prog, TASKS, {"h1", "h3"}, rounds=2)
    assert node.alive()
    assert_no_crash(c)
