"""The life of one unit of work, as seen by its owner: a transition table.

A *unit* is one call of the user's function: one ``submit`` or one element of a ``map``. It
belongs to the peer that created it (its *owner*), which alone tracks its state and alone
resolves its future. Units travel inside ``Work`` items (see ``deque.py``); this module only
says which state changes are legal.

Rules:

1. A unit is in exactly one state at a time; the table below is the only way to change it.
2. The owner keeps every unit it gave away (LEASED) until a result for it arrives: that is the
   lease fault tolerance builds on. If the holder dies or gives the work back, the unit becomes
   PENDING again and will run here or be stolen again.
3. The first result wins. A result for a unit that is already DONE (or CANCELLED) is a
   *duplicate*: counted, dropped, never an error. A result may legally arrive while the unit
   is PENDING or RUNNING again after a re-dispatch: it still wins, and the later local run's
   outcome becomes the duplicate.

The docs diagram is drawn from ``TRANSITIONS`` by ``tools/state_diagram.py``.
"""

from __future__ import annotations

from .errors import LocalProtocolError

# States (short strings: cheap to compare, readable in reprs and logs).
PENDING = "PENDING"  # queued on the owner, runnable here or stealable
RUNNING = "RUNNING"  # executing on the owner
LEASED = "LEASED"  # given to another peer; the owner still keeps its description
DONE = "DONE"  # resolved exactly once
CANCELLED = "CANCELLED"  # cancelled before it ran; resolved as cancelled

STATES = (PENDING, RUNNING, LEASED, DONE, CANCELLED)
FINAL = frozenset((DONE, CANCELLED))

# Events.
RUN = "run"  # the owner's scheduler starts it
LEASE = "lease"  # a thief took it
RECLAIM = "reclaim"  # the holder gave it back (the owner stole it back)
LOST = "lost"  # the holder died before answering
FINISH = "finish"  # the local run ended (value or exception)
RESULT = "result"  # a result arrived from another peer
CANCEL = "cancel"  # Future.cancel()

EVENTS = (RUN, LEASE, RECLAIM, LOST, FINISH, RESULT, CANCEL)

#: (state, event) -> next state. Anything absent is illegal, except the duplicates below.
TRANSITIONS: dict[tuple[str, str], str] = {
    (PENDING, RUN): RUNNING,
    (PENDING, LEASE): LEASED,
    (PENDING, CANCEL): CANCELLED,
    (PENDING, RESULT): DONE,  # late result of an earlier lease, after a re-dispatch
    (RUNNING, FINISH): DONE,
    (RUNNING, RESULT): DONE,  # same, while the re-dispatched copy runs here
    (LEASED, RESULT): DONE,
    (LEASED, RECLAIM): PENDING,
    (LEASED, LOST): PENDING,
}

#: Events that are harmless on a final state: the outcome is a counted duplicate.
DUPLICATES = frozenset(
    (
        (DONE, FINISH),
        (DONE, RESULT),
        (CANCELLED, FINISH),
        (CANCELLED, RESULT),
    )
)

#: Events whose arrival on a final state is a no-op answer rather than a bug.
NOOPS = frozenset(((DONE, CANCEL), (CANCELLED, CANCEL), (RUNNING, CANCEL), (LEASED, CANCEL)))


def next_state(state: str, event: str, role: str = "owner") -> str | None:
    """Return the state after ``event``; ``None`` means "duplicate or no-op: change nothing".

    Raises ``LocalProtocolError`` naming the role, state and event if the move is illegal.
    """
    nxt = TRANSITIONS.get((state, event))
    if nxt is not None:
        return nxt
    if (state, event) in DUPLICATES or (state, event) in NOOPS:
        return None
    raise LocalProtocolError(f"{role}: event {event!r} is illegal in state {state}")
