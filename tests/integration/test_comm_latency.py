"""The comm thread's short OS time slice (``transport.mesh.shorten_slice``), read back from
the kernel: no timing is asserted. (Steals answered while the victim computes pure Python:
``test_runtime.py``.)
"""

import ctypes
import platform
import struct
import sys
import threading

import pytest

from p2pscoop.core.config import NodeConfig, TransportConfig
from p2pscoop.transport.mesh import shorten_slice

_SCHED_GETATTR = {"x86_64": 315, "aarch64": 275, "arm64": 275}


def _own_slice_ns():
    """The calling thread's sched_attr.sched_runtime (None where it cannot be read)."""
    number = _SCHED_GETATTR.get(platform.machine())
    if number is None or not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(64)
    if libc.syscall(ctypes.c_long(number), ctypes.c_long(0), buf, ctypes.c_long(56),
                    ctypes.c_long(0)) != 0:
        return None
    return struct.unpack("IIQiIQQQ", buf.raw[:48])[5]


def _in_thread(fn):
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join()
    return out[0]


def test_shorten_slice_sets_the_calling_threads_slice_only():
    def probe():
        before = _own_slice_ns()
        ok = shorten_slice(100)
        return before, ok, _own_slice_ns()

    before, ok, after = _in_thread(probe)
    if not ok or before is None:
        pytest.skip("no sched_setattr here")
    if after == before and before != 100_000:
        pytest.skip("this kernel ignores a fair thread's slice (before Linux 6.12)")
    assert after == 100_000
    assert _own_slice_ns() == before  # another thread (this one) keeps the OS's slice


def test_a_zero_slice_leaves_the_thread_alone():
    before, ok, after = _in_thread(lambda: (_own_slice_ns(), shorten_slice(0),
                                            _own_slice_ns()))
    assert ok is False and before == after


def test_the_slice_travels_with_the_config():
    cfg = NodeConfig(transport=TransportConfig(comm_slice_us=250))
    assert NodeConfig.from_json(cfg.to_json()).transport.comm_slice_us == 250
