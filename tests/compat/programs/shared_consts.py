"""shared.setConst / getConst: data, a function, redefinition, a missing name."""
from scoop import futures, shared


def triple(x):
    return 3 * x


def use_constants(i):
    table = shared.getConst("table", timeout=60)
    scale = shared.getConst("scale", timeout=60)
    fn = shared.getConst("fn", timeout=60)
    return fn(table[i]) * scale


if __name__ == "__main__":
    shared.setConst(table={i: i * i for i in range(10)}, scale=2, fn=triple)
    print("values", list(futures.map(use_constants, range(10))))
    print("local", shared.getConst("scale"))
    try:
        shared.setConst(scale=3)
    except TypeError as exc:
        print("redefine", type(exc).__name__, exc)
    print("still", shared.getConst("scale"))
    print("missing", shared.getConst("no_such_constant", timeout=0))
    shared.setConst(offset=lambda x, k=7: x + k)
    print("lambda constant", list(futures.map(
        lambda x: shared.getConst("offset", timeout=60)(x), range(3))))
