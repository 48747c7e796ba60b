"""``payload.Pickler``: the libraries' own reducers win over cloudpickle's by-value pickling.

The pattern under test is DEAP's: a metaclass whose classes are rebuilt by a factory
registered with ``copyreg``, the factory replacing the module's attribute at every unpickling,
so that a class made earlier is no longer reachable by its name. cloudpickle alone ships such
a class by value and the metaclass cannot rebuild it (``TypeError: metaclass conflict``).

Every round trip here ends in a fresh interpreter (``load_elsewhere``), as on a worker: that
process has never seen the class and must rebuild it from the stream alone.
"""

from __future__ import annotations

import copyreg
import os
import pickle
import subprocess
import sys
import textwrap

import pytest

from p2pscoop.core.deque import Work
from p2pscoop.core.messages import OK
from p2pscoop.runtime import payload

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# --- a metaclass in DEAP's style, registered with copyreg -------------------------------

class Maker(type):
    """Takes one base, not a tuple (like DEAP's MetaCreator): ``Maker(name, base, dict)``."""

    def __new__(mcs, name, base, dct):
        return super().__new__(mcs, name, (base,), dict(dct))

    def __init__(cls, name, base, dct):
        cls.made_from = (name, base, dct)
        super().__init__(name, (base,), dict(dct))

    def __reduce__(cls):
        return (make, cls.made_from)


copyreg.pickle(Maker, Maker.__reduce__)


def make(name, base, dct):
    """Make the class and (re)bind it in this module, as DEAP's ``creator`` does."""
    cls = Maker(name, base, dct)
    globals()[name] = cls
    return cls


class SelfReducing(type):
    """A metaclass with its own ``__reduce__`` and no ``copyreg`` entry."""

    def __reduce__(cls):
        return (rebuild_self_reducing, (cls.__name__, cls.tag))


def rebuild_self_reducing(name, tag):
    return SelfReducing(name, (), {"tag": tag, "__module__": __name__})


