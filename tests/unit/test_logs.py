"""``p2pscoop.logs``: only the ``p2pscoop`` logger is configured, once, naming its peer.

In-process, with the real ``logging`` module; every test restores the global logging state
it changed (the ``restore_logging`` fixture).
"""

from __future__ import annotations

import io
import logging
import sys

import pytest

from p2pscoop import logs


@pytest.fixture(autouse=True)
def restore_logging():
    root, ours = logging.getLogger(), logging.getLogger(logs.ROOT_NAME)
    saved = (list(root.handlers), root.level, list(ours.handlers), ours.level, ours.propagate,
             logs.peer_label())
    yield
    root.handlers[:], ours.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    ours.setLevel(saved[3])
    ours.propagate = saved[4]
    logs.set_peer(saved[5])


@pytest.mark.parametrize("verbosity, level", [
    (-2, logging.ERROR), (-1, logging.ERROR), (0, logging.WARNING), (1, logging.INFO),
    (2, logging.DEBUG), (5, logging.DEBUG)])
def test_levels(verbosity, level):
    assert logs.level_for(verbosity) == level
    assert logs.configure(verbosity).level == level


def test_the_root_logger_and_other_loggers_are_untouched():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    other = logging.getLogger("some.library")
    logs.configure(2)
    assert root.handlers == handlers and root.level == level
    assert other.level == logging.NOTSET and other.handlers == []
    assert other.getEffectiveLevel() == root.getEffectiveLevel()  # -vv is ours only


def test_configure_is_idempotent_and_does_not_propagate():
    for verbosity in (0, 2, 1, 1):
        logger = logs.configure(verbosity)
    ours = [h for h in logger.handlers if isinstance(h, logs.StderrHandler)]
    assert len(ours) == 1
    assert logger.propagate is False
    assert logger.level == logging.INFO  # the last call wins


def test_lines_name_the_peer_and_follow_the_current_stderr(monkeypatch):
    logs.set_peer("w3")
    logs.configure(1)
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)  # a redirected stderr, as a program may do
    logging.getLogger("p2pscoop.peer").info("joined %s", "abc")
    logging.getLogger("p2pscoop.peer").debug("not at -v")
    logs.set_peer("host/w4")
    logging.getLogger("p2pscoop").warning("top")
    assert sink.getvalue().splitlines() == [
        "p2pscoop[w3] INFO peer: joined abc",
        "p2pscoop[host/w4] WARNING p2pscoop: top",
    ]


def test_a_program_that_configures_the_root_logger_sees_our_lines_once(monkeypatch):
    logs.set_peer("origin")
    logs.configure(0)
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    root = logging.getLogger()
    program_handler = logging.StreamHandler(sink)
    root.addHandler(program_handler)
    logging.getLogger("p2pscoop.comm").warning("once")
    logging.getLogger("prog").warning("program line")
    assert sink.getvalue().splitlines() == ["p2pscoop[origin] WARNING comm: once",
                                            "program line"]


def test_tracebacks_follow_the_line(monkeypatch):
    logs.set_peer("origin")
    logs.configure(0)
    sink = io.StringIO()
    monkeypatch.setattr(sys, "stderr", sink)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("p2pscoop.comm").exception("crashed")
    lines = sink.getvalue().splitlines()
    assert lines[0] == "p2pscoop[origin] ERROR comm: crashed"
    assert lines[1].startswith("Traceback") and lines[-1] == "ValueError: boom"


@pytest.mark.parametrize("label", ["", "two words", 3, None])
def test_a_bad_label_is_refused(label):
    with pytest.raises(ValueError, match="peer label"):
        logs.set_peer(label)
