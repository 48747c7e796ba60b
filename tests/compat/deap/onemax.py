"""OneMax with ``algorithms.eaSimple``, as in DEAP's tutorial, parallelised the way DEAP's
documentation says: ``toolbox.register("map", futures.map)``.

    python onemax.py [NGEN [POP [ROUNDS]]]                 # serial (futures.map falls back)
    python -m p2pscoop -n 2 onemax.py [NGEN [POP [ROUNDS]]]

All randomness happens on the origin (variation and selection in eaSimple); the fitness is
deterministic and costs ``ROUNDS`` steps of work (``_helpers.burn``), so a parallel run gives
the serial run's results. Prints ``RESULT {json}`` at the end.
"""

import random
import sys
import time

import numpy
from deap import algorithms, base, creator, tools
from scoop import futures

from _helpers import burn, result_line

NGEN = int(sys.argv[1]) if len(sys.argv) > 1 else 10
POP = int(sys.argv[2]) if len(sys.argv) > 2 else 100
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 30000

creator.create("FitnessMax", base.Fitness, weights=(1.0,))
creator.create("Individual", list, fitness=creator.FitnessMax)

toolbox = base.Toolbox()
toolbox.register("attr_bool", random.randint, 0, 1)
toolbox.register("individual", tools.initRepeat, creator.Individual, toolbox.attr_bool, 100)
toolbox.register("population", tools.initRepeat, list, toolbox.individual)


def evalOneMax(individual):
    return sum(individual) + burn(ROUNDS),


toolbox.register("evaluate", evalOneMax)
toolbox.register("mate", tools.cxTwoPoint)
toolbox.register("mutate", tools.mutFlipBit, indpb=0.05)
toolbox.register("select", tools.selTournament, tournsize=3)
toolbox.register("map", futures.map)


def main():
    start = time.perf_counter()
    random.seed(64)
    pop = toolbox.population(n=POP)
    hof = tools.HallOfFame(3)
    stats = tools.Statistics(lambda ind: ind.fitness.values)
    stats.register("avg", numpy.mean)
    stats.register("std", numpy.std)
    stats.register("min", numpy.min)
    stats.register("max", numpy.max)
    pop, logbook = algorithms.eaSimple(pop, toolbox, cxpb=0.5, mutpb=0.2, ngen=NGEN,
                                       stats=stats, halloffame=hof, verbose=False)
    print(result_line(hof, logbook))
    print(f"TIME {time.perf_counter() - start:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
