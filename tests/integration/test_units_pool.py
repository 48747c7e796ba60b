"""The hub's greenlets are pooled (``Scheduler._pooled_units``): a greenlet whose units are
done serves later units, and a parked one is never handed another unit.

A real launch on one peer: rounds of tasks that each park (a timed wait is never run in
place) for a child; every task checks on resuming that its greenlet still holds its own
unit, and tells which rounds its greenlet has served.
"""

import textwrap

import pytest

from api_helpers import run_program

pytestmark = pytest.mark.timeout(120)

PROGRAM = textwrap.dedent("""
    import greenlet
    from p2pscoop import futures

    def leaf(i):
        return i * i

    def parker(i, rnd):
        g = greenlet.getcurrent()
        g.unit = (rnd, i)
        g.rounds = getattr(g, "rounds", frozenset()) | {rnd}
        child = futures.submit(leaf, i)
        value = child.result(timeout=60)  # parks: a timed wait runs nothing in place
        assert g.unit == (rnd, i), (g.unit, rnd, i)
        return value, sorted(g.rounds)

    if __name__ == "__main__":
        seen = []
        for rnd in range(4):
            fs = [futures.submit(parker, i, rnd) for i in range(6)]
            done, _ = futures.wait(fs, timeout=60)
            out = [f.result() for f in fs]
            assert [v for v, _ in out] == [i * i for i in range(6)], out
            seen += [r for _, r in out]
        print("served", max(len(r) for r in seen))
""")


def test_the_hubs_greenlets_serve_later_units_and_parked_ones_keep_theirs(tmp_path):
    prog = tmp_path / "pool_prog.py"
    prog.write_text(PROGRAM)
    rc, out, err = run_program(prog, n=1)
    assert rc == 0, out + err
    served = int(out.split("served")[1].split()[0])
    assert served > 1, out + err  # a greenlet of one round ran a unit of a later one
