"""The decoder's fast predicates (``fields.py``: each kind's ``fits``) against its checks.

``messages.decode`` asks each field's ``fits`` first and calls the kind's ``check`` only
when it says False. So a ``fits`` laxer than its ``check`` would let a malformed frame
through. Checked two ways: per kind, on values drawn at random and on the edges of each
bound; and per frame, by decoding the fuzzer's frames (``test_messages.rand_frames``) with
the predicates and with every field sent to ``check``: both accept the same message or
both reject it with the same reason.
"""

import random

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pscoop.core import fields as F
from p2pscoop.core import messages as M
from p2pscoop.core.errors import RemoteProtocolError
from test_messages import FUZZ, FUZZ_SETTINGS, MESSAGES, rand_frames, structures

ID = bytes(range(16))


def _kinds():
    """Every field kind of every message, with the columns of its rows."""
    out = {}
    for cls in M.REGISTRY.values():
        for name, kind in cls.SCHEMA:
            out[f"{cls.__name__}.{name}"] = kind
            for col, sub in getattr(kind, "columns", ()):
                out[f"{cls.__name__}.{name}.{col}"] = sub
    return out


KINDS = _kinds()


def _accepts(kind, value, row=None) -> bool:
    try:
        kind.check(value, "x", row)
        return True
    except RemoteProtocolError:
        return False


EDGES = [None, True, False, 0, 1, -1, 255, 256, 2**63 - 1, 2**63, 1.0, "", "x" * F.MAX_STR,
         "x" * (F.MAX_STR + 1), b"", ID, ID[:15], ID + b"x", b"m" * F.MAX_BLOB,
         b"m" * (F.MAX_BLOB + 1), [], [[ID, 0, 0, 1, True]], [[ID, 0, 1, 1, True]],
         [[ID, 0, 2, 1, True]], [[ID, 0, 0, 3]], [[ID, 0, 0, 4]], [[ID, 0, 0, True]],
         [[0, 1, 1]], [[0, 1, 0]], [[ID, "a", 0, "h"]], [[ID, "a", -1, "h"]], [0] * 3,
         [[ID, 0, 0, 1, True]] * (F.MAX_LIST + 1), {"a": 1}]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_a_field_that_fits_passes_its_check(name):
    kind = KINDS[name]
    fits = kind.fits()
    for value in EDGES:
        if fits(value):
            assert _accepts(kind, value), (name, value)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_plain_values_that_pass_a_check_fit(name):
    """The fast path is taken: a kind that needs no row says True for what it accepts."""
    kind = KINDS[name]
    if getattr(kind, "above", None) is not None:
        pytest.skip("compares two columns: only Rows.fits can tell")
    fits = kind.fits()
    for value in EDGES:
        if _accepts(kind, value):
            assert fits(value), (name, value)


@settings(max_examples=300 * FUZZ, **FUZZ_SETTINGS)
@given(st.sampled_from(sorted(KINDS)), structures)
def test_fits_is_never_laxer_than_check_on_any_structure(name, value):
    kind = KINDS[name]
    if kind.fits()(value):
        assert _accepts(kind, value), (name, value)


def _decode_checked(frames):
    """``decode`` with every field sent to its ``check`` (the predicates all say no)."""
    saved = {cls: cls.FITS for cls in M.REGISTRY.values()}
    try:
        for cls in saved:
            cls.FITS = tuple((lambda v: False) for _ in cls.SCHEMA)
        return M.decode(frames)
    finally:
        for cls, fits in saved.items():
            cls.FITS = fits


def _outcome(decode, frames):
    try:
        return "ok", decode(frames)
    except RemoteProtocolError as exc:
        return "bad", str(exc)


def test_the_fuzzers_frames_decode_alike_with_and_without_the_predicates():
    r = random.Random(8)
    accepted = 0
    for _ in range(3000 * FUZZ):
        frames = rand_frames(r)
        fast, slow = _outcome(M.decode, frames), _outcome(_decode_checked, frames)
        assert fast == slow, frames
        accepted += fast[0] == "ok"
    assert accepted > 0


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_valid_message_takes_the_fast_path(msg):
    """No field of a well-formed message falls back to ``check`` (which would be slower,
    not wrong): each predicate accepts its field."""
    header = msgpack.unpackb(M.encode(msg)[0], raw=False)
    for fits, value in zip(type(msg).FITS, header[2:]):
        assert fits(value)
