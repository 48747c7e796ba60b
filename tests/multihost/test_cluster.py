"""Cluster mode across lab hosts: `p2pscoop join` nodes, programs run with --cluster, status.

Each test builds its own lab (network namespaces on a bridge; see netlab.py), starts nodes
on some hosts and a program on another, and reads where every task ran from the results
(each task returns its host's name) and from the nodes' logs (``-v``). Nodes never see the
programs' directory (``_cluster.Node`` hides it behind a tmpfs), so whatever they run came
over the wire. Programs wait for their peers with ``--need`` (``p2pscoop.SIZE``) and the
tests hold them at gates to look at the cluster while they run: readiness, never sleeps.
No test asserts a duration; waits are bounded only to turn a hang into a failure.
"""

import pytest

import p2pscoop

import conftest
from _cluster import (OTHER_VERSION, VERSION_WRAPPER, Node, Program, Workspace, by_host,
                      check_results, hosts_of, status, status_until, wait_until)

TASKS = 400


@pytest.fixture
def lab3():
    """Three hosts, h1..h3, on one switch."""
    yield from conftest._lab(3)


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path)


def serving(node: Node) -> list[str]:
    return [line for line in node.log().splitlines() if "serving program" in line]


def programs_on(rows, host) -> list[dict]:
    return by_host(rows)[host]["programs"]


def test_zeroconf_nodes_on_two_hosts_run_a_program_from_a_third(lab3, ws):
    nodes = [Node(lab3, "h1", ws), Node(lab3, "h2", ws)]
    for node in nodes:
        node.wait_ready()
    rows = status_until(lab3, "h3", ws, lambda rows: {r["host"] for r in rows} == {"h1", "h2"},
                        "status to list both nodes")
    assert {r["address"] for r in rows} == {n.address for n in nodes}
    assert all(r["programs"] == [] and r["cluster"] == "mhlab" for r in rows)

    prog = Program(lab3, "h3", ws, ws.program("a"), "a", TASKS,
                   opts={"--need": 3, "--hold": ws.run})
    prog.wait_file(ws.run / "done-a", "the end of the map")
    rows = status_until(lab3, "h3", ws,
                        lambda rows: all(len(r["programs"]) == 1 for r in rows)
                        and len(rows) == 2, "status to list the program on both nodes")
    for host in ("h1", "h2"):
        assert programs_on(rows, host)[0]["peers"] == 1
    program_id = programs_on(rows, "h1")[0]["program"]
    assert programs_on(rows, "h2")[0]["program"] == program_id
    for node in nodes:  # the program the node says it serves is the one status shows
        assert [line.split("serving program ")[1].split()[0]
                for line in serving(node)] == [program_id]
    (ws.run / "release").touch()

    assert prog.wait() == 0, prog.stderr()
    results = prog.results()
    check_results(results, TASKS)
    assert {"h1", "h2"} <= hosts_of(results) <= {"h1", "h2", "h3"}
    for node in nodes:
        assert len(serving(node)) == 1
        assert node.stop() == 0


def test_static_node_list_without_zeroconf(lab3, ws):
    nodes = [Node(lab3, "h1", ws, zeroconf=False), Node(lab3, "h2", ws, zeroconf=False)]
    addresses = [node.wait_ready() and node.hostport for node in nodes]
    rows = status(lab3, "h3", ws, nodes=addresses, zeroconf=False)
    assert sorted(r["host"] for r in rows) == ["h1", "h2"]

    prog = Program(lab3, "h3", ws, ws.program("a"), "a", TASKS, nodes=addresses,
                   zeroconf=False, opts={"--need": 3, "--hold": ws.run})
    prog.wait_file(ws.run / "done-a", "the end of the map")
    rows = status(lab3, "h3", ws, nodes=addresses, zeroconf=False)
    assert [len(programs_on(rows, h)) for h in ("h1", "h2")] == [1, 1]
    (ws.run / "release").touch()

    assert prog.wait() == 0, prog.stderr()
    results = prog.results()
    check_results(results, TASKS)
    assert {"h1", "h2"} <= hosts_of(results)
    for node in nodes:
        assert len(serving(node)) == 1


