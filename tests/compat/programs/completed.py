"""map_as_completed, as_completed and wait: every result once, whatever the order;
wait() does not raise the error of a failed future."""
from scoop import futures


def cube(x):
    return x ** 3


def fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


if __name__ == "__main__":
    print("map_as_completed", sorted(futures.map_as_completed(cube, range(10))))
    fs = [futures.submit(cube, x) for x in range(6)]
    print("as_completed", sorted(f.result() for f in futures.as_completed(fs)))
    fs = [futures.submit(fail_on_three, x) for x in range(6)]
    done, not_done = futures.wait(fs)
    print("wait", len(done), len(not_done))
    print("errors", [type(f.exception()).__name__ for f in fs if f.exception() is not None])
    done, _ = futures.wait(fs, return_when=futures.FIRST_COMPLETED)
    print("first completed", len(done) >= 1)
