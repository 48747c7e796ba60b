"""Host lists, hostfiles and batch-scheduler detection (``launch/hosts.py``): every accepted
form, every scheduler's variables (files in tmp_path, explicit env dicts, never the real
environment), every error naming its file and line or its variable, and properties of
``merge`` and ``spread``."""

import socket

import ifaddr
import pytest
from hypothesis import given
from hypothesis import strategies as st

from p2pscoop.launch.hosts import (Allocation, Host, HostfileError, SchedulerError,
                                   detect_scheduler, is_local, merge, parse_host,
                                   parse_hostfile, parse_hosts_args, spread)


# ---------------------------------------------------------------------------------- one host

@pytest.mark.parametrize("text, want", [
    ("h", Host("h")),
    ("h:4", Host("h", None, 4)),
    ("user@h", Host("h", "user")),
    ("user@h:4", Host("h", "user", 4)),
    ("node01.example.org", Host("node01.example.org")),
    ("10.0.0.7:2", Host("10.0.0.7", None, 2)),
    ("my_host-2", Host("my_host-2")),
    ("[fe80::1]", Host("fe80::1")),
    ("[::1]:2", Host("::1", None, 2)),
    ("user@[::1]:2", Host("::1", "user", 2)),
    ("[fe80:0:0::1%eth0]:3", Host("fe80::1%eth0", None, 3)),
    ("::1", Host("::1")),
    ("first.last@h", Host("h", "first.last")),
    ("ad@corp@h", Host("h", "ad@corp")),
    ("  h:1  ", Host("h", None, 1)),
])
def test_host_forms(text, want):
    assert parse_host(text) == want


@pytest.mark.parametrize("host, target, shown", [
    (Host("h"), "h", "h"),
    (Host("h", "u", 3), "u@h", "u@h:3"),
    (Host("::1", "u", 3), "u@::1", "u@[::1]:3"),
    (Host("fe80::1"), "fe80::1", "[fe80::1]"),
])
def test_target_and_str(host, target, shown):
    assert host.target() == target
    assert str(host) == shown
    assert parse_host(shown) == host


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("h:0", "slots must be a whole number >= 1, not '0'"),
    ("h:", "slots must be a whole number >= 1, not ''"),
    ("h:x", "not 'x'"),
    ("h:-2", "not '-2'"),
    ("h:²", "not '²'"),
    ("-oProxyCommand=x", "is not a host name"),
    ("-h", "not starting with '-'"),
    (".h", "is not a host name"),
    ("h/x", "is not a host name"),
    ("@h", "'' is not a user name"),
    ("-l@h", "'-l' is not a user name"),
    ("u@", "the host name is empty"),
    ("[::1", "brackets hold an IPv6 address"),
    ("[node1]", "brackets hold an IPv6 address"),
    ("[::1]2", "only ':SLOTS' may follow"),
    ("[::1]:0", "slots must be"),
    ("a:b:c", "write IPv6 in brackets"),
    ("node[01-02]", "is a host list: give one host"),
])
def test_bad_hosts_say_why(text, message):
    with pytest.raises(ValueError, match="^--hosts: .*" + _re(message)):
        parse_host(text, "--hosts")


def _re(text):
    import re
    return re.escape(text)


# ------------------------------------------------------------------------------ --hosts

@pytest.mark.parametrize("items, want", [
    (["a", "a", "b"], [Host("a", None, 2), Host("b")]),
    (["b", "a", "b"], [Host("b", None, 2), Host("a")]),
    (["a:3", "a"], [Host("a", None, 4)]),
    (["a:3", "A:2"], [Host("a", None, 5)]),
    (["u@a", "a"], [Host("a", "u"), Host("a")]),
    (["a b", "c"], [Host("a"), Host("b"), Host("c")]),
    (["node[01-03]:2"], [Host("node01", None, 2), Host("node02", None, 2),
                         Host("node03", None, 2)]),
    (["u@x,y"], [Host("x", "u"), Host("y", "u")]),
    (["[::1]", "[0::1]:2"], [Host("::1", None, 3)]),
])
def test_hosts_args(items, want):
    assert parse_hosts_args(items) == want


@pytest.mark.parametrize("items, message", [
    ([], "--hosts lists no host"),
    (["  "], "--hosts lists no host"),
    (["a", "b:0"], "--hosts 'b:0': slots must be"),
    (["node[01-"], "--hosts 'node[01-': bad host list 'node[01-'"),
    (["node[3-1]"], "bad host list"),
    (["x;rm"], "--hosts 'x;rm': 'x;rm' is not a host name"),
])
def test_bad_hosts_args(items, message):
    with pytest.raises(ValueError, match=_re(message)):
        parse_hosts_args(items)


