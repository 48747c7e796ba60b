"""Fixtures for the multi-host tests: labs of network namespaces (see netlab.py).

``lab2`` and ``lab4`` give a fresh ``netlab.Lab`` of 2 or 4 hosts per test. They skip the test
with the reason from ``netlab.available()`` (not root, no ``ip`` or ``nft``); as root with the
tools installed (``tools/setup-test-host``) the tests run by default. After the test, the lab
is torn down whatever happened, and the test errors if anything of the lab is left.
Every test in this directory carries the ``multihost`` marker (``-m "not multihost"`` skips them).
"""

import pathlib

import pytest

import netlab

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
