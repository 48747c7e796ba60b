"""The wire codec (core/messages.py): round trips, a table of malformed frames, a fuzzer.

The rule under test: ``decode`` either returns a valid message or raises
``RemoteProtocolError``; nothing else ever escapes it, whatever a peer sends.
"""

import os
import random

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from p2pscoop.core import messages as M
from p2pscoop.core.errors import RemoteProtocolError, VersionError

ID = bytes(range(16))
ID2 = bytes(range(1, 17))
V = M.PROTOCOL_VERSION


def pack(*header) -> bytes:
    return msgpack.packb(list(header), use_bin_type=True)


# -- round trips -----------------------------------------------------------------------

MESSAGES = [
    M.Hello("lab", ID, 3, "tcp://127.0.0.1:5555", "h1", "3.11.4", 5, "0.1.0", 0, "prog", b""),
    M.Hello("lab", ID, 3, "tcp://127.0.0.1:5555", "h1", "3.11.4", 5, "0.1.0", 1, "",
            b"m" * 32),
    M.Welcome(4, [[ID, "tcp://127.0.0.1:1", 0, "h1"], [ID2, "tcp://127.0.0.1:2", 1, "h2"]]),
    M.Welcome(1, []),
    M.Steal(0),
    M.Steal(M.MAX_INT),
    M.Give(7, []),
    M.Give(7, [[ID, 0, 0, 10, True], [ID2, 5, 3, 4, False], [ID, 1, 2, 9, True]],
           payloads=[b"work-a", b"work-b"]),
    M.Results([]),
    M.Results([[ID, 0, 0, M.OK], [ID2, 1, 2, M.RAISED], [ID, 3, 4, M.FAILED]],
              payloads=[b"x", b"", b"\x80\x05N."]),
    M.Hint(),
    M.Const("pi", payloads=[b"3.14"]),
    M.Shutdown(0),
    M.Shutdown(255),
    M.Refuse("python 3.12 there, 3.11 here"),
    M.Ping(),
    M.Ping([[ID, "tcp://10.0.0.1:5000", 3, "h1"], [ID2, "tcp://10.0.0.2:5001", 0, "h2"]]),
    M.Ping([], ID, 123_456, 0),
    M.Ping([], ID2, 7, M.NO_ROUTE),
    M.Ping([], ID, 9, 2, 1000),
    M.Roster(),
    M.Roster([[ID, "tcp://10.0.0.1:5000", 3, "h1"]], [[ID2, ID]]),
    M.OriginGone(ID, 41),
    M.Bye(),
    M.Prune(),
    M.Serve("prog", ID, "tcp://10.0.0.1:5000", 0),
    M.Served("prog", 2),
    M.Status(4),
    M.StatusReport(4, '{"peers": 2}'),
    M.ConstPropose(9, "table", payloads=[b"\x80\x05N."]),
    M.ConstPropose(2, "k", 0, payloads=[b""]),
    M.ConstVerdict(9, True),
    M.ConstVerdict(0, False),
    M.ConstVerdict(3, False, "the program's origin is gone"),
    M.Telemetry("h1", 123, 4, "fib", 10, 12, 3, 2, 1, 0, 250_000, False,
                [[0, ID, 1_700_000_000_000_000, 1_700_000_000_000_100, "fib"]],
                [[ID2, 5, 1_700_000_000_000_050]]),
    M.Telemetry("h1", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, True, [], []),
    M.Telemetry("h1", 1, 0, "", 0, 0, 0, 0, 0, 0, 0, False, [], [], ID2),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(msg):
    frames = M.encode(msg)
    assert msgpack.unpackb(frames[0])[:2] == [V, msg.TYPE]
    back = M.decode(frames)
    assert back == msg
    assert back.payloads == msg.payloads
    assert type(back) is type(msg)


def test_every_message_type_is_round_tripped():
    assert {type(m) for m in MESSAGES} == set(M.REGISTRY.values())


def test_decode_accepts_frame_like_buffers():
    frames = M.encode(M.Const("x", payloads=[b"data"]))
    back = M.decode([memoryview(frames[0]), bytearray(frames[1])])
    assert back == M.Const("x", payloads=[b"data"])
    assert type(back.payloads[0]) is bytes


def test_encode_refuses_an_oversize_header():
    rows = [[ID, 2**40, 2**40, 2**40 + 1, False]] * M.MAX_LIST
    with pytest.raises(ValueError, match="exceeds"):
        M.encode(M.Give(1, rows))


def test_a_hello_of_another_protocol_version_is_read_to_refuse_it_clearly():
    msg = M.decode([pack(V + 1, 1, *HELLO)])
    assert type(msg) is M.Hello and msg.proto == V + 1


def test_an_unreadable_hello_of_another_version_is_a_version_error():
    with pytest.raises(VersionError,
                       match=f"protocol {V + 1} there, {V} here"):
        M.decode([pack(V + 1, 1, "lab", 3)])


def test_refuse_is_read_whatever_the_version():
    for version in (1, V, V + 5):
        assert M.decode([pack(version, 10, "why")]).reason == "why"


def test_other_messages_of_another_version_are_rejected():
    with pytest.raises(RemoteProtocolError, match="version"):
        M.decode([pack(V + 1, 3, 1)])


def test_every_message_has_a_doc_and_a_schema():
    for cls in M.REGISTRY.values():
        assert cls.DOC, cls
        assert [n for n, _ in cls.SCHEMA] == [
            f.name for f in __import__("dataclasses").fields(cls)
            if f.name not in ("payloads", "proto")]


def test_repr_names_the_message():
    assert repr(M.Steal(3)) == "Steal(req=3)"
    assert "payloads" not in repr(M.Const("x", payloads=[b"secret"]))


# -- malformed frames ------------------------------------------------------------------

HELLO = ["lab", ID, 0, "tcp://h:1", "h1", "3.11", 5, "0.1", 0, "p", b""]
GIVE_ROW = [ID, 0, 0, 2, True]

MALFORMED = [
    # (id, frames, a word the error message must contain)
    ("no-frames", [], "empty"),
    ("not-msgpack", [b"\xc1"], "msgpack"),
    ("truncated", [b"\x93\x01\x03"], "msgpack"),
    ("trailing-bytes", [pack(V, 3, 1) + b"\x00"], "msgpack"),
    ("deeply-nested", [b"\x91" * 60000 + b"\xc0"], "msgpack"),
    ("int-map-key", [msgpack.packb({1: 2})], "msgpack"),
    ("header-not-list", [msgpack.packb({"v": 1})], "list"),
    ("header-int", [msgpack.packb(5)], "list"),
    ("header-too-short", [pack(V)], "list"),
    ("oversize-header", [pack(V, 7, "x" * M.MAX_HEADER)], "exceeds"),
    ("version-next", [pack(V + 1, 3, 1)], "version"),
    ("version-0", [pack(0, 3, 1)], "version"),
    ("version-str", [pack("1", 3, 1)], "version"),
    ("version-float", [pack(1.0, 3, 1)], "version"),
    ("type-9-moved-is-gone", [pack(V, 9, 3, 5, 6, ID, "")], "unknown"),
    ("type-19-holding-is-gone", [pack(V, 19, 3, 5, 6)], "unknown"),
    ("version-bool", [pack(True, 3, 1)], "version"),
    ("version-nil", [pack(None, 3, 1)], "version"),
    ("type-0", [pack(V, 0)], "unknown"),
    ("type-99", [pack(V, 99)], "unknown"),
    ("type-str", [pack(V, "3", 1)], "unknown"),
    ("type-bool", [pack(V, True)], "unknown"),
    ("type-float", [pack(V, 3.0, 1)], "unknown"),
    ("steal-no-field", [pack(V, 3)], "fields"),
    ("steal-two-fields", [pack(V, 3, 1, 2)], "fields"),
    ("hint-extra-field", [pack(V, 6, 0, 0)], "fields"),
    ("hint-left-negative", [pack(V, 6, -1)], "left"),
    ("give-left-negative", [pack(V, 4, 1, [], [], -1)], "left"),
    ("hello-short", [pack(V, 1, *HELLO[:-1])], "fields"),
    ("steal-req-str", [pack(V, 3, "1")], "req"),
    ("steal-req-negative", [pack(V, 3, -1)], "req"),
    ("steal-req-too-big", [pack(V, 3, 2**64 - 1)], "req"),
    ("steal-req-bool", [pack(V, 3, True)], "req"),
    ("steal-req-float", [pack(V, 3, 1.5)], "req"),
    ("steal-req-list", [pack(V, 3, [1])], "req"),
    ("hello-id-short", [pack(V, 1, "lab", ID[:15], *HELLO[2:])], "incarnation"),
    ("hello-id-long", [pack(V, 1, "lab", ID + b"x", *HELLO[2:])], "incarnation"),
    ("hello-id-str", [pack(V, 1, "lab", "x" * 16, *HELLO[2:])], "incarnation"),
    ("hello-cluster-long", [pack(V, 1, "c" * (M.MAX_STR + 1), *HELLO[1:])], "cluster"),
    ("hello-cluster-bytes", [pack(V, 1, b"lab", *HELLO[1:])], "cluster"),
    ("hello-pickle-256", [pack(V, 1, *HELLO[:6], 256, *HELLO[7:])], "pickle_protocol"),
    ("hello-mac-long", [pack(V, 1, *HELLO[:10], b"m" * 65)], "mac"),
    ("hello-role-3", [pack(V, 1, *HELLO[:8], 3, *HELLO[9:])], "role"),
    ("hello-with-payload", [pack(V, 1, *HELLO), b"p"], "payload"),
    ("welcome-size-0", [pack(V, 2, 0, [])], "size"),
    ("welcome-peers-not-list", [pack(V, 2, 1, {"a": 1})], "peers"),
    ("welcome-row-width", [pack(V, 2, 1, [[ID, "a"]])], "peers"),
    ("welcome-row-not-list", [pack(V, 2, 1, [ID])], "peers"),
    ("welcome-peer-id", [pack(V, 2, 1, [[b"short", "a", 0, "h"]])], "incarnation"),
    ("welcome-peer-rank", [pack(V, 2, 1, [[ID, "a", -3, "h"]])], "rank"),
    ("welcome-peer-host", [pack(V, 2, 1, [[ID, "a", 3, 7]])], "host"),
    ("refuse-reason-int", [pack(V, 10, 3)], "reason"),
    ("ping-field", [pack(V, 11, [], 0)], "fields"),
    ("give-row-width", [pack(V, 4, 1, [GIVE_ROW[:4]], [], 0), b"w"], "works"),
    ("give-owner-len", [pack(V, 4, 1, [[ID[:8], 0, 0, 2, True]], [], 0), b"w"], "owner"),
    ("give-empty-range", [pack(V, 4, 1, [[ID, 0, 2, 2, True]], [], 0), b"w"], "hi"),
    ("give-reversed-range", [pack(V, 4, 1, [[ID, 0, 5, 2, True]], [], 0), b"w"], "hi"),
    ("give-has-payload-int", [pack(V, 4, 1, [[ID, 0, 0, 2, 1]], [], 0), b"w"], "has_payload"),
    ("give-missing-payload", [pack(V, 4, 1, [GIVE_ROW], [], 0)], "payload"),
    ("give-extra-payload", [pack(V, 4, 1, [[ID, 0, 0, 2, False]], [], 0), b"w"], "payload"),
    ("give-suspect-no-death", [pack(V, 4, 1, [GIVE_ROW], [[0, 1, 0]], 0), b"w"], "deaths"),
    ("give-suspect-row-width", [pack(V, 4, 1, [GIVE_ROW], [[0, 1]], 0), b"w"], "suspects"),
    ("give-too-many-works", [pack(V, 4, 1, [[0]] * (M.MAX_LIST + 1), [], 0)], "at most"),
    ("results-status-4", [pack(V, 5, [[ID, 0, 0, 4]]), b"r"], "status"),
    ("results-status-bool", [pack(V, 5, [[ID, 0, 0, True]]), b"r"], "status"),
    ("results-status-float", [pack(V, 5, [[ID, 0, 0, 0.0]]), b"r"], "status"),
    ("results-index-negative", [pack(V, 5, [[ID, 0, -1, 0]]), b"r"], "index"),
    ("results-job-str", [pack(V, 5, [[ID, "0", 0, 0]]), b"r"], "job"),
    ("results-owner-short", [pack(V, 5, [[ID[:8], 0, 0, 0]]), b"r"], "owner"),
    ("results-no-owner", [pack(V, 5, [[0, 0, 0]]), b"r"], "entries"),
    ("results-too-many", [pack(V, 5, [[ID, 0, 0, 0]] * (M.MAX_LIST + 1))], "exceeds"),
    ("welcome-too-many", [pack(V, 2, 1, [0] * (M.MAX_LIST + 1))], "at most"),
    ("results-payload-missing", [pack(V, 5, [[ID, 0, 0, 0], [ID, 0, 1, 0]]), b"r"],
     "payload"),
    ("results-payload-extra", [pack(V, 5, []), b"r"], "payload"),
    ("const-no-payload", [pack(V, 7, "pi")], "payload"),
    ("const-name-int", [pack(V, 7, 3), b"x"], "name"),
    ("shutdown-code-256", [pack(V, 8, 256)], "code"),
    ("ext-type-field", [msgpack.packb([V, 3, msgpack.ExtType(1, b"x")])], "req"),
    ("timestamp-header", [b"\xd6\xff\x00\x00\x00\x01"], "list"),
    ("huge-declared-array", [b"\xdd\xff\xff\xff\xff"], "msgpack"),
    ("huge-declared-bin", [b"\xc6\xff\xff\xff\xff"], "msgpack"),
]


@pytest.mark.parametrize("frames,word", [pytest.param(f, w, id=i) for i, f, w in MALFORMED])
def test_malformed_frames_are_rejected(frames, word):
    with pytest.raises(RemoteProtocolError) as info:
        M.decode(frames)
    assert word in str(info.value)


# -- fuzzing ---------------------------------------------------------------------------
#
# Hypothesis costs about a millisecond per example on a small CI machine, and several for
# recursive structures, so the 20,000 fuzzed frames of a default run come as 1,000 Hypothesis
# examples of about 20 frames each, built from a Hypothesis-controlled ``Random`` by the
# mutator below, plus smaller pure-Hypothesis runs over raw bytes and msgpack structures.
# Set P2PSCOOP_FUZZ=10 (a multiplier) for a longer session.

FUZZ = int(os.environ.get("P2PSCOOP_FUZZ", "1"))
FUZZ_SETTINGS = dict(deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

HEADERS = [(msgpack.unpackb(M.encode(m)[0]), len(m.payloads)) for m in MESSAGES]
ROWS_HEADERS = [h for h in HEADERS if any(isinstance(f, list) and f for f in h[0])]
INTS = (0, 1, 2, 3, 8, 255, 256, 4096, 4097, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -1, -(2**63))


def rand_value(r, depth=0):
    k = r.randrange(10 if depth < 3 else 7)
    if k == 0:
        return r.choice((None, True, False))
    if k == 1:
        return r.choice(INTS) if r.random() < 0.5 else r.randrange(-(2**40), 2**40)
    if k == 2:
        return r.choice((0.0, 1.0, -2.5, float("inf"), float("nan")))
    if k == 3:
        return r.choice(("", "x", "lab", "tcp://h:1", "x" * (M.MAX_STR + 1), "\u00e9\u4e2d"))
    if k in (4, 5):
        return r.choice((ID, ID[:15], ID + b"!", b"", bytes(r.randrange(40))))
    if k == 6:
        return r.choice(tuple(M.REGISTRY))
    if k in (7, 8):
        return [rand_value(r, depth + 1) for _ in range(r.randrange(6))]
    return {r.choice(("a", "b", "c")): rand_value(r, depth + 1) for _ in range(r.randrange(3))}


def mutate(r, value, depth=0):
    """Change one spot of a decoded header: replace, drop, insert or wrap a value.

    Mostly one level deeper than the top, so that most mutants keep their field count
    and reach the per-field and per-row checks.
    """
    if not isinstance(value, list) or not value:
        return rand_value(r)
    value = list(value)
    i = r.randrange(len(value))
    if isinstance(value[i], list) and value[i] and r.random() < 0.7:
        value[i] = mutate(r, value[i], depth + 1)
        return value
    op = r.randrange(8) if depth else r.randrange(16)
    if op in (0, 1, 2) or op >= 8:
        value[i] = rand_value(r)
    elif op in (3, 4):
        del value[i]
    elif op in (5, 6):
        value.insert(i, rand_value(r))
    else:
        value[i] = [value[i]]
    return value


def rand_frames(r):
    k = r.randrange(8)
    if k == 0:
        return [bytes(r.randrange(256) for _ in range(r.randrange(48)))
                for _ in range(r.randrange(1, 4))]
    if k == 1:
        return [r.choice((b"\x91", b"\x81\xa1a", b"\xdc\xff\xff")) * r.randrange(1, 40000)
                + b"\xc0"]
    header, npay = r.choice(HEADERS if r.random() < 0.3 else ROWS_HEADERS)
    if k == 2:
        header = [M.PROTOCOL_VERSION, r.choice(tuple(M.REGISTRY)),
                  *[rand_value(r) for _ in range(r.randrange(8))]]
    else:
        # keep the version and the type code most of the time: deeper checks get exercised
        head, rest = header[:2], header[2:]
        for _ in range(r.choice((1, 1, 1, 2, 3))):
            rest = mutate(r, rest)
        if r.random() < 0.1:
            head = mutate(r, head)
        header = [*head, *(rest if isinstance(rest, list) else [rest])]
    raw = msgpack.packb(header, use_bin_type=True)
    if r.random() < 0.1:
        cut = r.randrange(len(raw))
        raw = raw[:cut] + bytes([r.randrange(256)]) + raw[cut + 1:]
    return [raw, *[b"p"] * max(0, npay + r.choice((0, 0, 0, -1, 1)))]


def check_decode(frames):
    try:
        msg = M.decode(frames)
    except RemoteProtocolError:
        return None
    # Whatever was accepted is a well-formed message that survives a round trip.
    assert isinstance(msg, M.Message)
    assert M.decode(M.encode(msg)) == msg
    return msg


@settings(max_examples=1000 * FUZZ, **FUZZ_SETTINGS)
@given(st.integers(0, 2**64))
def test_fuzz_mutated_frames(seed):
    # a Random seeded by Hypothesis: drawing every byte through Hypothesis is 20x slower
    r = random.Random(seed)
    for _ in range(20):
        check_decode(rand_frames(r))


def test_the_mutator_reaches_deep_checks():
    """Guard against a fuzzer that only ever trips the first check."""
    r = random.Random(1)
    reasons, accepted = set(), 0
    for _ in range(3000):
        try:
            M.decode(rand_frames(r))
            accepted += 1
        except RemoteProtocolError as exc:
            reasons.add(str(exc).split(" must ")[0].split(" takes ")[0][:30])
    assert accepted > 0
    for word in ("works.", "entries.", "peers.", "incarnation", "payload", "msgpack"):
        assert any(word in reason for reason in reasons), word


@settings(max_examples=600 * FUZZ, **FUZZ_SETTINGS)
@given(st.lists(st.binary(max_size=64), min_size=1, max_size=4))
def test_fuzz_arbitrary_bytes(frames):
    check_decode(frames)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(),
    st.text(max_size=8), st.binary(max_size=20), st.just(ID),
    st.sampled_from(sorted(M.REGISTRY)),
)
structures = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=300 * FUZZ, **FUZZ_SETTINGS)
@given(st.one_of(structures, st.lists(structures, max_size=8).map(
           lambda rest: [M.PROTOCOL_VERSION, *rest])),
       st.lists(st.binary(max_size=4), max_size=3))
