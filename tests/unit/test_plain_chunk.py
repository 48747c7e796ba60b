"""``payload.plain_chunk``: a map's chunk passes at once only if every argument is made of
plain values (atomic values and builtin containers of them, at any depth); anything else,
or a structure the pickler refuses, sends the caller to the per-element check."""

import pytest

from p2pscoop.runtime import payload


class Int(int):
    pass


def cyclic():
    loop: list = []
    loop.append(loop)
    return loop


def deep(n):
    value: list = []
    for _ in range(n):
        value = [value]
    return value


@pytest.mark.parametrize("chunk", [
    [],
    [(1,), (2,)],
    [((1, 2.5, "wall"),), ((2, 2.5, "wall"),)],
    [(True, None, b"x", 1j, range(3), slice(1, 2))],
    [({"a": [1, {2, 3}], "b": frozenset({4})},)],
    [(int, str, range)],  # atomic classes: pickled by name
])
def test_plain_chunks_pass_at_once(chunk):
    assert payload.plain_chunk(chunk)


@pytest.mark.parametrize("chunk", [
    [(1,), (lambda: 1,)],
    [(memoryview(b"x"),)],  # pickle refuses it: the per-element check says so
    [(Int(3),)],  # a subclass: its class would travel by reference
    [((1, object()),)],
    [(cyclic(),)],
    [(deep(5000),)],
])
def test_other_chunks_go_to_the_per_element_check(chunk):
    assert not payload.plain_chunk(chunk)