# ------------------------------------------------------------------------------ hostfiles

def _file(tmp_path, text, name="hosts.txt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("text, want", [
    ("h\n", [Host("h")]),
    ("h 4\n", [Host("h", None, 4)]),
    ("h:4\n", [Host("h", None, 4)]),
    ("h\tslots=4\n", [Host("h", None, 4)]),
    ("h worker=8\n", [Host("h", None, 8)]),
    ("h workers=8\n", [Host("h", None, 8)]),
    ("# all\n\n  # indented\nh 2 # two\n\n", [Host("h", None, 2)]),
    ("h#c\n", [Host("h")]),
    ("alice@h 3\n", [Host("h", "alice", 3)]),
    ("alice@h:3\n", [Host("h", "alice", 3)]),
    ("[fe80::1%eth0] 2\n", [Host("fe80::1%eth0", None, 2)]),
    ("[::1]:2\n", [Host("::1", None, 2)]),
    ("bob@[::1]\n", [Host("::1", "bob")]),
    ("node[01-04] 2\n", [Host(f"node0{i}", None, 2) for i in range(1, 5)]),
    ("u@node[1-2]:3\n", [Host("node1", "u", 3), Host("node2", "u", 3)]),
    ("a 2\nb\na 3\n", [Host("a", None, 5), Host("b")]),
    ("a\na\n", [Host("a", None, 2)]),
    ("a\r\nb 2\r\n", [Host("a"), Host("b", None, 2)]),
])
def test_hostfile_forms(tmp_path, text, want):
    assert parse_hostfile(_file(tmp_path, text)) == want


