"""What the main thread posts to the comm thread (``runtime/executor.py``, "Pokes").

The main thread queues its sends under the node lock (the "Last words" rule) but wakes the
comm thread only after releasing it: a comm thread woken from inside the lock would find it
held when it reads the node's next deadline. Checked on a real run of 2 peers: every poke
the origin's main thread makes finds the lock free for the taking (a lock the caller
itself held could not be taken: the check would wait out its bound and say so), and the
run's answer is right, every send it posted having gone out.
"""

import pytest

from launcher_helpers import launcher, run, write_program

POKES_OUTSIDE_THE_LOCK = """
    import threading

    def fib(n):
        if n < 12:
            return n if n < 2 else fib(n - 1) + fib(n - 2)
        a, b = futures.submit(fib, n - 1), futures.submit(fib, n - 2)
        return a.result() + b.result()

    if __name__ == "__main__":
        peer = context.current()
        comm = peer.comm
        poke = comm.poke
        seen = []

        def checked_poke():
            if threading.current_thread() is peer.main_thread:
                # taken at once unless this very thread holds it (a Lock is not re-entrant)
                free = peer.lock.acquire(timeout=5.0)
                if free:
                    peer.lock.release()
                seen.append(free)
            poke()

        comm.poke = checked_poke
        results = [futures.submit(fib, 22).result() for _ in range(4)]
        comm.poke = poke
        report("RESULTS", results)
        report("POKES", len(seen))
        report("HELD", seen.count(False))
"""


@pytest.mark.timeout(120)
def test_the_main_thread_pokes_the_comm_thread_outside_the_node_lock(tmp_path):
    res = run(launcher(str(write_program(tmp_path, POKES_OUTSIDE_THE_LOCK)), n=2), tmp_path)
    assert res.code == 0, res
    assert res.report("RESULTS") == [17711] * 4, res
    assert res.report("POKES") > 0, res  # steal requests, results, pushes: posted by main
    assert res.report("HELD") == 0, res
