"""The HELLO handshake refuses peers of another cluster, Python or p2pscoop version, with
a clear reason, quickly, and without crashing anyone."""

import os

import pytest

from launcher_helpers import launcher, run, write_program
from p2pscoop.core import messages as M
from p2pscoop.runtime.peer import PYTHON, Peer
from p2pscoop.transport.mesh import Comm


@pytest.fixture
def peer():
    p = Peer(rank=0, size=2, cluster="c" * 32, comm=Comm())
    try:
        yield p
    finally:
        p.close()


def hello(peer, **change):
    fields = dict(cluster=peer.cluster, incarnation=b"x" * 16, rank=1,
                  address="tcp://127.0.0.1:1", host="h", python=PYTHON, pickle_protocol=5,
                  version=peer.hello().version, role=0, program="", mac=b"")
    fields.update(change)
    return M.Hello(**fields)


@pytest.mark.parametrize("change, reason", [
    ({"cluster": "d" * 32}, "another cluster"),
    ({"python": "cpython-2.7"}, "cpython-2.7"),
    ({"version": "0.0.0"}, "p2pscoop 0.0.0"),
    ({"incarnation": b"y" * 16}, "does not match"),
])
def test_refusals_name_their_reason(peer, change, reason):
    assert reason in peer.check_hello(b"x" * 16, hello(peer, **change))


def test_a_matching_hello_is_accepted(peer):
    assert peer.check_hello(b"x" * 16, hello(peer)) is None


#: a ``sitecustomize`` that makes every worker (not the origin) another p2pscoop version
#: from interpreter start-up, before its peer exists
OTHER_VERSION = """
import os
if os.environ.get("P2PSCOOP_WORKER"):
    import p2pscoop.runtime.peer as _peer
    _peer.__version__ = "0.0.0-other"
"""


@pytest.mark.timeout(60)
def test_a_worker_of_another_version_fails_the_start_with_the_reason(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(OTHER_VERSION)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    prog = write_program(tmp_path, 'if __name__ == "__main__":\n    report("RAN", True)\n')
    res = run(launcher(str(prog), n=2), tmp_path,
              bound=30)  # refused at once, not after the 60 s startup timeout
    assert res.code != 0, res
    assert "was refused" in res.stderr and "0.0.0-other" in res.stderr, res
    assert "RAN" not in res.stdout, res
