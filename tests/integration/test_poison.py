"""A task that kills the process running it (``os._exit``, a crash) loses nothing else.

The peer that runs such a task dies: that cannot be helped. What must hold: its owner
re-dispatches the units that peer held, each alone (so a second death is blamed on one
unit), never runs them itself, and after 3 deaths fails just that future with
``TaskLostError``; the launcher replaces dead workers; every other result is correct, the
program exits normally and no process is left behind.

The program submits unit 7 alone and waits until a thief holds it (``Future.running`` is
true while another peer holds a unit; an owner that leaves a lone unit untouched while a
thief waits gives it away, ``lifelines._stale``) before it submits the rest, so the test
does not depend on who is faster to unit 7.
"""

import pytest

from launcher_helpers import launcher, run, write_program

POISON = """
    from p2pscoop.errors import TaskLostError

    def work(x):
        if x == 7 and not p2pscoop.IS_ORIGIN:
            os._exit(9)  # dies like a segfault would: no exception, no cleanup
        if x == 7:
            return "ran on the origin"  # the owner must never run a unit that killed
        time.sleep(0.01)
        return x * x

    if __name__ == "__main__":
        # unit 7 goes first and alone, and the origin waits until a thief holds it: a
        # thief runs a lone unit at once, while one among others could still be taken
        # back by an idle origin (a steal) and run here, which would prove nothing
        seven = futures.submit(work, 7)
        while not (seven.running() or seven.done()):
            time.sleep(0.005)
        futs = [seven if i == 7 else futures.submit(work, i) for i in range(20)]
        out = []
        for fut in futs:
            try:
                out.append(fut.result())
            except TaskLostError as exc:
                out.append(["lost", "TaskLostError" in repr(exc)])
        report("OUT", out)
        report("PEERS", sorted(on_every_peer(os.getpid)))
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("n", [2, 3])
def test_a_task_that_kills_its_process_fails_alone(tmp_path, n):
    prog = write_program(tmp_path, POISON)
    res = run(launcher(str(prog), n=n), tmp_path)
    assert res.code == 0, res
    out = res.report("OUT")
    assert out[7] == ["lost", True], res
    assert out[:7] + out[8:] == [i * i for i in range(20) if i != 7], res
    assert len(res.report("PEERS")) == n, res  # dead workers were replaced
    assert "starting a replacement" in res.stderr, res
