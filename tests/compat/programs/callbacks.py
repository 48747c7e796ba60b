"""add_done_callback: each callback runs once, in the submitting process."""
import os

from scoop import futures

calls = []


def work(x):
    return os.getpid(), x * 10


def record(fut):
    calls.append((os.getpid(), fut.result()[1]))


if __name__ == "__main__":
    fs = []
    for x in range(8):
        f = futures.submit(work, x)
        f.add_done_callback(record)
        fs.append(f)
    futures.wait(fs)
    print("values", sorted(v for _, v in calls))
    print("all here", all(pid == os.getpid() for pid, _ in calls))
    late = []
    fs[0].add_done_callback(lambda f: late.append(f.result()[1]))
    print("already done", late)
