"""Parallel merge sort: each half is sorted by a submitted task, then merged."""
import random

from scoop import futures

CUTOFF = 64


def merge(left, right):
    out, i, j = [], 0, 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    return out + left[i:] + right[j:]


def mergesort(data):
    if len(data) <= CUTOFF:
        return sorted(data)
    mid = len(data) // 2
    left = futures.submit(mergesort, data[:mid])
    right = mergesort(data[mid:])
    return merge(left.result(), right)


if __name__ == "__main__":
    rng = random.Random(20240607)
    data = [rng.randrange(100000) for _ in range(5000)]
    result = mergesort(data)
    print("sorted", result == sorted(data), len(result))
    print("ends", result[:3], result[-3:])
