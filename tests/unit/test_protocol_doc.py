"""docs/protocol.md shows the tables of the code: regenerate with tools/state_diagram.py."""

import importlib.util
from pathlib import Path

from p2pscoop.core import messages as M
from p2pscoop.core import task as T

ROOT = Path(__file__).resolve().parents[2]


def load_tool():
    spec = importlib.util.spec_from_file_location("state_diagram",
                                                  ROOT / "tools" / "state_diagram.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_protocol_doc_is_up_to_date():
    tool = load_tool()
    text = (ROOT / "docs" / "protocol.md").read_text()
    assert tool.update(text) == text, "run: python tools/state_diagram.py"


def test_diagram_has_every_transition_and_message():
    tool = load_tool()
    states = tool.render_states()
    for (state, event), nxt in T.TRANSITIONS.items():
        assert f"    {state} --> {nxt}: {event}\n" in states
    for pair in T.DUPLICATES | T.NOOPS:
        assert f"| {pair[0]} | {pair[1]} |" in states
    messages = tool.render_messages()
    for cls in M.REGISTRY.values():
        assert f"`{cls.__name__.upper()}`" in messages


def test_a_stale_document_is_detected(tmp_path):
    tool = load_tool()
    doc = tmp_path / "protocol.md"
    text = (ROOT / "docs" / "protocol.md").read_text()
    doc.write_text(text.replace("PENDING --> RUNNING: run", "PENDING --> RUNNING: go"))
    assert tool.main(["--check", "--doc", str(doc)]) == 1
    assert tool.main(["--doc", str(doc)]) == 0
    assert doc.read_text() == text
    assert tool.main(["--check", "--doc", str(doc)]) == 0
