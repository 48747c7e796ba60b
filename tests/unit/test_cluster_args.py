"""Cluster-mode settings from the command line (``launch/cluster.py``): clear errors, the
listen address forms, and the rule that nothing listens beyond loopback without a secret."""

import pytest

from p2pscoop.core.errors import SecurityError
from p2pscoop.launch.cluster import make_secure, parse_listen
from p2pscoop.transport.mesh import check_bind
from p2pscoop.transport.secret import encode_secret


@pytest.mark.parametrize("text, want", [
    ("10.0.0.1", ("10.0.0.1", 0)),
    ("10.0.0.1:5555", ("10.0.0.1", 5555)),
    ("0.0.0.0:7", ("0.0.0.0", 7)),
    ("[::1]", ("::1", 0)),
    ("[::1]:5555", ("::1", 5555)),
    ("::1", ("::1", 0)),
])
def test_listen_forms(text, want):
    assert parse_listen(text) == want


def test_a_bad_port_is_a_clear_error():
    with pytest.raises(ValueError, match="'xx' is not a number"):
        parse_listen("host:xx")


def test_cluster_mode_without_a_secret_says_how_to_make_one(monkeypatch):
    monkeypatch.delenv("P2PSCOOP_SECRET", raising=False)
    monkeypatch.delenv("P2PSCOOP_SECRET_FILE", raising=False)
    with pytest.raises(SecurityError, match="p2pscoop secret FILE"):
        make_secure("lab", None)


def test_cluster_mode_without_a_name_says_which_option(monkeypatch):
    monkeypatch.delenv("P2PSCOOP_CLUSTER", raising=False)
    with pytest.raises(SecurityError, match="--cluster NAME"):
        make_secure(None, None)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("P2PSCOOP_SECRET", encode_secret(b"s" * 32))
    monkeypatch.setenv("P2PSCOOP_CLUSTER", "lab")
    sec = make_secure(None, None, "127.0.0.1")
    assert sec.cluster == "lab" and sec.listen == "127.0.0.1" and sec.port == 0
    assert len(sec.keys.fingerprint) == 16
    other = make_secure("other", None, "127.0.0.1")
    assert other.keys.fingerprint != sec.keys.fingerprint  # one secret, two clusters
    assert "s" * 32 not in repr(sec)


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_nothing_listens_beyond_loopback_without_a_secret(host):
    with pytest.raises(SecurityError, match="p2pscoop secret FILE"):
        check_bind(host, None)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_needs_no_secret(host):
    check_bind(host, None)
