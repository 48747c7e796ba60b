"""Zeroconf discovery between processes in throwaway network namespaces.

Every test makes its own namespaces (``p2ps-disc-<pid>-<n>-...``; see ``_netns.py``) and deletes
them, with everything running inside, when it ends. Zeroconf never runs in the root namespace.
Two agents in one lo-only namespace are two hosts on one isolated link; the cross-host and
partition tests use a bridge in a switch namespace. Waits are bounded only to turn a hang into a
failure; no test asserts a duration.
"""

import time

import pytest

try:  # tests/multihost as a package (if it gains an __init__.py) or as a rootdir (today)
    from ._netns import NetnsLab, unavailable_reason
except ImportError:
    from _netns import NetnsLab, unavailable_reason

_REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(_REASON is not None, reason=f"discovery netns tests: {_REASON}")

FP = "0123456789abcdef"
OTHER_FP = "fedcba9876543210"


def seen(name=None):
    return lambda e: e["event"] == "seen" and (name is None or e["name"] == name)


def gone(name):
    return lambda e: e["event"] == "gone" and e["name"] == name


def names_seen(agent):
    return [e["name"] for e in agent.snapshot() if e["event"] == "seen"]


@pytest.fixture
def lab():
    with NetnsLab() as lab:
        yield lab


@pytest.fixture
def bridged():
    with NetnsLab(bridged=True) as lab:
        yield lab


def test_nodes_on_two_hosts_see_each_other_not_themselves(bridged):
    ns_a, ip_a = bridged.add_host("h1")
    ns_b, ip_b = bridged.add_host("h2")
    a, b = bridged.agent(ns_a), bridged.agent(ns_b)
    a.call("start", fp=FP, id="node-a", address=f"tcp://{ip_a}:5001", host="alpha")
    b.call("start", fp=FP, id="node-b", address=f"{ip_b}:5002", host="beta")

    event = b.wait_for(seen("node-a"))
    assert event["address"] == f"tcp://{ip_a}:5001"
    assert event["host"] == "alpha"
    assert event["props"]["fp"] == FP and event["props"]["id"] == "node-a"
    assert event["props"]["host"] == "alpha" and type(event["props"]["v"]) is int
    event = a.wait_for(seen("node-b"))
    assert event["address"] == f"tcp://{ip_b}:5002" and event["host"] == "beta"

    assert set(names_seen(a)) == {"node-b"}
    assert set(names_seen(b)) == {"node-a"}


def test_another_clusters_node_is_never_reported(lab):
    ns, ip = lab.add_host("h")
    b, foreign, a = lab.agent(ns), lab.agent(ns), lab.agent(ns)
    b.call("start", fp=FP, id="node-b", address=f"{ip}:5002", host="beta")
    foreign.call("start", fp=OTHER_FP, id="node-x", address=f"{ip}:5009", host="xray")
    # A of B's cluster, announced after X: once B reports A it has handled X's announcement.
    a.call("start", fp=FP, id="node-a", address=f"{ip}:5001", host="alpha")
    b.wait_for(seen("node-a"))

    assert "node-x" not in names_seen(b)
    assert b.counts().get("foreign", 0) >= 1
    # X, for its part, hears B and A and reports neither.
    foreign.wait_counts(lambda counts: counts.get("foreign", 0) >= 2)
    assert names_seen(foreign) == []
    # A saw B (same cluster) and never X, whatever it has handled so far.
    a.wait_for(seen("node-b"))
    assert "node-x" not in names_seen(a)


def test_stop_says_goodbye_and_peer_reports_gone(lab):
    ns, ip = lab.add_host("h")
    a, b = lab.agent(ns), lab.agent(ns)
    a.call("start", fp=FP, id="node-a", address=f"{ip}:5001", host="alpha")
    b.call("start", fp=FP, id="node-b", address=f"{ip}:5002", host="beta")
    b.wait_for(seen("node-a"))

    a.call("stop")
    b.wait_for(gone("node-a"))
    a.call("stop")  # idempotent
    # B reported A once as seen before the goodbye, and never reported itself as gone.
    events = [e for e in b.snapshot() if e["event"] in ("seen", "gone")]
    assert events.index({"event": "gone", "name": "node-a"}) > names_seen(b).index("node-a")
    assert not any(e["event"] == "gone" and e["name"] == "node-b" for e in events)


def test_browser_started_after_the_announcement_finds_the_node(lab):
    ns, ip = lab.add_host("h")
    a = lab.agent(ns)
    a.call("start", fp=FP, id="node-a", address=f"{ip}:5001", host="alpha")
    b = lab.agent(ns)  # a new process, after A's announcements are over
    b.call("start", fp=FP, id="node-b", address=f"{ip}:5002", host="beta")
    assert b.wait_for(seen("node-a"))["address"] == f"tcp://{ip}:5001"