def test_fuzz_arbitrary_msgpack_structures(header, payloads):
    check_decode([msgpack.packb(header, use_bin_type=True), *payloads])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(MESSAGES), st.data())
def test_any_truncation_or_bit_flip_of_a_valid_header_is_contained(msg, data):
    frames = M.encode(msg)
    header = bytearray(frames[0])
    if data.draw(st.booleans()):
        cut = data.draw(st.integers(0, len(header) - 1))
        header = header[:cut]
    else:
        pos = data.draw(st.integers(0, len(header) - 1))
        header[pos] ^= 1 << data.draw(st.integers(0, 7))
    check_decode([bytes(header), *frames[1:]])


def test_results_messages_split_so_every_header_fits_and_name_each_owner():
    """Each RESULTS row names its unit's owner (leases chain: a peer passes on results it
    does not own), and a long batch splits into messages whose headers all fit."""
    big = M.MAX_INT
    entries = [(ID if i % 2 else ID2, big, big - i, M.OK, i) for i in range(5000)]
    msgs = M.results_messages(entries, lambda status, value: (status, b"%d" % value))
    assert [len(m.entries) for m in msgs] == [1024] * 4 + [904]
    rows = []
    for msg in msgs:
        back = M.decode(M.encode(msg))
        rows += [(*row, payload) for row, payload in zip(back.entries, back.payloads)]
    assert rows == [[o, j, i, s, b"%d" % v] for o, j, i, s, v in entries] or rows == [
        (o, j, i, s, b"%d" % v) for o, j, i, s, v in entries]


def test_an_encoded_result_is_passed_on_as_it_came():
    calls = []

    def dumps(status, value):
        calls.append(value)
        return status, b"pickled"

    (msg,) = M.results_messages([(ID, 1, 2, M.RAISED, M.Encoded(b"as-it-came")),
                                 (ID2, 1, 3, M.OK, 5)], dumps)
    assert msg.entries == [[ID, 1, 2, M.RAISED], [ID2, 1, 3, M.OK]]
    assert msg.payloads == [b"as-it-came", b"pickled"] and calls == [5]
