"""Runtime properties of the issue's part 3, observed from the outside.

* a peer whose main thread is inside a long pure-Python computation still answers steal
  requests (its comm thread does), so idle peers get its queued work meanwhile;
* a task that runs on its own submitter gets the very objects it was given (nothing is
  copied or pickled on the local path);
* a chain of nested waits far deeper than any thread pool could hold runs on 2 peers.
"""

import os

import pytest

from launcher_helpers import launcher, run, write_program

STEAL_WHILE_COMPUTING = """
    def sleepy(i):
        time.sleep(0.01)
        return os.getpid()

    if __name__ == "__main__":
        fs = [futures.submit(sleepy, i) for i in range(30)]
        # Compute without ever entering p2pscoop: only the comm thread can hand out work.
        spins = 0
        while not all(f._state == "FINISHED" for f in fs) and spins < 3_000_000:
            spins += 1
            x = sum(range(200))
            if spins % 2000 == 0:  # complete what arrived (this never runs a task)
                [f for f in fs if f._state != "FINISHED"][0].done()
        report("DONE", [f.done() for f in fs].count(True))
        report("PIDS", sorted({f.result() for f in fs}))
        report("ORIGIN", os.getpid())
"""


@pytest.mark.timeout(120)
def test_steals_are_answered_while_the_victim_computes(tmp_path):
    res = run(launcher(str(write_program(tmp_path, STEAL_WHILE_COMPUTING)), n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("DONE") == 30, res  # all ran while the origin never yielded
    assert res.report("ORIGIN") not in res.report("PIDS"), res  # ... on the other peer


LOCAL_IDENTITY = """
    class Box:
        def __init__(self):
            self.items = []

    def fill(box, value):
        box.items.append(value)
        return box

    if __name__ == "__main__":
        box = Box()
        back = futures.submit(fill, box, 42).result()
        report("SAME", [back is box, box.items])
"""


@pytest.mark.timeout(60)
def test_local_tasks_get_the_objects_themselves(tmp_path):
    res = run(launcher(str(write_program(tmp_path, LOCAL_IDENTITY)), n=1), tmp_path)
    assert res.code == 0, res
    assert res.report("SAME") == [True, [42]], res


DEEP_CHAIN = """
    def chain(k):
        if k == 0:
            return 0
        return 1 + futures.submit(chain, k - 1).result()

    if __name__ == "__main__":
        report("DEPTH", futures.submit(chain, 400).result())
"""


@pytest.mark.timeout(120)
def test_a_chain_of_400_nested_waits(tmp_path):
    res = run(launcher(str(write_program(tmp_path, DEEP_CHAIN)), n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("DEPTH") == 400, res
