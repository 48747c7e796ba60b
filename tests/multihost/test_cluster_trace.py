"""``--trace`` over a cluster: the peers that nodes on other hosts start for the program
(SERVE carries the program's telemetry settings) report to its origin, so the trace shows
every host's peers and every unit of the map, wherever it ran."""

import json

import pytest

import conftest
from _cluster import Node, Program, Workspace, check_results, hosts_of

TASKS = 200


@pytest.fixture
def lab3():
    yield from conftest._lab(3)


def test_a_traced_cluster_run_shows_the_units_of_every_host(lab3, tmp_path):
    ws = Workspace(tmp_path)
    nodes = [Node(lab3, "h1", ws, zeroconf=False), Node(lab3, "h2", ws, zeroconf=False)]
    addresses = [node.wait_ready() and node.hostport for node in nodes]
    out = ws.run / "cluster.trace.json"
    prog = Program(lab3, "h3", ws, ws.program("a"), "a", TASKS, nodes=addresses,
                   zeroconf=False, opts={"--need": 3},
                   launcher_args=("--trace", out))
    assert prog.wait() == 0, prog.stderr()
    results = prog.results()
    check_results(results, TASKS)
    ran_on = hosts_of(results)
    events = json.loads(out.read_text())["traceEvents"]
    hosts = {e["pid"]: e["args"]["name"] for e in events
             if e["ph"] == "M" and e["name"] == "process_name"}
    assert sorted(hosts.values()) == ["host h1", "host h2", "host h3"], hosts
    complete = [e for e in events if e["ph"] == "X"]
    assert len(complete) == TASKS
    assert {hosts[e["pid"]].split()[1] for e in complete} == ran_on
    assert f"{TASKS} task(s) on 3 peer(s)" in prog.stderr()
