"""An exception raised deep in a tree of tasks ends the program with a readable traceback."""
from scoop import futures


def check_leaf(n):
    if n == 13:
        raise ValueError("leaf 13 is bad")
    return n


def branch(depth, base):
    if depth == 0:
        return check_leaf(base)
    return sum(futures.map(branch, [depth - 1] * 4, [base * 4 + k for k in range(4)]))


if __name__ == "__main__":
    print("starting")
    print(futures.submit(branch, 3, 0).result())
    print("not reached")
