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


#: the programs also run in SCOOP's star topology over SSH, and tunnelled (a few: each run
#: costs seconds)
BROKER = ("tree", "fib", "mapscan", "exactly_once", "objects")


#: launcher arguments per topology (tunnel: the star over SSH port forwards, core/tunnel.py)
MODE_ARGS = {"p2p": [], "broker": ["--broker"], "tunnel": ["--tunnel"]}

RUNS = [(*case, mode) for mode in MODE_ARGS for case in CASES
        if mode == "p2p" or case[0] in BROKER]


@pytest.mark.parametrize("name,args,expected,status,mode", RUNS,
                         ids=[f"{r[4]}-{r[0]}{'-' + r[1][0] if r[1] and '{' not in r[1][0] else ''}"
                              for r in RUNS])
def test_scoop_program_over_ssh(sshlab3, tmp_path, name, args, expected, status, mode):
    ssh = sshlab3
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    argv = [sys.executable, "-m", "p2pscoop", "-n", "3", "--ssh-executable",
            ssh.ssh_wrapper(), "--hosts", "h2:1", "h3:1",
            *MODE_ARGS[mode], "--",
            str(PROGRAMS / f"{name}.py"), *args]
    res = ssh.lab.run(ssh.origin, argv, 120, cwd=str(PROGRAMS))
    detail = f"{argv}\nstatus {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.stdout == expected, detail
    assert res.returncode == status, detail
    for noise in ("RuntimeWarning", "is not running", "could not import", "Traceback",
                  "failed"):
        assert noise not in res.stderr, detail
