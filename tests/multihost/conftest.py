"""Fixtures for the multi-host tests: labs of network namespaces (see netlab.py).

``lab2`` and ``lab4`` give a fresh ``netlab.Lab`` of 2 or 4 hosts per test. They skip the test
with the reason from ``netlab.available()`` (not root, no ``ip`` or ``nft``); as root with the
tools installed (``tools/setup-test-host``) the tests run by default. After the test, the lab
is torn down whatever happened, and the test errors if anything of the lab is left.
Every test in this directory carries the ``multihost`` marker (``-m "not multihost"`` skips them).

``sshlab3`` gives a 3-host lab with real OpenSSH servers (``sshlab.SshLab``, see there): the origin
runs in ``h1`` (no sshd), ``h2`` and ``h3`` run an sshd on port 22 whose sessions import the
p2pscoop under test, and ``h3-bare`` is a second sshd in ``h3`` (port 2222) whose sessions
cannot import p2pscoop. It skips without root, ``ip``, ``nft``, ``sshd`` or ``ssh``.
"""

import pathlib

import pytest

import netlab
import sshlab

HERE = pathlib.Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line("markers", "multihost: builds network namespaces (root only)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.multihost)


def _lab(n):
    reason = netlab.available()
    if reason:
        pytest.skip(reason)
    lab = netlab.Lab(n)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    left = lab.leftovers()
    assert not left, f"{lab!r} left {left}"


@pytest.fixture
def lab2():
    """Two hosts, h1 and h2, on one switch."""
    yield from _lab(2)


@pytest.fixture
def lab4():
    """Four hosts, h1..h4, on one switch."""
    yield from _lab(4)


@pytest.fixture
def sshlab3():
    """``sshlab.SshLab`` on a fresh 3-host lab: ``.lab``, ``.origin == "h1"``,
    ``.hosts == ["h2", "h3"]`` (sshd, p2pscoop importable), ``.bare == ["h3-bare"]``,
    ``.config``, ``.ssh_argv()``, ``.ssh_wrapper()``, ``.ssh(src, dst, cmd)``; the ssh_config
    also names ``h1`` and ``refused`` (connection refused) and ``nohost`` (no route to host)."""
    reason = sshlab.available()
    if reason:
        pytest.skip(reason)
    lab = netlab.Lab(3)
    ssh = None
    try:
        lab.up()
        ssh = sshlab.SshLab(lab)
        ssh.start("h2")
        ssh.start("h3")
        ssh.start("h3", p2pscoop=False, port=2222, name="h3-bare")
        yield ssh
    finally:
        if ssh is not None:
            ssh.close()
        lab.down()
    left = lab.leftovers() + ssh.leftovers()
    assert not left, f"{ssh!r} left {left}"
