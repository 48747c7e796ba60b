"""What the DEAP example programs of this directory share: a fitness cost and the result line.

The programs are SCOOP programs written the way DEAP's documentation writes them
(``toolbox.register("map", futures.map)`` at module level, the algorithm under the
``__main__`` guard). Each prints one line ``RESULT {json}`` at its end, made by ``result_line``:
the best fitness, the hall of fame and the whole logbook, so that a serial run and a parallel
run with the same seed can be compared exactly; and ``TIME <seconds> s`` on stderr, the time of
the algorithm alone (startup excluded), for measurements.

``burn(n)`` is the "few milliseconds" of a costly fitness: deterministic CPU work whose value
is returned (so it cannot be skipped) and always the same on every process.
"""

from __future__ import annotations

import json

PREFIX = "RESULT "


def burn(rounds: int, seed: int = 1) -> int:
    """``rounds`` steps of deterministic pure-Python work (about 12 a microsecond on a
    2020s core: 30,000 is a fitness of a few ms); returns 0."""
    acc = seed
    for i in range(rounds):
        acc = (acc * 1103515245 + i) & 0x7FFFFFFF
    return acc & 0  # always 0, but only known after the loop


def result_line(hof, logbook) -> str:
    """The ``RESULT`` line of a run: what must be equal between a serial and a parallel run."""
    return PREFIX + json.dumps({
        "best": [float(v) for v in hof[0].fitness.values],
        "hof": [str(ind) for ind in hof],
        "hof_fitness": [[float(v) for v in ind.fitness.values] for ind in hof],
        "logbook": str(logbook),
    })


def parse_result(stdout: str) -> dict:
    """The ``RESULT`` line of a program's output, decoded (AssertionError if none)."""
    lines = [line for line in stdout.splitlines() if line.startswith(PREFIX)]
    assert len(lines) == 1, f"expected one {PREFIX!r} line in:\n{stdout}"
    return json.loads(lines[0][len(PREFIX):])
