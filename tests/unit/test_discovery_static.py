"""Peer address parsing, the static peer list, and the checks ZeroconfDiscovery makes before
touching the network (no multicast here: nothing in this file starts zeroconf)."""

import pytest

from p2pscoop.discovery import PeerGone, PeerSeen
from p2pscoop.discovery.static import StaticDiscovery, parse_peer, split_address
from p2pscoop.discovery.zeroconf import SERVICE_TYPE, ZeroconfDiscovery, interface_addresses


@pytest.mark.parametrize("text, expected", [
    ("10.0.0.3:5555", "tcp://10.0.0.3:5555"),
    ("  node7:1 ", "tcp://node7:1"),
    ("Node7.Example.org:65535", "tcp://node7.example.org:65535"),
    ("host.local.:80", "tcp://host.local:80"),
    ("[::1]:5555", "tcp://[::1]:5555"),
    ("[2001:DB8:0:0::1]:9", "tcp://[2001:db8::1]:9"),
    ("[fe80::1%eth0]:5555", "tcp://[fe80::1%eth0]:5555"),
    ("tcp://10.0.0.3:5555", "tcp://10.0.0.3:5555"),
    ("TCP://[::1]:7", "tcp://[::1]:7"),
])
def test_parse_peer_accepts_and_normalises(text, expected):
    assert parse_peer(text) == expected
    assert parse_peer(expected) == expected  # normal form is a fixed point


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("node7", "port is missing"),
    ("node7:", "port '' is not a number"),
    (":5555", "host is missing"),
    ("node7:0", "out of range"),
    ("node7:65536", "out of range"),
    ("node7:55x", "not a number"),
    ("node7:-1", "not a number"),
    ("node7:٥", "not a number"),
    ("::1:5555", "needs brackets"),
    ("[::1]5555", "brackets and a port"),
    ("[::1", "brackets and a port"),
    ("[nothex]:5555", "not a valid IPv6"),
    ("999.1.1.1:5555", "not a valid IPv4"),
    ("bad_host:5555", "not a valid host name"),
    ("-bad.example:5555", "not a valid host name"),
    ("*:5555", "listening address"),
    ("ipc:///tmp/x", "transport 'ipc'"),
    ("udp://1.2.3.4:5", "transport 'udp'"),
])
def test_parse_peer_rejects_with_the_bad_text_named(text, why):
    with pytest.raises(ValueError) as info:
        parse_peer(text)
    message = str(info.value)
    assert repr(text) in message and why in message
    assert "HOST:PORT" in message


def test_parse_peer_rejects_non_strings():
    with pytest.raises(TypeError, match="must be a str"):
        parse_peer(5555)


def test_split_address():
    assert split_address("tcp://[::1]:5555") == ("::1", 5555)
    assert split_address("10.0.0.3:80") == ("10.0.0.3", 80)


def test_static_discovery_reports_each_distinct_address_once_in_order():
    events = []
    disc = StaticDiscovery(["b:2", "a:1", "tcp://b:2", "[::1]:3"], events.append)
    assert disc.addresses == ["tcp://b:2", "tcp://a:1", "tcp://[::1]:3"]
    assert events == []  # nothing before start()
    disc.start()
    disc.start()
    assert events == [PeerSeen("tcp://b:2", "tcp://b:2", "b", {}),
                      PeerSeen("tcp://a:1", "tcp://a:1", "a", {}),
                      PeerSeen("tcp://[::1]:3", "tcp://[::1]:3", "::1", {})]
    disc.stop()
    disc.stop()
    assert not any(isinstance(e, PeerGone) for e in events)


def test_static_discovery_fails_at_construction_naming_the_bad_entry():
    with pytest.raises(ValueError, match="'nope'"):
        StaticDiscovery(["a:1", "nope"], print)


def test_static_discovery_takes_a_single_string_as_one_address():
    events = []
    with StaticDiscovery("a:1", events.append):
        pass
    assert [e.address for e in events] == ["tcp://a:1"]


def test_events_are_frozen_values():
    event = PeerSeen("n", "tcp://1.2.3.4:5", "h", {"id": "n"})
    with pytest.raises(AttributeError):
        event.name = "m"
    assert PeerGone("n") == PeerGone("n")


def make(**over):
    args = dict(fingerprint="0123456789abcdef", node_id="node-1", address="tcp://10.0.0.3:5555",
                host="alpha", on_event=print)
    args.update(over)
    return ZeroconfDiscovery(**args)


@pytest.mark.parametrize("over, why", [
    (dict(fingerprint="0123456789ABCDEF"), "fingerprint"),
    (dict(fingerprint="0123"), "fingerprint"),
    (dict(node_id=""), "node id"),
    (dict(node_id="a.b"), "node id"),
    (dict(node_id="x" * 64), "node id"),
    (dict(host=""), "host name"),
    (dict(host="a\nb"), "host name"),
    (dict(address="tcp://0.0.0.0:5555"), "give the address peers should dial"),
    (dict(address="tcp://224.0.0.251:5555"), "give the address peers should dial"),
    (dict(address="tcp://[::1]:5555"), "IPv4"),
    (dict(address="node7:5555"), "IPv4"),
    (dict(address="10.0.0.3"), "port is missing"),
    (dict(reannounce=-1), "reannounce"),
    (dict(version=1.0), "protocol version"),
    (dict(interfaces=["eth0"]), "interface_addresses"),
    (dict(interfaces=[]), "interfaces is empty"),
])
def test_zeroconf_discovery_checks_its_arguments(over, why):
    with pytest.raises(ValueError, match=why):
        make(**over)


def test_zeroconf_discovery_names_its_service_and_stops_before_start():
    disc = make(address="10.0.0.3:5555")
    assert disc.address == "tcp://10.0.0.3:5555"
    assert disc.service_name == "node-1." + SERVICE_TYPE == "node-1._p2pscoop._tcp.local."
    assert disc.ignored == {}
    disc.stop()  # never started: nothing to undo
    disc.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        disc.start()


def test_interface_addresses_of_loopback():
    assert "127.0.0.1" in interface_addresses("lo")


def test_interface_addresses_names_the_interfaces_that_exist():
    with pytest.raises(ValueError) as info:
        interface_addresses("no-such-if0")
    assert "'no-such-if0'" in str(info.value) and "lo" in str(info.value)
