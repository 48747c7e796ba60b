"""Objects travel to the tasks and come back modified.

(Whether the caller's own objects change too depends on where each task ran, as in SCOOP:
a task run by its submitter works on the very objects it was given. Programs must not rely
on either, so this one does not look.)"""
from scoop import futures


class Particle:
    def __init__(self, name, x, v):
        self.name, self.x, self.v, self.steps = name, x, v, 0

    def __repr__(self):
        return "{0}(x={1}, steps={2})".format(self.name, self.x, self.steps)


def advance(particle, steps):
    for _ in range(steps):
        particle.x += particle.v
        particle.steps += 1
    return particle


if __name__ == "__main__":
    particles = [Particle("p%d" % i, i, i + 1) for i in range(5)]
    moved = list(futures.map(advance, particles, [10] * 5))
    print("moved", moved)
    print("types", sorted({type(p).__name__ for p in moved}))
    sets = list(futures.map(lambda s: s | {len(s)}, [set(), {0}, {0, 1}]))
    print("sets", [sorted(s) for s in sets])
