"""Monte Carlo estimate of pi: the program from our original SCOOP article, made correct.

Each task throws `attempts` random points into the unit square and counts those that fall
inside the quarter of the unit disk; pi ~ 4 * hits / points. The tasks run in parallel with
``futures.map``. Every task has its own random generator, seeded from the task's index, so
no two tasks share a random stream and the estimate is the same on 1 or 100 peers.

Run (arguments are optional: number of tasks, attempts per task, base seed):

    python -m p2pscoop -n 2 examples/pi_montecarlo.py 1000 10000
    python examples/pi_montecarlo.py 1000 10000        # serial, same estimate

Expected output: the number of points in the disk, the estimate, its error, the time, and
for the default arguments the last line

    pi ~ 3.141190 +/- 0.000519: OK (error below 6 standard errors)

The program exits with status 1 if the error is larger than 6 standard errors, which happens
by chance with probability 2e-9: a failure means a bug (e.g. tasks sharing random streams).
"""

import math
import random
import sys
from time import perf_counter

from p2pscoop import futures


def evaluate_number_of_points_in_unit_circle(attempts, seed):
    """Count how many of `attempts` random points of the unit square fall in the unit disk."""
    rng = random.Random(seed)  # this task's own stream, never the shared global one
    points_fallen_in_unit_disk = 0
    for _ in range(attempts):
        x = rng.random()
        y = rng.random()
        if math.hypot(x, y) < 1.0:
            points_fallen_in_unit_disk += 1
    return points_fallen_in_unit_disk


def pi_calculus_with_Montecarlo_Method(workers, attempts, base_seed=2024):
    """Estimate pi with `workers` parallel tasks of `attempts` points each.

    Returns (estimate, standard error). Task i uses seed base_seed + i: Python's Mersenne
    Twister hashes its seed, so consecutive seeds give unrelated streams.
    """
    print("number of tasks %i - attempts per task %i" % (workers, attempts))
    start = perf_counter()
    # futures.map runs evaluate_number_of_points_in_unit_circle(attempts, seed) for every
    # seed, concurrently on all peers, and yields the counts in order.
    seeds = [base_seed + task for task in range(workers)]
    evaluate_task = futures.map(evaluate_number_of_points_in_unit_circle,
                                [attempts] * workers, seeds)
    task_result = sum(evaluate_task)
    total_points = workers * attempts
    print("%i points fell in the unit disk out of %i" % (task_result, total_points))

    pi_value = 4.0 * task_result / total_points
    # hits is binomial(total_points, pi/4), so the estimate's standard error is:
    std_error = math.sqrt(math.pi * (4.0 - math.pi) / total_points)
    error = abs(pi_value - math.pi)
    print("value of pi = %.6f" % pi_value)
    print("error = %.6f (%.4f %%), %.2f standard errors"
          % (error, 100.0 * error / math.pi, error / std_error))
    print("total time: %.2f s" % (perf_counter() - start))
    return pi_value, std_error


if __name__ == "__main__":
    n_tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_attempts = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    base_seed = int(sys.argv[3]) if len(sys.argv) > 3 else 2024
    estimate, std_error = pi_calculus_with_Montecarlo_Method(n_tasks, n_attempts, base_seed)
    if abs(estimate - math.pi) > 6 * std_error:
        print("pi ~ %.6f +/- %.6f: FAILED (error above 6 standard errors)"
              % (estimate, std_error))
        sys.exit(1)
    print("pi ~ %.6f +/- %.6f: OK (error below 6 standard errors)" % (estimate, std_error))
