"""The SCOOP programs of ``tests/compat`` over SSH: the same table, the same exact outputs,
with the origin in lab host h1 and one peer on each of h2 and h3 started through real sshds
(``--hosts h2:1 h3:1``, ``-n 3``). The programs live on the shared file system, as on a
cluster with a shared home, so remote peers import them as SCOOP's workers did."""

import importlib.util
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("_compat_cases",
                                               ROOT / "tests" / "compat" / "test_programs.py")
_cases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_cases)
CASES = _cases.CASES
PROGRAMS = ROOT / "tests" / "compat" / "programs"

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("name,args,expected,status", CASES,
                         ids=[f"{c[0]}{'-' + c[1][0] if c[1] and '{' not in c[1][0] else ''}"
                              for c in CASES])
def test_scoop_program_over_ssh(sshlab3, tmp_path, name, args, expected, status):
    ssh = sshlab3
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = [sys.executable, "-m", "p2pscoop", "-n", "3", "--ssh-executable",
            ssh.ssh_wrapper(), "--hosts", "h2:1", "h3:1", "--",
            str(PROGRAMS / f"{name}.py"), *args]
    res = ssh.lab.run(ssh.origin, argv, 120, cwd=str(PROGRAMS))
    detail = f"{argv}\nstatus {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.stdout == expected, detail
    assert res.returncode == status, detail
    for noise in ("RuntimeWarning", "is not running", "could not import", "Traceback",
                  "failed"):
        assert noise not in res.stderr, detail
