"""Genetic programming symbolic regression with ``gp.PrimitiveSet`` and
``algorithms.eaSimple``, as in DEAP's GP tutorial, parallelised the way DEAP's documentation
says: ``toolbox.register("map", futures.map)``. The target is x**4 + x**3 + x**2 + x.

    python symbreg.py [NGEN [POP [POINTS]]]                 # serial (futures.map falls back)
    python -m p2pscoop -n 2 symbreg.py [NGEN [POP [POINTS]]]

The fitness (mean squared error over ``POINTS`` points; a few ms for the default) is
deterministic and all randomness (generation, variation, selection) happens on the origin,
so a parallel run gives the serial run's results. Prints ``RESULT {json}`` at the end.
"""

import functools
import math
import operator
import random
import sys
import time

import numpy
from deap import algorithms, base, creator, gp, tools
from scoop import futures

from _helpers import result_line

NGEN = int(sys.argv[1]) if len(sys.argv) > 1 else 10
POP = int(sys.argv[2]) if len(sys.argv) > 2 else 200
POINTS = int(sys.argv[3]) if len(sys.argv) > 3 else 1000


def protectedDiv(left, right):
    try:
        return left / right
    except ZeroDivisionError:
        return 1


pset = gp.PrimitiveSet("MAIN", 1)
pset.addPrimitive(operator.add, 2)
pset.addPrimitive(operator.sub, 2)
pset.addPrimitive(operator.mul, 2)
pset.addPrimitive(protectedDiv, 2)
pset.addPrimitive(operator.neg, 1)
pset.addPrimitive(math.cos, 1)
pset.addPrimitive(math.sin, 1)
pset.addEphemeralConstant("rand101", functools.partial(random.randint, -1, 1))
pset.renameArguments(ARG0="x")

creator.create("FitnessMin", base.Fitness, weights=(-1.0,))
creator.create("Individual", gp.PrimitiveTree, fitness=creator.FitnessMin)

toolbox = base.Toolbox()
toolbox.register("expr", gp.genHalfAndHalf, pset=pset, min_=1, max_=2)
toolbox.register("individual", tools.initIterate, creator.Individual, toolbox.expr)
toolbox.register("population", tools.initRepeat, list, toolbox.individual)
toolbox.register("compile", gp.compile, pset=pset)

SAMPLE = [2 * i / POINTS - 1 for i in range(POINTS)]  # [-1, 1)


def evalSymbReg(individual):
    func = toolbox.compile(expr=individual)
    sqerrors = ((func(x) - x ** 4 - x ** 3 - x ** 2 - x) ** 2 for x in SAMPLE)
    return math.fsum(sqerrors) / len(SAMPLE),


toolbox.register("evaluate", evalSymbReg)
toolbox.register("select", tools.selTournament, tournsize=3)
toolbox.register("mate", gp.cxOnePoint)
toolbox.register("expr_mut", gp.genFull, min_=0, max_=2)
toolbox.register("mutate", gp.mutUniform, expr=toolbox.expr_mut, pset=pset)
toolbox.decorate("mate", gp.staticLimit(key=operator.attrgetter("height"), max_value=17))
toolbox.decorate("mutate", gp.staticLimit(key=operator.attrgetter("height"), max_value=17))
toolbox.register("map", futures.map)


def main():
    start = time.perf_counter()
    random.seed(318)
    pop = toolbox.population(n=POP)
    hof = tools.HallOfFame(1)
    stats_fit = tools.Statistics(lambda ind: ind.fitness.values)
    stats_size = tools.Statistics(len)
    mstats = tools.MultiStatistics(fitness=stats_fit, size=stats_size)
    mstats.register("avg", numpy.mean)
    mstats.register("min", numpy.min)
    mstats.register("max", numpy.max)
    pop, logbook = algorithms.eaSimple(pop, toolbox, 0.5, 0.1, NGEN, stats=mstats,
                                       halloffame=hof, verbose=False)
    print(result_line(hof, logbook))
    print(f"TIME {time.perf_counter() - start:.3f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
