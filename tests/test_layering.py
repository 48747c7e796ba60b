"""Architecture rules that a reviewer would otherwise check by hand.

* ``p2pscoop.core`` is sans-I/O: it imports nothing else of ours and no sockets, threads,
  greenlets, subprocesses or clocks (time and randomness are arguments).
* ``p2pscoop.transport`` imports of ours only ``core`` and ``transport`` (never the runtime,
  launcher or discovery); its in-memory transport is sans-I/O like the core.
* Every unpickling call lives in ``p2pscoop/runtime/payload.py`` (one audited module).
* Modules stay within their size budget.
"""

import ast
import pathlib

import pytest

PKG = pathlib.Path(__file__).resolve().parent.parent / "p2pscoop"
FORBIDDEN_IN_CORE = {"zmq", "greenlet", "zeroconf", "socket", "threading", "subprocess",
                     "asyncio", "time", "select", "os", "cloudpickle", "pickle"}


def imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


@pytest.mark.parametrize("path", sorted((PKG / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_is_sans_io(path):
    for name, level in imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN_IN_CORE, f"{path.name} imports {name}"
        if level == 0:
            assert top != "p2pscoop", f"{path.name} imports {name}: use relative core imports"
        else:
            assert level == 1, f"{path.name} reaches outside core with a level-{level} import"


def _ours(name: str, level: int, path: pathlib.Path) -> str | None:
    """The subpackage of ``p2pscoop`` an import in ``path`` names (None: not ours)."""
    if level == 0:
        parts = name.split(".")
        return (parts[1] if len(parts) > 1 else "") if parts[0] == "p2pscoop" else None
    here = path.relative_to(PKG).parent.parts
    base = list(here[:len(here) - (level - 1)]) if level - 1 <= len(here) else []
    return (base + name.split("."))[0] if (base or name) else ""


@pytest.mark.parametrize("path", sorted((PKG / "transport").glob("*.py")), ids=lambda p: p.name)
def test_transport_imports_no_runtime(path):
    for name, level in imports(path):
        sub = _ours(name, level, path)
        assert sub in (None, "core", "transport"), f"transport/{path.name} imports {name}"


def test_memory_transport_is_sans_io():
    path = PKG / "transport" / "memory.py"
    for name, level in imports(path):
        assert name.split(".")[0] not in FORBIDDEN_IN_CORE, f"memory.py imports {name}"
        assert _ours(name, level, path) in (None, "core"), f"memory.py imports {name}"


def test_core_uses_no_global_randomness():
    for path in (PKG / "core").glob("*.py"):
        text = path.read_text()
        for call in ("random.random(", "random.choice(", "random.randint(", "random.shuffle("):
            assert call not in text, f"{path.name} uses the global RNG ({call})"


def test_one_module_unpickles():
    offenders = []
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        if any(s in text for s in ("pickle.loads", "cloudpickle.loads", "recv_pyobj",
                                   "pickle.load(", "recv_serialized")):
            offenders.append(path.relative_to(PKG).as_posix())
    assert offenders == ["runtime/payload.py"]


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: p.name)
def test_module_size_budget(path):
    lines = path.read_text().count("\n")
    assert lines <= 600, f"{path.name} has {lines} lines: split it"