@pytest.mark.slow
def test_reannouncement_finds_a_node_again_after_a_partition_heals(bridged):
    """B starts browsing while A's cable is cut and outlives its start-up queries (~14 s);
    only A's periodic re-announcement can make B find A once the cable is back."""
    ns_a, ip_a = bridged.add_host("h1")
    ns_b, ip_b = bridged.add_host("h2")
    a, b = bridged.agent(ns_a), bridged.agent(ns_b)
    a.call("start", fp=FP, id="node-a", address=f"{ip_a}:5001", host="alpha", reannounce=1.0)
    bridged.cut("h1")
    b.call("start", fp=FP, id="node-b", address=f"{ip_b}:5002", host="beta")
    time.sleep(20)  # scenario set-up, not a measurement: let B's start-up queries run out
    assert "node-a" not in names_seen(b), "the cut did not partition the hosts"

    bridged.heal("h1")
    event = b.wait_for(seen("node-a"))
    assert event["address"] == f"tcp://{ip_a}:5001"


def test_an_exception_in_on_event_is_logged_and_discovery_goes_on(lab):
    ns, ip = lab.add_host("h")
    b, a, c = lab.agent(ns), lab.agent(ns), lab.agent(ns)
    b.call("start", fp=FP, id="node-b", address=f"{ip}:5002", host="beta", explode=True)
    a.call("start", fp=FP, id="node-a", address=f"{ip}:5001", host="alpha")
    b.wait_for(seen("node-a"))
    c.call("start", fp=FP, id="node-c", address=f"{ip}:5003", host="gamma")
    b.wait_for(seen("node-c"))  # the browser thread survived the first exception
    assert any("on_event failed" in line for line in b.stderr)
    a.call("stop")
    b.wait_for(gone("node-a"))


def test_an_address_not_on_this_host_is_a_clear_error(lab):
    ns, ip = lab.add_host("h")
    a = lab.agent(ns)
    a.send(cmd="start", fp=FP, id="node-a", address=f"{ip}:5001", host="alpha",
           interfaces=["10.9.9.9"])
    error = a.wait_for(lambda e: e["event"] in ("ack", "error"))
    assert error["event"] == "error"
    assert "cannot listen on 10.9.9.9" in error["error"]
    a.call("stop")  # stopping a discovery whose start failed is harmless


GOOD = {"fp": FP, "v": "3", "host": "h"}
MALFORMED = [
    dict(name="no-id", port=5000, addresses=["127.0.0.1"], props={"fp": FP, "v": "1", "host": "h"}),
    dict(name="bad-v", port=5000, addresses=["127.0.0.1"],
         props={**GOOD, "id": "bad-v", "v": "one"}),
    dict(name="empty-v", port=5000, addresses=["127.0.0.1"], props={**GOOD, "id": "empty-v"},
         hex={"v": ""}),
    dict(name="bad-host", port=5000, addresses=["127.0.0.1"], props={"fp": FP, "v": "1",
         "id": "bad-host"}, hex={"host": "fffe"}),
    dict(name="bad-id", port=5000, addresses=["127.0.0.1"], props={**GOOD, "id": "bad id!"}),
    dict(name="port-0", port=0, addresses=["127.0.0.1"], props={**GOOD, "id": "port-0"}),
    dict(name="any-addr", port=5000, addresses=["0.0.0.0"], props={**GOOD, "id": "any-addr"}),
    dict(name="mcast", port=5000, addresses=["224.0.0.5"], props={**GOOD, "id": "mcast"}),
    dict(name="spoof", port=5000, addresses=["127.0.0.1"], props={**GOOD, "id": "node-b"}),
]


def test_malformed_services_are_ignored_and_counted(lab):
    ns, ip = lab.add_host("h")
    b, raw = lab.agent(ns), lab.agent(ns)
    b.call("start", fp=FP, id="node-b", address=f"{ip}:5002", host="beta")
    for service in MALFORMED:
        raw.call("raw", **service)
    raw.call("raw", name="good", port=5000, addresses=["127.0.0.1"], props={**GOOD, "id": "good"})

    event = b.wait_for(seen("good"))
    assert event["props"] == {**GOOD, "id": "good", "v": 3}
    assert names_seen(b) == ["good"]
    counts = b.counts()
    assert counts.get("invalid", 0) >= len(MALFORMED) - 1
    assert counts.get("self", 0) >= 2  # its own service, and the one spoofing its id
    assert not any(e["event"] == "error" for e in b.snapshot())
    assert b.proc.poll() is None