@pytest.mark.parametrize("text, line, quoted, reason", [
    ("a\nh X 2\n", 2, "h X 2", "only its slots may follow, not 'X 2'"),
    ("h X\n", 1, "h X", "slots must be a whole number >= 1, not 'X'"),
    ("h 2 3 4\n", 1, "h 2 3 4", "not '2 3 4'"),
    ("h 0\n", 1, "h 0", "slots must be a whole number >= 1"),
    ("h -1\n", 1, "h -1", "not '-1'"),
    ("h slots=0\n", 1, "h slots=0", "not '0'"),
    ("h max_slots=4\n", 1, "h max_slots=4", "unknown setting 'max_slots'"),
    ("h:2 4\n", 1, "h:2 4", "slots given twice"),
    ("# c\n\nh/x 1\n", 3, "h/x 1", "is not a host name"),
    ("[::1 2\n", 1, "[::1 2", "IPv6"),
    ("node[01- 2\n", 1, "node[01- 2", "bad host list"),
    ("worker=8\n", 1, "worker=8", "is not a host name"),
])
def test_hostfile_errors_name_file_and_line(tmp_path, text, line, quoted, reason):
    path = _file(tmp_path, text)
    with pytest.raises(HostfileError) as info:
        parse_hostfile(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: ")
    assert repr(quoted) in message
    assert reason in message
    assert "expected 'HOST', 'HOST SLOTS', 'HOST:SLOTS'" in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  \n"])
def test_a_hostfile_without_hosts_is_an_error(tmp_path, text):
    path = _file(tmp_path, text)
    with pytest.raises(HostfileError, match=f"^{_re(path)}: lists no host"):
        parse_hostfile(path)


def test_unreadable_hostfiles_name_the_path(tmp_path):
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(HostfileError, match=f"cannot read {_re(missing)}: No such file"):
        parse_hostfile(missing)
    with pytest.raises(HostfileError, match=f"cannot read {_re(str(tmp_path))}"):
        parse_hostfile(str(tmp_path))
    binary = tmp_path / "bin"
    binary.write_bytes(b"\xff\xfe\x00h\n")
    with pytest.raises(HostfileError, match=f"cannot read {_re(str(binary))}"):
        parse_hostfile(str(binary))


# ---------------------------------------------------------------------------- schedulers

def _hosts(*pairs):
    return [Host(name, None, slots) for name, slots in pairs]


@pytest.mark.parametrize("env, hosts, ntasks", [
    ({"SLURM_JOB_NODELIST": "node[01-03,07],gpu-[1-2]", "SLURM_TASKS_PER_NODE": "2(x3),1(x3)",
      "SLURM_NTASKS": "9"},
     _hosts(("node01", 2), ("node02", 2), ("node03", 2), ("node07", 1), ("gpu-1", 1),
            ("gpu-2", 1)), 9),
    ({"SLURM_NODELIST": "n1", "SLURM_TASKS_PER_NODE": "1"}, _hosts(("n1", 1)), None),
    ({"SLURM_JOB_NODELIST": "a,b", "SLURM_TASKS_PER_NODE": "3,1", "SLURM_NPROCS": "4"},
     _hosts(("a", 3), ("b", 1)), 4),
    ({"SLURM_JOB_NODELIST": "x[1-2]-y[3-4]", "SLURM_TASKS_PER_NODE": "1(x4)"},
     _hosts(("x1-y3", 1), ("x1-y4", 1), ("x2-y3", 1), ("x2-y4", 1)), None),
    ({"SLURM_JOB_NODELIST": "a,b,c,d", "SLURM_TASKS_PER_NODE": "2(x3),1"},
     _hosts(("a", 2), ("b", 2), ("c", 2), ("d", 1)), None),
    ({"SLURM_JOB_NODELIST": "a,b", "SLURM_JOB_CPUS_PER_NODE": "8(x2)"},
     _hosts(("a", 8), ("b", 8)), None),
    ({"SLURM_JOB_NODELIST": "a,b", "SLURM_TASKS_PER_NODE": "1(x2)",
      "SLURM_JOB_CPUS_PER_NODE": "8(x2)"}, _hosts(("a", 1), ("b", 1)), None),
    ({"SLURM_JOB_NODELIST": "a,b"}, _hosts(("a", 1), ("b", 1)), None),
    ({"SLURM_JOB_NODELIST": "a", "SLURM_NODELIST": "zzz", "SLURM_TASKS_PER_NODE": "4"},
     _hosts(("a", 4)), None),
    ({"SLURM_JOB_NODELIST": "", "SLURM_NODELIST": "b", "SLURM_TASKS_PER_NODE": "4"},
     _hosts(("b", 4)), None),
])
def test_slurm(env, hosts, ntasks):
    assert detect_scheduler(env) == Allocation("SLURM", hosts, ntasks)


@pytest.mark.parametrize("env, message", [
    ({"SLURM_JOB_NODELIST": "a,b,c", "SLURM_TASKS_PER_NODE": "2(x2)"},
     "SLURM_JOB_NODELIST='a,b,c' names 3 hosts but SLURM_TASKS_PER_NODE='2(x2)' gives 2"),
    ({"SLURM_NODELIST": "a", "SLURM_JOB_CPUS_PER_NODE": "1,1"},
     "SLURM_NODELIST='a' names 1 hosts but SLURM_JOB_CPUS_PER_NODE='1,1' gives 2"),
    ({"SLURM_JOB_NODELIST": "node[01-", "SLURM_TASKS_PER_NODE": "1"},
     "SLURM_JOB_NODELIST='node[01-' is not a host list"),
    ({"SLURM_JOB_NODELIST": "a", "SLURM_TASKS_PER_NODE": "two"},
     "SLURM_TASKS_PER_NODE='two' is not a count list"),
    ({"SLURM_JOB_NODELIST": "a,b", "SLURM_TASKS_PER_NODE": "0,1"},
     "SLURM_TASKS_PER_NODE='0,1' gives a 0 tasks"),
    ({"SLURM_JOB_NODELIST": "a", "SLURM_TASKS_PER_NODE": "1", "SLURM_NTASKS": "x"},
     "SLURM_NTASKS='x' is not a whole number"),
    ({"SLURM_JOB_NODELIST": "a;b", "SLURM_TASKS_PER_NODE": "1"},
     "SLURM_JOB_NODELIST='a;b': 'a;b' is not a host name"),
])
def test_slurm_errors_name_the_variables(env, message):
    with pytest.raises(SchedulerError, match=_re(message)):
        detect_scheduler(env)


@pytest.mark.parametrize("scheduler, text, extra, hosts, ntasks", [
    ("PBS", "n1\nn1\nn2\nn1\n", {"PBS_NP": "4"}, _hosts(("n1", 3), ("n2", 1)), 4),
    ("PBS", "n2.cluster\n\nn1.cluster\n", {}, _hosts(("n2.cluster", 1), ("n1.cluster", 1)),
     None),
    ("SGE", "n1 4 all.q@n1 UNDEFINED\nn2 2 all.q@n2 UNDEFINED\n", {"NSLOTS": "6"},
     _hosts(("n1", 4), ("n2", 2)), 6),
    ("SGE", "n1 2 a.q@n1 UNDEFINED\nn1 1 b.q@n1 UNDEFINED\n", {},
     _hosts(("n1", 3)), None),
])
def test_file_schedulers(tmp_path, scheduler, text, extra, hosts, ntasks):
    var = {"PBS": "PBS_NODEFILE", "SGE": "PE_HOSTFILE"}[scheduler]
    env = {var: _file(tmp_path, text, "nodes"), **extra}
    assert detect_scheduler(env) == Allocation(scheduler, hosts, ntasks)


@pytest.mark.parametrize("env, hosts", [
    ({"LSB_MCPU_HOSTS": "hostA 4 hostB 2"}, _hosts(("hostA", 4), ("hostB", 2))),
    ({"LSB_MCPU_HOSTS": "hostA 4 hostB 2", "LSB_HOSTS": "zzz"},
     _hosts(("hostA", 4), ("hostB", 2))),
    ({"LSB_HOSTS": "hostA hostA hostB"}, _hosts(("hostA", 2), ("hostB", 1))),
    ({"LSB_MCPU_HOSTS": " ", "LSB_HOSTS": "hostA"}, _hosts(("hostA", 1))),
])
def test_lsf(env, hosts):
    assert detect_scheduler(env) == Allocation("LSF", hosts, sum(h.slots for h in hosts))


@pytest.mark.parametrize("var, text, message", [
    ("PBS_NODEFILE", "n1\nn1 n2\n", "nodes:2: expected one host name per line, not 'n1 n2'"),
    ("PBS_NODEFILE", "n1\n-x\n", "nodes:2: '-x' is not a host name"),
    ("PBS_NODEFILE", "\n", "nodes lists no host"),
    ("PE_HOSTFILE", "n1 4 q UNDEFINED\nn2\n", "nodes:2: expected 'host slots queue processors'"),
    ("PE_HOSTFILE", "n1 zero q UNDEFINED\n", "nodes:1: expected 'host slots"),
    ("PE_HOSTFILE", "n1 0 q UNDEFINED\n", "nodes:1: expected 'host slots"),
    ("PE_HOSTFILE", "", "nodes lists no host"),
])
def test_scheduler_file_errors_name_variable_file_and_line(tmp_path, var, text, message):
    path = _file(tmp_path, text, "nodes")
    with pytest.raises(SchedulerError, match=f"^{var}: {_re(path)}") as info:
        detect_scheduler({var: path})
    assert message in str(info.value)


@pytest.mark.parametrize("var", ["PBS_NODEFILE", "PE_HOSTFILE"])
def test_a_missing_scheduler_file_names_variable_and_file(tmp_path, var):
    path = str(tmp_path / "gone")
    with pytest.raises(SchedulerError, match=f"^{var}: cannot read {_re(path)}"):
        detect_scheduler({var: path})


@pytest.mark.parametrize("env, message", [
    ({"LSB_MCPU_HOSTS": "hostA 4 hostB"}, "LSB_MCPU_HOSTS='hostA 4 hostB': expected pairs"),
    ({"LSB_MCPU_HOSTS": "hostA four"}, "LSB_MCPU_HOSTS='hostA four': expected pairs"),
    ({"LSB_MCPU_HOSTS": "hostA 0"}, "expected pairs"),
    ({"LSB_HOSTS": "hostA -x"}, "LSB_HOSTS='hostA -x': '-x' is not a host name"),
])
def test_lsf_errors_name_the_variable(env, message):
    with pytest.raises(SchedulerError, match=_re(message)):
        detect_scheduler(env)


def test_priority_slurm_pbs_sge_lsf(tmp_path):
    slurm = {"SLURM_JOB_NODELIST": "s", "SLURM_TASKS_PER_NODE": "1"}
    pbs = {"PBS_NODEFILE": _file(tmp_path, "p\n", "pbs")}
    sge = {"PE_HOSTFILE": _file(tmp_path, "g 1 q UNDEFINED\n", "sge")}
    lsf = {"LSB_HOSTS": "l"}
    assert detect_scheduler({**lsf, **sge, **pbs, **slurm}).scheduler == "SLURM"
    assert detect_scheduler({**lsf, **sge, **pbs}).scheduler == "PBS"
    assert detect_scheduler({**lsf, **sge}).scheduler == "SGE"
    assert detect_scheduler(lsf).scheduler == "LSF"


@pytest.mark.parametrize("env", [
    {}, {"PATH": "/bin", "SLURM_JOB_ID": "7", "PBS_ENVIRONMENT": "PBS_BATCH", "NSLOTS": "4"},
    {"SLURM_JOB_NODELIST": "", "PBS_NODEFILE": "", "PE_HOSTFILE": "", "LSB_HOSTS": " "},
])
def test_no_scheduler(env):
    assert detect_scheduler(env) is None


# ------------------------------------------------------------------------------- spread

@pytest.mark.parametrize("slots, n, default, want", [
    ([4, 2], None, 8, [4, 2]),
    ([None, 2], None, 8, [8, 2]),
    ([4, 2], 6, 8, [4, 2]),
    ([4, 2], 5, 8, [4, 1]),
    ([4, 2], 2, 8, [2]),
    ([1, 1, 1], 1, 8, [1]),
    ([4, 2], 8, 8, [5, 3]),
    ([4, 2], 9, 8, [6, 3]),
    ([1, 1, 1], 5, 8, [2, 2, 1]),
    ([None], 3, 1, [3]),
])
def test_spread(slots, n, default, want):
    hosts = [Host(f"h{i}", None, s) for i, s in enumerate(slots)]
    assert [count for _, count in spread(hosts, n, default)] == want
    assert [h for h, _ in spread(hosts, n, default)] == hosts[:len(want)]


@pytest.mark.parametrize("hosts, n, default, message", [
    ([], 2, 1, "no host"),
    ([Host("a")], 0, 1, "number of peers must be >= 1, not 0"),
    ([Host("a")], -3, 1, "not -3"),
    ([Host("a")], 2, 0, "default_slots must be >= 1"),
])
def test_spread_errors(hosts, n, default, message):
    with pytest.raises(ValueError, match=_re(message)):
        spread(hosts, n, default)


_names = st.sampled_from(["a", "b", "c", "d", "e"])
_hosts_st = st.lists(st.builds(Host, _names, st.none(), st.none() | st.integers(1, 6)),
                     min_size=1, max_size=8)


@given(_hosts_st, st.integers(1, 60), st.integers(1, 8))
def test_spread_sums_to_n_and_leaves_out_empty_hosts(hosts, n, default):
    plan = spread(hosts, n, default)
    counts = [c for _, c in plan]
    assert sum(counts) == n
    assert all(c >= 1 for c in counts)
    assert [h for h, _ in plan] == hosts[:len(plan)]
    slots = [default if h.slots is None else h.slots for h in hosts]
    if n >= sum(slots):
        assert len(plan) == len(hosts)
        assert all(c >= s for c, s in zip(counts, slots))
        extra = [c - s for c, s in zip(counts, slots)]
        assert max(extra) - min(extra) <= 1
    else:
        assert all(c <= s for c, s in zip(counts, slots))


@given(_hosts_st)
def test_merge_keeps_first_appearance_and_total(hosts):
    merged = merge(hosts)
    first = list(dict.fromkeys(h.name for h in hosts))
    assert [h.name for h in merged] == first
    for host in merged:
        same = [h for h in hosts if h.name == host.name]
        if len(same) == 1:
            assert host == same[0]
        else:
            assert host.slots == sum(1 if h.slots is None else h.slots for h in same)


@given(_hosts_st)
def test_str_parses_back(hosts):
    for host in hosts:
        assert parse_host(str(host)) == host


# ------------------------------------------------------------------------------ is_local

def _addresses():
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            yield ip.ip if isinstance(ip.ip, str) else ip.ip[0]


@pytest.mark.parametrize("name", ["localhost", "LOCALHOST", "127.0.0.1", "127.1", "127.9.9.9",
                                  "::1", "::ffff:127.0.0.1", "0.0.0.0", "a.localhost",
                                  socket.gethostname(), socket.gethostname().upper()])
def test_is_local(name):
    assert is_local(Host(name))


def test_interface_addresses_are_local():
    addresses = list(_addresses())
    assert addresses
    for address in addresses:
        assert is_local(Host(address)), address


@pytest.mark.parametrize("name", ["192.0.2.1", "2001:db8::1", "host.invalid", "node01",
                                  "localhost-not"])
def test_is_not_local(name):
    assert not is_local(Host(name))
