"""An ordered map's consumer runs the units it waits for while they are still queued on
its peer (``futures._MapRun._run_awaited``, ``runtime/ranges.run_awaited``). Behaviour
only: those units run in the consumer's own greenlet; every result comes once and in
order, a failed element raises at its position and the map goes on; a map with a
timeout never runs a unit in its consumer (it could not time it out).
"""

import greenlet
import pytest

from api_helpers import need_runtime, rt, runtime_mode  # noqa: F401

from p2pscoop import futures

pytestmark = pytest.mark.timeout(120)


def where(x):
    """``(x, id of the greenlet running it)``; element 5000 + 7k fails."""
    if x >= 5000 and x % 7 == 0:
        raise KeyError(x)
    return x, id(greenlet.getcurrent())


def drain(it):
    out, failed = [], []
    while True:
        try:
            out.append(next(it))
        except KeyError as exc:
            failed.append(exc.args[0])
        except StopIteration:
            return out, failed


def test_the_consumer_runs_what_it_waits_for_and_results_stay_in_order(rt):
    need_runtime(rt)
    n = 20_000
    list(futures.map(where, range(4000)))  # the function is known quick from now on
    me = id(greenlet.getcurrent())
    out, failed = drain(futures.map(where, range(n)))
    assert failed == [x for x in range(5000, n) if x % 7 == 0]
    assert [x for x, _ in out] == [x for x in range(n) if x < 5000 or x % 7]
    assert any(g == me for _, g in out)  # some ran in this very greenlet


def test_a_map_with_a_timeout_never_runs_units_in_its_consumer(rt):
    need_runtime(rt)
    list(futures.map(where, range(4000)))
    me = id(greenlet.getcurrent())
    out = list(futures.map(where, range(4000), timeout=60))
    assert [x for x, _ in out] == list(range(4000))
    assert all(g != me for _, g in out)
