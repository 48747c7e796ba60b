"""`python -m p2pscoop secret PATH`: a new 0600 secret file, never an overwrite.

The subcommand lives in p2pscoop/cli.py and calls ``transport.security.write_secret_file``;
until it is merged these tests are skipped.
"""

import inspect
import os
import re
import stat
import subprocess
import sys

import pytest

import p2pscoop.cli
from p2pscoop.transport.security import read_secret_file


def cli_has_secret_subcommand() -> bool:
    return re.search(r"""["']secret["']""", inspect.getsource(p2pscoop.cli)) is not None


pytestmark = pytest.mark.skipif(not cli_has_secret_subcommand(),
                                reason="p2pscoop.cli has no secret subcommand")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "p2pscoop", *args], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_secret_writes_a_private_file(tmp_path):
    path = tmp_path / "cluster.secret"
    done = run_cli("secret", str(path))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(read_secret_file(str(path))) == 32
    assert path.read_text().strip() not in done.stdout + done.stderr  # never echoed


def test_secret_refuses_to_overwrite_with_a_clear_message(tmp_path):
    path = tmp_path / "cluster.secret"
    assert run_cli("secret", str(path)).returncode == 0
    before = path.read_bytes()
    again = run_cli("secret", str(path))
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert str(path) in again.stderr
    assert "Traceback" not in again.stderr
    assert path.read_bytes() == before


def test_secret_refuses_a_missing_directory_with_a_clear_message(tmp_path):
    done = run_cli("secret", str(tmp_path / "missing" / "cluster.secret"))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert "cannot create" in done.stderr