def test_a_node_of_another_cluster_with_the_same_name_gets_no_task(lab3, ws):
    """h2 runs a node of cluster "mhlab" with another secret. The program finds it neither by
    zeroconf (other fingerprint) nor when given its address (CURVE refuses the key)."""
    good = Node(lab3, "h1", ws)
    foreign = Node(lab3, "h2", ws, secret=ws.make_secret("other-secret"), name="foreign")
    good.wait_ready()
    foreign.wait_ready()

    prog = Program(lab3, "h3", ws, ws.program("a"), "a", TASKS, nodes=[foreign.hostport],
                   opts={"--need": 2, "--gate": ws.run})
    prog.wait_file(ws.run / "ready-a", "the good node's peer to join")
    # the static ask of the foreign node has given up before the map starts
    wait_until(lambda: foreign.hostport in prog.stderr() or prog.proc.poll() is not None,
               "the program to give up on the foreign node")
    (ws.run / "go").touch()

    assert prog.wait() == 0, prog.stderr()
    results = prog.results()
    check_results(results, TASKS)
    assert "h2" not in hosts_of(results)
    assert "h1" in hosts_of(results)
    assert serving(foreign) == []
    assert len(serving(good)) == 1
    warning = [line for line in prog.stderr().splitlines() if foreign.hostport in line]
    assert warning and "WARNING" in warning[0], prog.stderr()
    assert [r["host"] for r in status(lab3, "h3", ws)] == ["h1"]


def test_a_version_mismatch_is_refused_with_both_versions_on_both_sides(lab2, ws):
    wrapper = ws.run / "other_version.py"
    wrapper.write_text(VERSION_WRAPPER)
    node = Node(lab2, "h1", ws, wrapper=wrapper)
    node.wait_ready()
    here = p2pscoop.__version__
    assert here != OTHER_VERSION

    prog = Program(lab2, "h2", ws, ws.program("a"), "a", 100, n=2,
                   opts={"--need": 2, "--gate": ws.run})
    wait_until(lambda: "refused" in prog.stderr() or prog.proc.poll() is not None,
               "the program to hear the node's refusal")
    wait_until(lambda: "refused" in node.log(), "the node to log its refusal")
    (ws.run / "go").touch()
    assert prog.wait() == 0, prog.stderr()

    origin_says = [l for l in prog.stderr().splitlines() if "refused" in l]
    node_says = [l for l in node.log().splitlines() if "refused" in l]
    assert len(origin_says) == 1 and len(node_says) == 1, (origin_says, node_says)
    # one line on the node: the client's request after its refused HELLO is no new warning
    node_warnings = [l for l in node.log().splitlines() if "WARNING" in l]
    assert node_warnings == node_says, node.log()
    assert "host 'h2'" in node_says[0]  # says which machine it refused
    # each side names both versions, from its own point of view
    assert f"p2pscoop {OTHER_VERSION} there, {here} here" in origin_says[0]
    assert node.hostport in origin_says[0]
    assert f"p2pscoop {here} there, {OTHER_VERSION} here" in node_says[0]
    assert serving(node) == []
    results = prog.results()
    check_results(results, 100)
    assert hosts_of(results) == {"h2"}  # the origin and its local peer did it all
    assert node.stop() == 0


def test_two_programs_at_once_each_with_its_own_utils_module(lab3, ws):
    nodes = [Node(lab3, "h1", ws), Node(lab3, "h2", ws)]
    for node in nodes:
        node.wait_ready()
    # same file names (prog.py, utils.py), different directories and contents
    offsets = {"a": 0, "b": 1_000_000}
    progs = {name: Program(lab3, "h3", ws, ws.program(name, offset), name, TASKS,
                           opts={"--need": 3, "--gate": ws.run, "--hold": ws.run})
             for name, offset in offsets.items()}
    for name, prog in progs.items():
        prog.wait_file(ws.run / f"ready-{name}", "its peers to join")
    rows = status_until(lab3, "h3", ws, lambda rows: len(rows) == 2,
                        "status to list both nodes")
    for host in ("h1", "h2"):  # both programs are served by both nodes at the same time
        assert len(programs_on(rows, host)) == 2
    (ws.run / "go").touch()  # both maps start together
    for name, prog in progs.items():
        prog.wait_file(ws.run / f"done-{name}", "the end of its map")
    (ws.run / "release").touch()

    for name, prog in progs.items():
        assert prog.wait() == 0, prog.stderr()
        results = prog.results()
        check_results(results, TASKS, offsets[name])  # its own utils, wherever it ran
        assert {"h1", "h2"} <= hosts_of(results)
    for node in nodes:
        assert len(serving(node)) == 2


