"""Draw the unit state machine and the message table of docs/protocol.md from the code.

The tables in ``p2pscoop/core/task.py`` (``TRANSITIONS``, ``DUPLICATES``, ``NOOPS``) and the
message registry of ``p2pscoop/core/messages.py`` are the truth; the document shows them. This
tool renders both as Markdown (a Mermaid ``stateDiagram-v2`` and two tables) and replaces the
text between the ``<!-- generated:NAME begin -->`` / ``<!-- generated:NAME end -->`` markers.

    python tools/state_diagram.py           # rewrite docs/protocol.md in place
    python tools/state_diagram.py --check   # exit 1 if the document is out of date
    python tools/state_diagram.py --print   # print the generated blocks

``tests/unit/test_protocol_doc.py`` runs the check, so a change to a table that forgets the
document fails the unit tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "protocol.md"

if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from p2pscoop.core import messages as M  # noqa: E402
from p2pscoop.core import task as T  # noqa: E402

MARKER = re.compile(r"(<!-- generated:(?P<name>[\w-]+) begin -->\n)(?P<body>.*?)"
                    r"(<!-- generated:(?P=name) end -->)", re.S)

#: the event that creates a unit, and the states that end it (drawn as [*] edges)
BIRTH = "submit"


def render_states() -> str:
    """The lifecycle of one unit as a Mermaid diagram, plus the duplicate/no-op table."""
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {T.PENDING}: {BIRTH}"]
    for (state, event), nxt in T.TRANSITIONS.items():
        lines.append(f"    {state} --> {nxt}: {event}")
    for state in T.STATES:
        if state in T.FINAL:
            lines.append(f"    {state} --> [*]")
    lines.append("```")
    lines.append("")
    lines.append("Harmless events (`next_state` returns `None`: nothing changes); every "
                 "other pair raises `LocalProtocolError`:")
    lines.append("")
    lines.append("| state | event | outcome |")
    lines.append("|---|---|---|")
    for state in T.STATES:
        for event in T.EVENTS:
            if (state, event) in T.DUPLICATES:
                lines.append(f"| {state} | {event} | duplicate (counted, dropped) |")
            elif (state, event) in T.NOOPS:
                lines.append(f"| {state} | {event} | no-op |")
    return "\n".join(lines) + "\n"


def render_messages() -> str:
    """One row per registered message type, drawn from its schema: code, name, what it is
    for, header fields with their kinds, payload frames."""
    lines = ["| code | message | purpose | header fields after `[version, code]` | "
             "payload frames |",
             "|---|---|---|---|---|"]
    for code, cls in sorted(M.REGISTRY.items()):
        fields = ", ".join(f"`{name}` ({kind.doc()})" for name, kind in cls.SCHEMA)
        lines.append(f"| {code} | `{cls.__name__.upper()}` | {cls.DOC} | "
                     f"{fields or '(none)'} | {cls.PAYLOADS} |")
    lines.append("")
    lines.append(f"Limits: protocol version {M.PROTOCOL_VERSION}; header at most "
                 f"{M.MAX_HEADER} bytes; lists at most {M.MAX_LIST} entries; strings at most "
                 f"{M.MAX_STR} characters; integers in [0, 2**63 - 1]; peer ids exactly "
                 f"{M.ID_LEN} bytes. Result status codes: OK={M.OK}, RAISED={M.RAISED}, "
                 f"FAILED={M.FAILED}, RANGE={M.RANGE} (the values of a range of a map's units, "
                 f"`core/ranges.py`).")
    return "\n".join(lines) + "\n"


BLOCKS = {"states": render_states, "messages": render_messages}


def update(text: str) -> str:
    """``text`` with every generated block replaced by a fresh rendering."""
    seen = set()

    def repl(m: re.Match) -> str:
        name = m.group("name")
        if name not in BLOCKS:
            raise SystemExit(f"unknown generated block {name!r} in {DOC}")
        seen.add(name)
        return m.group(1) + BLOCKS[name]() + m.group(4)

    out = MARKER.sub(repl, text)
    missing = set(BLOCKS) - seen
    if missing:
        raise SystemExit(f"{DOC} lacks the markers of block(s) {sorted(missing)}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the document is stale")
    ap.add_argument("--print", action="store_true", help="print the generated blocks")
    ap.add_argument("--doc", type=Path, default=DOC, help="the document to update")
    args = ap.parse_args(argv)
    if args.print:
        for name, fn in BLOCKS.items():
            print(f"<!-- {name} -->\n{fn()}")
        return 0
    text = args.doc.read_text()
    new = update(text)
    if args.check:
        if new != text:
            print(f"{args.doc} is out of date: run python tools/state_diagram.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != text:
        args.doc.write_text(new)
        print(f"updated {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
