"""``--hosts --tunnel`` behind firewalls: h2 and h3 (the workers' hosts) accept no incoming
TCP connection but SSH's (nftables in their namespaces, loopback allowed: the ssh forward
ends there), so nobody can dial a worker and the workers cannot dial each other.

* With ``--tunnel`` the run completes with the right results, and tasks ran on both remote
  hosts, in nested maps owned by the workers there (their results relayed by the origin).
* With h1 (the origin) firewalled as well, the run still completes: the workers reach the
  origin through the SSH connections the origin opened (``ssh -R``), not directly.
* Without ``--tunnel`` the workers reach the origin but its answers (it dials back) never
  arrive: each worker gives up, says why, and the run is not hung (asserted as observed).

Everything is torn down with the lab (the firewall tables live in the hosts' namespaces).
No timing is asserted; waits are liveness bounds.
"""

import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)

PROGRAM = textwrap.dedent('''
    import os, sys, time
    import scoop
    from scoop import futures, shared

    def leaf(x):
        time.sleep(0.02)
        conn = os.environ.get("SSH_CONNECTION", "")
        return x * x + shared.getConst("base", timeout=10), conn.split()[2] if conn else "h1"

    def branch(n):
        return list(futures.map(leaf, range(n)))  # a job owned by the peer running branch

    if __name__ == "__main__":
        deadline = time.monotonic() + 60
        while scoop.SIZE < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        shared.setConst(base=1000)
        out = [r for part in futures.map(branch, [10] * 30) for r in part]
        print("total", sum(v for v, _ in out))
        print("hosts", " ".join(sorted({h for _, h in out})))
''')
EXPECTED = 30 * sum(x * x + 1000 for x in range(10))

#: incoming TCP: loopback, replies and ssh only (the hosts' own namespaces; gone with them)
FIREWALL = """\
table inet p2pscoop_tunnel_test {
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "lo" accept
        ct state established,related accept
        tcp dport 22 accept
        meta l4proto tcp drop
    }
}
"""


def _firewall(ssh, hosts, tmp_path):
    rules = tmp_path / "firewall.nft"
    rules.write_text(FIREWALL)
    for host in hosts:
        res = ssh.lab.run(host, ["nft", "-f", str(rules)], 30)
        assert res.returncode == 0, res.stderr


def _run(ssh, tmp_path, *mode):
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM)
    argv = [sys.executable, "-m", "p2pscoop", "-n", "5", "--ssh-executable",
            ssh.ssh_wrapper(), "--hosts", "h2:2", "h3:2", *mode, "--", str(prog)]
    return ssh.lab.run(ssh.origin, argv, 150, cwd=str(tmp_path))


def _lines(res) -> dict:
    return {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line}


def _check_ok(res, ssh):
    detail = f"status {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.returncode == 0, detail
    out = _lines(res)
    assert out["total"] == [str(EXPECTED)], detail
    remote = {ssh.address(h) for h in ("h2", "h3")}
    assert remote <= set(out["hosts"]), detail  # both firewalled hosts ran tasks
    assert "Traceback" not in res.stderr, detail


def test_tunnel_runs_through_workers_firewalls(sshlab3, tmp_path):
    _firewall(sshlab3, ["h2", "h3"], tmp_path)
    _check_ok(_run(sshlab3, tmp_path, "--tunnel"), sshlab3)


def test_tunnel_needs_nothing_but_ssh_into_any_host(sshlab3, tmp_path):
    """The origin's host firewalled too: the workers can only come through ssh -R."""
    _firewall(sshlab3, ["h1", "h2", "h3"], tmp_path)
    _check_ok(_run(sshlab3, tmp_path, "--tunnel"), sshlab3)


def test_without_tunnel_the_run_stays_on_the_origin_and_says_why(sshlab3, tmp_path):
    """Observed: the workers' HELLOs reach the origin, which admits them, but its answers
    (on connections it dials) are dropped. So no work goes to them, the origin runs it all
    (the result is right, no task ran on h2 or h3), and it warns, naming --tunnel."""
    _firewall(sshlab3, ["h2", "h3"], tmp_path)
    res = _run(sshlab3, tmp_path)
    detail = f"status {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert res.returncode == 0, detail
    out = _lines(res)
    assert out["total"] == [str(EXPECTED)], detail
    assert out["hosts"] == ["h1"], detail
    assert "our messages do not reach it" in res.stderr, detail
    assert "--tunnel" in res.stderr, detail