PACKAGE_PROGRAM = '''
import json, sys

from p2pscoop import futures

from mylib.calc import work  # a package beside the program, nowhere on the nodes

if __name__ == "__main__":
    import p2pscoop, time
    need, n = int(sys.argv[1]), int(sys.argv[2])
    deadline = time.monotonic() + 120
    while p2pscoop.SIZE < need and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps(list(futures.map(work, range(n)))), flush=True)
'''

CALC = '''
import os, socket, time

from . import consts

def work(i):
    time.sleep(0.02)
    return [i, consts.scale(i), socket.gethostname(), os.path.exists(__file__)]
'''


def test_a_helper_package_beside_the_program_runs_on_nodes_that_lack_it(lab3, ws):
    where = ws.progs / "pkgprog"
    (where / "mylib").mkdir(parents=True)
    (where / "prog.py").write_text(PACKAGE_PROGRAM)
    (where / "mylib" / "__init__.py").write_text("")
    (where / "mylib" / "consts.py").write_text("def scale(i):\n    return 7 * i\n")
    (where / "mylib" / "calc.py").write_text(CALC)
    nodes = [Node(lab3, "h1", ws), Node(lab3, "h2", ws)]
    for node in nodes:
        node.wait_ready()

    prog = Program(lab3, "h3", ws, where / "prog.py", "3", TASKS)  # argv: need=3, n=TASKS
    assert prog.wait() == 0, prog.stderr()
    results = prog.results()
    assert sorted(r[0] for r in results) == list(range(TASKS))
    assert [r[1] for r in results] == [7 * i for i in range(TASKS)]
    # (seen once in CI: h2 ran none of the 400 tasks; the logs say why, if it comes back)
    assert {"h1", "h2"} <= hosts_of(results), "\n".join(
        [f"--- {n.host} ---\n{n.log()[-3000:]}" for n in nodes]
        + [f"--- program ---\n{prog.stderr()[-3000:]}"])
    # the nodes ran the helper's code without ever seeing its file; the origin sees it
    assert {r[3] for r in results if r[2] != "h3"} == {False}
    assert {r[3] for r in results if r[2] == "h3"} <= {True}


def test_when_a_program_ends_nothing_of_it_stays_on_the_nodes(lab3, ws):
    nodes = [Node(lab3, "h1", ws, n=2), Node(lab3, "h2", ws)]
    for node in nodes:
        node.wait_ready()
        assert node.others() == [] and node.workdirs() == []
    prog = Program(lab3, "h3", ws, ws.program("a"), "a", TASKS,
                   opts={"--need": 4, "--hold": ws.run})
    prog.wait_file(ws.run / "done-a", "the end of the map")
    # while it runs: its workers and its directory exist on each node
    assert len(nodes[0].others()) == 2 and len(nodes[1].others()) == 1
    assert len(nodes[0].workdirs()) == 1 and len(nodes[1].workdirs()) == 1
    rows = status(lab3, "h3", ws, nodes=[n.hostport for n in nodes], zeroconf=False)
    assert [p["peers"] for p in programs_on(rows, "h1")] == [2]
    (ws.run / "release").touch()
    assert prog.wait() == 0, prog.stderr()
    assert {"h1", "h2"} <= hosts_of(prog.results())

    for node in nodes:
        wait_until(lambda: node.others() == [], f"the workers on {node.host} to exit")
        wait_until(lambda: node.workdirs() == [], f"{node.host} to remove the program's dir")
        assert node.proc.poll() is None  # the node itself stays
        wait_until(lambda: "nothing of it is left here" in node.log(),
                   f"{node.host} to log the program's end")
    rows = status(lab3, "h3", ws, nodes=[n.hostport for n in nodes], zeroconf=False)
    assert sorted(r["host"] for r in rows) == ["h1", "h2"]
    assert all(r["programs"] == [] for r in rows)
    for node in nodes:
        assert node.stop() == 0
