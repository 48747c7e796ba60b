"""SCOOP dropped map's keyword arguments silently; p2pscoop drops them too, and says so once."""
from scoop import futures


def add(a, b=1):
    return a + b


if __name__ == "__main__":
    print(list(futures.map(add, [1, 2], b=100)))
    print(list(futures.map(add, [3, 4], b=100)))
    print(futures.mapReduce(add, max, [5, 6], bogus=True))