def load_elsewhere(data: bytes, expr: str) -> str:
    """Unpickle ``data`` in a fresh interpreter (which can import this module) and return
    ``repr(eval(expr))`` with ``obj`` bound to what was unpickled; AssertionError on failure."""
    code = textwrap.dedent(f"""
        import pickle, sys
        obj = pickle.loads(sys.stdin.buffer.read())
        print(repr({expr}))
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, ROOT, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], input=data, env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode().strip()


def test_registered_metaclass_reducer_wins_for_an_unreachable_class():
    old = make("Bag", list, {"kind": "bag"})
    make("Bag", list, {"kind": "bag"})  # rebinds the name: ``old`` is unreachable now
    assert globals()["Bag"] is not old
    bag = old([1, 2, 3])
    bag.note = "kept"
    data = payload.dumps(bag)
    assert b"_make_skeleton_class" not in data  # not shipped by value
    assert load_elsewhere(data, "(type(obj).__name__, type(type(obj)).__name__, "
                                "list(obj), obj.note, obj.kind)") == \
        repr(("Bag", "Maker", [1, 2, 3], "kept", "bag"))


def test_registered_reducer_used_for_a_reachable_class_too():
    """As with plain pickle: the copyreg entry of the metaclass, not a global reference."""
    cls = make("Box", dict, {})
    data = payload.dumps(cls({"a": 1}))
    assert pickle.loads(data) == {"a": 1}
    assert load_elsewhere(data, "(type(obj).__name__, dict(obj))") == repr(("Box", {"a": 1}))


def test_metaclass_own_reduce_beats_by_value():
    cls = SelfReducing("Lost", (), {"tag": 7, "__module__": __name__})  # reachable by no name
    data = payload.dumps(cls)
    assert b"_make_skeleton_class" not in data
    assert load_elsewhere(data, "(obj.__name__, obj.tag, type(obj).__name__)") == \
        repr(("Lost", 7, "SelfReducing"))


def test_reachable_class_with_own_reduce_goes_by_reference():
    """Plain pickle saves a reachable class by name whatever its metaclass: so do we."""
    data = payload.dumps(Reachable)
    assert b"rebuild_self_reducing" not in data
    assert pickle.loads(data) is Reachable


Reachable = rebuild_self_reducing("Reachable", 1)


def test_what_plain_pickle_cannot_do_still_travels_by_value():
    def local_function(x, k=3):
        return x * k

    class Local:
        def __init__(self, v):
            self.v = v

        def twice(self):
            return 2 * self.v

    data = payload.dumps((local_function, lambda y=4: y + 1, Local(21)))
    assert load_elsewhere(data, "(obj[0](2), obj[1](), obj[2].twice())") == repr((6, 5, 42))


def test_copyreg_entry_of_an_instance_type_is_used():
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    copyreg.pickle(Point, lambda p: (complex, (p.x, p.y)))
    try:
        data = payload.dumps([Point(1, 2), Point(3, 4)])
    finally:
        del copyreg.dispatch_table[Point]
    assert load_elsewhere(data, "obj") == repr([1 + 2j, 3 + 4j])


def test_work_and_result_round_trip_through_the_api():
    old = make("Pair", list, {})
    make("Pair", list, {})
    work = Work(b"o" * 16, 1, 0, 2, sorted, [(old([3, 1]),), (old([2, 5]),)], 0, {}, None)
    payload.check_submittable(sorted, (old([1]),), {})
    back = payload.loads_work(b"o" * 16, 1, 0, 2, payload.dumps_work(work))
    assert back.error is None and back.fn is sorted
    assert [type(args[0]).__name__ for args in back.items] == ["Pair", "Pair"]
    status, data = payload.dumps_result(OK, [old([9])])
    assert status == OK
    assert load_elsewhere(data, "[(type(x).__name__, list(x)) for x in obj]") == \
        repr([("Pair", [9])])


# --- DEAP itself --------------------------------------------------------------------------

def test_deap_individual_sent_out_again_after_coming_back():
    """The island-model case: an individual unpickled here (DEAP re-creates its class then)
    and pickled again must load on another process."""
    pytest.importorskip("deap")
    from deap import base, creator

    creator.create("PRFitness", base.Fitness, weights=(1.0, -1.0))
    creator.create("PRIndividual", list, fitness=creator.PRFitness)
    ind = creator.PRIndividual([1, 0, 1])
    ind.fitness.values = (2.0, 3.0)
    back = pickle.loads(payload.dumps([ind]))[0]  # re-creates creator.PRIndividual
    assert creator.PRIndividual is not type(ind)  # the original class is unreachable now
    assert back == ind and back.fitness.values == (2.0, 3.0)
    data = payload.dumps([ind, back])
    assert b"_make_skeleton_class" not in data
    expr = "[(type(i).__name__, list(i), i.fitness.values) for i in obj]"
    assert load_elsewhere(data, expr) == repr([("PRIndividual", [1, 0, 1], (2.0, 3.0))] * 2)


def test_deap_gp_tree_round_trip():
    pytest.importorskip("deap")
    import operator

    from deap import base, creator, gp

    pset = gp.PrimitiveSet("PR", 1)
    pset.addPrimitive(operator.add, 2)
    pset.addPrimitive(operator.mul, 2)
    creator.create("PRTreeFitness", base.Fitness, weights=(-1.0,))
    creator.create("PRTree", gp.PrimitiveTree, fitness=creator.PRTreeFitness)
    tree = creator.PRTree(gp.PrimitiveTree.from_string("add(mul(ARG0, ARG0), ARG0)", pset))
    tree.fitness.values = (0.5,)
    pickle.loads(payload.dumps(tree))  # re-creates creator.PRTree
    data = payload.dumps(tree)
    assert load_elsewhere(data, "(type(obj).__name__, str(obj), obj.height, "
                                "obj.fitness.values)") == \
        repr(("PRTree", "add(mul(ARG0, ARG0), ARG0)", 2, (0.5,)))


class _Context:
    """An argument object of a user class (weak references allowed)."""


def test_an_argument_checked_once_is_not_pickled_again_but_a_new_one_is():
    import threading

    ctx = _Context()
    payload.check_args((ctx,))
    ctx.lock = threading.Lock()  # unpicklable now: the verdict of its first check stands
    payload.check_args((ctx,))
    fresh = _Context()
    fresh.lock = threading.Lock()
    with pytest.raises(payload.PayloadError, match="cannot be pickled"):
        payload.check_args((fresh,))


def test_containers_are_checked_at_every_submit():
    import threading

    box = [1, 2]
    payload.check_args((box,))
    box.append(threading.Lock())
    with pytest.raises(payload.PayloadError, match="cannot be pickled"):
        payload.check_args((box,))



def test_a_small_tuple_of_atomic_values_passes_and_one_holding_a_lock_does_not():
    import threading

    payload.check_args(((1, 2.5, "wall", None, b"x"),))
    with pytest.raises(payload.PayloadError, match="cannot be pickled"):
        payload.check_args(((1, threading.Lock()),))
    with pytest.raises(payload.PayloadError, match="cannot be pickled"):
        payload.check_args((tuple(range(20)) + (threading.Lock(),),))


class _ListWithLock(list):
    """A list subclass: its elements may be atomic, its own attributes still travel."""


def test_lists_and_sets_of_atomic_values_of_any_length_pass_and_others_are_pickled():
    import threading

    frontier = [bytes([i % 256]) * 20 for i in range(5000)]  # UTS's argument: a list of ids
    payload.check_args((frontier, set(range(100)), frozenset("ab"), tuple(range(40))))
    for bad in (frontier + [threading.Lock()], {1, threading.Lock()},
                tuple(range(40)) + (threading.Lock(),)):
        with pytest.raises(payload.PayloadError, match="cannot be pickled"):
            payload.check_args((bad,))
    sub = _ListWithLock([1, 2])
    sub.lock = threading.Lock()  # a subclass is not scanned: pickled, so this is caught
    with pytest.raises(payload.PayloadError, match="cannot be pickled"):
        payload.check_args((sub,))


# --- functions that arrived in a GIVE -------------------------------------------------

def test_a_trusted_callable_is_not_pickled_again_by_check_callable():
    """``trust_callable``: a function unpickled from a GIVE pickles (it got here so), and a
    stolen unit submits it again and again; ``check_callable`` then takes the cached
    verdict. Shown with a function that does not pickle: trusted, it passes unchecked."""
    import threading

    lock = threading.Lock()

    def holds_a_lock():
        return lock

    with pytest.raises(payload.PayloadError):
        payload.check_callable(holds_a_lock)
    payload.trust_callable(holds_a_lock)
    payload.check_callable(holds_a_lock)  # no pickling: the verdict is taken as given
    with pytest.raises(TypeError):  # a non-callable still fails, trusted or not
        payload.trust_callable(42)
        payload.check_callable(42)


def test_a_peer_trusts_the_function_of_a_work_it_decodes():
    from p2pscoop.runtime.peer import Peer

    def local_fn(x):  # (a local function: pickled by value, a new object at each load)
        return x + 1

    data = payload.dumps_work(Work(b"o" * 16, 1, 0, 1, local_fn, [(1,)], 0, {}, None))
    back = Peer.loads_work(None, data, b"o" * 16, 1, 0, 1)  # (it uses nothing of the peer)
    assert back.fn is not local_fn and back.fn(1) == 2
    assert payload._checked_callables.get(id(back.fn)) is back.fn


def test_a_thread_that_pickles_mid_scan_waits_for_the_programs_modules(tmp_path, monkeypatch):
    # any thread may pickle work (the comm thread a steal's answer, the main thread a push):
    # one that comes while another registers the program's modules must not go on before
    # they are registered, or it pickles their functions by reference (a node without the
    # program's files then fails the task: "No module named ...")
    import threading
    import time

    import cloudpickle

    root = tmp_path / "prog"
    root.mkdir()
    (root / "midscan_mod.py").write_text("def f():\n    return 1\n")
    sys.path.insert(0, str(root))
    try:
        import midscan_mod
        monkeypatch.setattr(payload, "_by_value_roots", [str(root)])
        monkeypatch.setattr(payload, "_by_value_seen", 0)
        real, scanning = cloudpickle.register_pickle_by_value, threading.Event()

        def slow(module):  # the first thread is preempted mid-scan
            scanning.set()
            time.sleep(0.2)
            real(module)

        monkeypatch.setattr(cloudpickle, "register_pickle_by_value", slow)
        first = threading.Thread(target=payload._register_local_modules)
        first.start()
        assert scanning.wait(10)
        payload._register_local_modules()  # the second thread
        assert "midscan_mod" in cloudpickle.list_registry_pickle_by_value()
        first.join()
    finally:
        sys.path.remove(str(root))
        if "midscan_mod" in cloudpickle.list_registry_pickle_by_value():
            cloudpickle.unregister_pickle_by_value(sys.modules["midscan_mod"])
        sys.modules.pop("midscan_mod", None)


# --- by-value code keeps its file name --------------------------------------------------

def _failing_closure(limit):
    def check(x):  # a closure: not reachable by name, so it travels by value
        helper = lambda y: y / 0 if y > limit else y  # noqa: E731 - nested code, by value too
        return helper(x)
    return check


def test_code_travelling_by_value_keeps_its_file_name_and_source_line():
    """cloudpickle writes ``<dynamic-code>`` for the file of code it ships by value, so the
    traceback of a program's task that raised on another peer named no file and showed no
    source line; ``payload.Pickler`` keeps the real file name."""
    data = payload.dumps(_failing_closure(3))
    assert b"<dynamic-code>" not in data
    names = load_elsewhere(data, "[obj.__code__.co_filename] + [c.co_filename for c in "
                                 "obj.__code__.co_consts if hasattr(c, 'co_filename')]")
    assert names == repr([__file__, __file__])
    code = textwrap.dedent("""
        import pickle, sys, traceback
        check = pickle.loads(sys.stdin.buffer.read())
        assert check(2) == 2
        try:
            check(10)
        except ZeroDivisionError:
            print(traceback.format_exc())
    """)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [HERE, ROOT, env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", code], input=data, env=env,
                          capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    text = proc.stdout.decode()
    assert f'File "{__file__}", line' in text and "in check" in text, text
    assert "helper = lambda y: y / 0 if y > limit else y" in text, text  # the source line
