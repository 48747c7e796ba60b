"""An island model in the style of DEAP's ``onemax_island_scoop.py``: each island evolves
for a few generations in a task of its own (``eaSimple`` inside the task), the islands come
back to the origin, exchange their best individuals (``tools.migRing``) and are sent out again.

    python onemax_island.py [EPOCHS [ISLANDS [POP [FREQ [ROUNDS [nested]]]]]]
    python -m p2pscoop -n 2 onemax_island.py [...]

This is the program that needs pickling to respect DEAP's ``copyreg`` reducer: individuals
come back from tasks (DEAP re-creates ``creator.Individual`` when it unpickles one) and are
then pickled again. ``REMOTE EPOCHS n`` says in how many epochs another peer than the origin
evolved an island. Each island task seeds ``random`` from its argument and restores it at
its end, so where it runs does not change the results, and a parallel run gives the serial run's results.
"""

import os
import random
import sys
import time

import numpy
from deap import algorithms, base, creator, tools
from scoop import futures

from _helpers import burn, result_line

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ISLANDS = int(sys.argv[2]) if len(sys.argv) > 2 else 4
POP = int(sys.argv[3]) if len(sys.argv) > 3 else 40
FREQ = int(sys.argv[4]) if len(sys.argv) > 4 else 3
ROUNDS = int(sys.argv[5]) if len(sys.argv) > 5 else 30000
NESTED = len(sys.argv) > 6 and sys.argv[6] == "nested"

creator.create("FitnessMax", base.Fitness, weights=(1.0,))
creator.create("Individual", list, fitness=creator.FitnessMax)


def evalOneMax(individual):
    return sum(individual) + burn(ROUNDS),


def make_toolbox(map_function):
    toolbox = base.Toolbox()
    toolbox.register("attr_bool", random.randint, 0, 1)
    toolbox.register("individual", tools.initRepeat, creator.Individual, toolbox.attr_bool,
                     100)
    toolbox.register("population", tools.initRepeat, list, toolbox.individual)
    toolbox.register("evaluate", evalOneMax)
    toolbox.register("mate", tools.cxTwoPoint)
    toolbox.register("mutate", tools.mutFlipBit, indpb=0.05)
    toolbox.register("select", tools.selTournament, tournsize=3)
    toolbox.register("migrate", tools.migRing, k=5, selection=tools.selBest)
    toolbox.register("map", map_function)
    return toolbox


toolbox = make_toolbox(futures.map)
# Inside an island the evaluations run in the island's own task. With futures.map there too
# (as DEAP's example has it: the NESTED mode) the task waits for its evaluations, and meanwhile
# its peer runs another island's task, which reseeds and draws from the same global
# ``random``: correct, but not reproducible (under SCOOP neither).
island_toolbox = toolbox if NESTED else make_toolbox(map)


def evolve(island, seed):
    """FREQ generations of one island, seeded by its argument. It runs on whichever peer
    takes it (the origin too), so it leaves that peer's ``random`` as it found it."""
    state = random.getstate()
    random.seed(seed)
    try:
        island, logbook = algorithms.eaSimple(island, island_toolbox, cxpb=0.5, mutpb=0.2,
                                              ngen=FREQ, verbose=False)
    finally:
        random.setstate(state)
    return island, os.getpid()


def main():
    start = time.perf_counter()
    random.seed(64)
    islands = [toolbox.population(n=POP) for _ in range(ISLANDS)]
    hof = tools.HallOfFame(3)
    stats = tools.Statistics(lambda ind: ind.fitness.values)
    stats.register("avg", numpy.mean)
    stats.register("max", numpy.max)
    logbook = tools.Logbook()
    remote_epochs = 0  # epochs in which another peer evolved an island
    for epoch in range(EPOCHS):
        seeds = [random.randrange(2 ** 32) for _ in islands]
        results = list(toolbox.map(evolve, islands, seeds))
        islands = [island for island, pid in results]
        remote_epochs += any(pid != os.getpid() for island, pid in results)
        toolbox.migrate(islands)
        for island in islands:
            hof.update(island)
        logbook.record(epoch=epoch, **stats.compile([ind for isl in islands for ind in isl]))
    print(f"REMOTE EPOCHS {remote_epochs}")
    print(result_line(hof, logbook))
    print(f"TIME {time.perf_counter() - start:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
