"""Where peers run: host names from ``--hosts``, hostfiles and batch schedulers, and how many
peers each host gets.

This module owns the parsing only. It reads no file but the one it is named (a hostfile, or the
file a scheduler variable points at), resolves no names through DNS and starts nothing; the SSH
and ``srun`` launchers take its ``Host`` values and ``spread()`` plan.

A host (``parse_host``, one ``--hosts`` item, the first word of a hostfile line)::

    name            node01, node01.example.org, 10.0.0.7, localhost
    name:SLOTS      node01:4              SLOTS is a whole number >= 1
    user@name       alice@node01          user@name:SLOTS too
    [IPv6]          [fe80::1%eth0]        [::1]:2, alice@[::1]:2; a bare ::1 is a whole address
    node[01-04]     a SLURM host list (also ``a,b`` and ``gpu-[1-2],n7``), expanded by the
                    ClusterShell's ``NodeSet``; every host gets the user and slots written
                    around it (in ``--hosts`` and hostfiles only, not in ``parse_host``)

A name never starts with ``-`` or ``.`` (so it can never be read as an ssh option) and holds
only letters, digits, ``.``, ``_`` and ``-``; IPv6 addresses are kept without brackets, in
compressed form. Slots left out are ``None``: the launcher then uses the host's core count.

A hostfile (``parse_hostfile``), SCOOP's format with its gaps closed::

    # comment                  whole-line and trailing comments; blank lines are skipped
    node01                     all of node01's cores
    node02 4                   also node02:4, node02 slots=4, node02 worker=4 (SCOOP)
    alice@[fe80::1%eth0] 2
    node[03-06] 8              four hosts with 8 slots each

Anything else on a line (``node01 X 2``, ``node01 2 3``, ``node01:2 4``, ``slots=0``) is a
``HostfileError`` naming ``file:line``, quoting the line and saying what is expected; so is a
file that cannot be read or lists no host. Repeated hosts add up (``merge``).

Batch schedulers (``detect_scheduler``), checked in this order when no host is given:

    SLURM  SLURM_JOB_NODELIST (or SLURM_NODELIST), zipped with SLURM_TASKS_PER_NODE
           (``2(x3),1``), else SLURM_JOB_CPUS_PER_NODE (same syntax), else 1 each;
           ntasks from SLURM_NTASKS (or SLURM_NPROCS). No ``scontrol`` is needed.
    PBS    PBS_NODEFILE: one line per slot, repeated names grouped; ntasks from PBS_NP.
    SGE    PE_HOSTFILE: lines ``host slots queue processors``; ntasks from NSLOTS.
    LSF    LSB_MCPU_HOSTS (``hostA 4 hostB 2``), else LSB_HOSTS (``hostA hostA hostB``);
           ntasks is the total of the list.

A variable that is set but wrong (a missing file, a bad line, lists of different lengths) is a
``SchedulerError`` naming the variable (and the file and line).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from ClusterShell.NodeSet import NodeSet, NodeSetException

HOST_FORMS = "HOST, HOST:SLOTS, user@HOST, [IPv6]:SLOTS or node[01-04]"
LINE_FORMS = ("'HOST', 'HOST SLOTS', 'HOST:SLOTS' or 'HOST slots=SLOTS' (HOST may be "
              "user@name, [IPv6] or a list such as node[01-04]; SLOTS a whole number >= 1)")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._@-]*\$?\Z")
_LIST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-\[\],]*\Z")
_DIGITS = re.compile(r"[0-9]+\Z")
_SLOTS_WORDS = ("slots", "worker", "workers")


class HostfileError(ValueError):
    """A hostfile that cannot be read or has a malformed line ("hosts.txt:3: ...")."""


class SchedulerError(ValueError):
    """A batch scheduler's variable that is set but unusable; the message names it."""


@dataclass(frozen=True)
class Host:
    """One machine to start peers on."""

    name: str                  # host name or address; IPv6 without brackets
    user: str | None = None
    slots: int | None = None   # None: not said (the launcher uses the host's core count)

    def target(self) -> str:
        """The destination to give ssh: ``user@name`` or ``name``."""
        return f"{self.user}@{self.name}" if self.user else self.name

    def __str__(self) -> str:
        name = f"[{self.name}]" if ":" in self.name else self.name
        user = f"{self.user}@" if self.user else ""
        slots = f":{self.slots}" if self.slots is not None else ""
        return f"{user}{name}{slots}"


@dataclass(frozen=True)
class Allocation:
    """The hosts a batch scheduler gave this job."""

    scheduler: str      # "SLURM", "PBS", "SGE" or "LSF"
    hosts: list[Host]   # merged, every one with slots
    ntasks: int | None  # the job's task count, when the scheduler says it


# ---------------------------------------------------------------------------------- one host

def _count(text: str) -> int | None:
    """The whole number >= 1 that ``text`` is (None: it is not one)."""
    return int(text) if _DIGITS.match(text) and int(text) >= 1 else None


def _slots(text: str) -> int:
    count = _count(text)
    if count is None:
        raise ValueError(f"slots must be a whole number >= 1, not {text!r}")
    return count


def _ipv6(text: str) -> str | None:
    """The compressed IPv6 address ``text`` is (None: it is not one)."""
    try:
        return ipaddress.IPv6Address(text).compressed
    except ValueError:
        return None


def _check_name(name: str) -> str:
    if not name:
        raise ValueError("the host name is empty")
    if not _NAME.match(name) or len(name) > 253:
        raise ValueError(f"{name!r} is not a host name (letters, digits, '.', '_' and '-', "
                         "not starting with '-' or '.')")
    return name


def _split(text: str) -> tuple[str | None, str, int | None, bool]:
    """``text`` as (user, name or host list, slots, is_list); raises ValueError."""
    text = text.strip()
    if not text:
        raise ValueError("the host is empty")
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not _USER.match(user):
            raise ValueError(f"{user!r} is not a user name")
    slots = None
    if text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        address = _ipv6(inside)
        if not bracket or address is None:
            raise ValueError(f"{text!r}: brackets hold an IPv6 address, as in [fe80::1]:2")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: after ']' only ':SLOTS' may follow")
            slots = _slots(rest[1:])
        return user, address, slots, False
    if text.count(":") > 1:
        address = _ipv6(text)
        if address is None:
            raise ValueError(f"{text!r} is neither a host nor an IPv6 address "
                             "(write IPv6 in brackets: [::1]:2)")
        return user, address, None, False
    name, colon, count = text.partition(":")
    if colon:
        slots = _slots(count)
    if "[" in name or "," in name or "]" in name:
        if not _LIST.match(name):
            raise ValueError(f"{name!r} is not a host list such as node[01-04]")
        return user, name, slots, True
    return user, _check_name(name), slots, False


def parse_host(text: str, where: str = "") -> Host:
    """One host: ``h``, ``h:4``, ``user@h``, ``user@h:4``, ``[fe80::1]``, ``user@[::1]:2``.

    Raises ValueError, prefixed with ``where`` (e.g. ``--hosts``) when given.
    """
    try:
        user, name, slots, is_list = _split(text)
        if is_list:
            raise ValueError(f"{text!r} is a host list: give one host")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}" if where else str(exc)) from None
    return Host(name, user, slots)


_TOP_COMMA = re.compile(r",(?![^\[]*\])")  # a comma outside brackets
_COUNT = re.compile(r"\s*([0-9]+)(?:\(x([0-9]+)\))?\s*\Z")


def expand_hostlist(text: str) -> list[str]:
    """``node[01-03,07],gpu-[1-2]`` -> the names, in the order written (SLURM zips them
    with its task counts in that order). Each comma-separated group is expanded by
    ClusterShell's ``NodeSet`` (it sorts within a group, as SLURM prints them anyway).
    Raises ValueError."""
    names: list[str] = []
    for group in _TOP_COMMA.split(text):
        if not group:
            raise ValueError("an empty name between commas")
        try:
            names.extend(NodeSet(group))
        except NodeSetException as exc:
            raise ValueError(str(exc)) from None
    return names


def expand_counts(text: str) -> list[int]:
    """SLURM's per-node counts: ``2(x3),1`` -> [2, 2, 2, 1]. Raises ValueError."""
    counts: list[int] = []
    for part in text.split(","):
        match = _COUNT.match(part)
        if match is None:
            raise ValueError(f"{part!r} is not COUNT or COUNT(xREPEAT)")
        counts += [int(match[1])] * int(match[2] or 1)
    return counts


def _parse_entry(text: str) -> list[Host]:
    """One host or host list, expanded (raises ValueError)."""
    user, name, slots, is_list = _split(text)
    if not is_list:
        return [Host(name, user, slots)]
    try:
        names = expand_hostlist(name)
    except ValueError as exc:
        raise ValueError(f"bad host list {name!r}: {exc}") from None
    if not names:
        raise ValueError(f"the host list {name!r} is empty")
    return [Host(_check_name(n), user, slots) for n in names]


# ------------------------------------------------------------------------- lists and files

def merge(hosts: list[Host]) -> list[Host]:
    """Group repeated hosts (same user and name), adding their slots, first appearance first.

    A host that appears once is kept as it is; when it repeats, each appearance without slots
    counts 1 (so ``--hosts a a b`` gives ``a:2, b``, as in SCOOP). Names compare without case.
    """
    groups: dict[tuple[str | None, str], list[Host]] = {}
    for host in hosts:
        groups.setdefault((host.user, host.name.lower()), []).append(host)
    merged = []
    for same in groups.values():
        if len(same) == 1:
            merged.append(same[0])
        else:
            total = sum(1 if h.slots is None else h.slots for h in same)
            merged.append(Host(same[0].name, same[0].user, total))
    return merged


def parse_hosts_args(items: list[str]) -> list[Host]:
    """The values of ``--hosts`` (each may hold several hosts split by spaces), merged."""
    hosts: list[Host] = []
    for item in items:
        for word in item.split():
            try:
                hosts.extend(_parse_entry(word))
            except ValueError as exc:
                raise ValueError(f"--hosts {word!r}: {exc}; expected {HOST_FORMS}") from None
    if not hosts:
        raise ValueError(f"--hosts lists no host; expected {HOST_FORMS}")
    return merge(hosts)


def _read_lines(path: str, error: type[ValueError], what: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise error(f"{what}cannot read {path}: {reason}") from None


def _line_slots(words: list[str]) -> int | None:
    """The slots written after the host on a hostfile line (raises ValueError)."""
    if not words:
        return None
    if len(words) > 1:
        raise ValueError(f"after the host only its slots may follow, not {' '.join(words)!r}")
    word = words[0]
    key, equals, value = word.partition("=")
    if equals:
        if key.lower() not in _SLOTS_WORDS:
            raise ValueError(f"unknown setting {key!r}")
        return _slots(value)
    return _slots(word)


def parse_hostfile(path: str) -> list[Host]:
    """The hosts of a hostfile (format in the module docstring), merged.

    Raises HostfileError naming ``path:line`` for a malformed line, or ``path`` when the file
    cannot be read or lists no host.
    """
    hosts: list[Host] = []
    for number, raw in enumerate(_read_lines(path, HostfileError, ""), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        try:
            entries = _parse_entry(words[0])
            slots = _line_slots(words[1:])
            if slots is not None:
                if entries[0].slots is not None:
                    raise ValueError("slots given twice")
                entries = [Host(h.name, h.user, slots) for h in entries]
        except ValueError as exc:
            raise HostfileError(f"{path}:{number}: {exc} in {raw.strip()!r}; expected "
                                f"{LINE_FORMS}") from None
        hosts.extend(entries)
    if not hosts:
        raise HostfileError(f"{path}: lists no host; expected lines such as {LINE_FORMS}")
    return merge(hosts)


# ---------------------------------------------------------------------------- schedulers

def _int_var(env: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            if _count(value) is None:
                raise SchedulerError(f"{name}={value!r} is not a whole number >= 1")
            return int(value)
    return None


def _scheduler_host(name: str, where: str) -> Host:
    try:
        return Host(_ipv6(name) or _check_name(name))
    except ValueError as exc:
        raise SchedulerError(f"{where}: {exc}") from None


def _slurm(env: Mapping[str, str]) -> Allocation:
    list_var = "SLURM_JOB_NODELIST" if env.get("SLURM_JOB_NODELIST") else "SLURM_NODELIST"
    nodelist = env[list_var].strip()
    try:
        names = expand_hostlist(nodelist)
    except ValueError as exc:
        raise SchedulerError(f"{list_var}={nodelist!r} is not a host list: {exc}") from None
    if not names:
        raise SchedulerError(f"{list_var}={nodelist!r} lists no host")
    hosts = [_scheduler_host(n, f"{list_var}={nodelist!r}") for n in names]
    for count_var in ("SLURM_TASKS_PER_NODE", "SLURM_JOB_CPUS_PER_NODE"):
        text = env.get(count_var, "").strip()
        if text:
            break
    else:
        return Allocation("SLURM", [Host(h.name, None, 1) for h in hosts],
                          _int_var(env, "SLURM_NTASKS", "SLURM_NPROCS"))
    try:
        counts = expand_counts(text)
    except ValueError:
        raise SchedulerError(f"{count_var}={text!r} is not a count list such as "
                             "'2(x3),1'") from None
    if len(counts) != len(hosts):
        raise SchedulerError(f"{list_var}={nodelist!r} names {len(hosts)} hosts but "
                             f"{count_var}={text!r} gives {len(counts)} counts")
    for host, count in zip(hosts, counts):
        if count < 1:
            raise SchedulerError(f"{count_var}={text!r} gives {host.name} {count} tasks")
    return Allocation("SLURM", merge([Host(h.name, None, c) for h, c in zip(hosts, counts)]),
                      _int_var(env, "SLURM_NTASKS", "SLURM_NPROCS"))


def _file_rows(env: Mapping[str, str], var: str) -> list[tuple[str, list[str]]]:
    """(where, words) of the non-blank lines of the file ``$var`` names."""
    path = env[var]
    lines = _read_lines(path, SchedulerError, f"{var}: ")
    rows = [(f"{var}: {path}:{n}", line.split()) for n, line in enumerate(lines, 1)]
    rows = [row for row in rows if row[1]]
    if not rows:
        raise SchedulerError(f"{var}: {path} lists no host")
    return rows


def _pbs(env: Mapping[str, str]) -> Allocation:
    hosts = []
    for where, words in _file_rows(env, "PBS_NODEFILE"):
        if len(words) != 1:
            raise SchedulerError(f"{where}: expected one host name per line, "
                                 f"not {' '.join(words)!r}")
        hosts.append(Host(_scheduler_host(words[0], where).name, None, 1))
    return Allocation("PBS", merge(hosts), _int_var(env, "PBS_NP"))


def _sge(env: Mapping[str, str]) -> Allocation:
    hosts = []
    for where, words in _file_rows(env, "PE_HOSTFILE"):
        if len(words) < 2 or _count(words[1]) is None:
            raise SchedulerError(f"{where}: expected 'host slots queue processors', "
                                 f"not {' '.join(words)!r}")
        hosts.append(Host(_scheduler_host(words[0], where).name, None, int(words[1])))
    return Allocation("SGE", merge(hosts), _int_var(env, "NSLOTS"))


def _lsf(env: Mapping[str, str]) -> Allocation:
    text = env.get("LSB_MCPU_HOSTS", "").strip()
    if text:
        words = text.split()
        where = f"LSB_MCPU_HOSTS={text!r}"
        if len(words) % 2 or not all(_count(w) for w in words[1::2]):
            raise SchedulerError(f"{where}: expected pairs 'host slots', as in 'hostA 4 hostB 2'")
        hosts = [Host(_scheduler_host(name, where).name, None, int(count))
                 for name, count in zip(words[::2], words[1::2])]
    else:
        text = env["LSB_HOSTS"].strip()
        hosts = [Host(_scheduler_host(name, f"LSB_HOSTS={text!r}").name, None, 1)
                 for name in text.split()]
    hosts = merge(hosts)
    return Allocation("LSF", hosts, sum(h.slots or 0 for h in hosts))


def detect_scheduler(env: Mapping[str, str] = os.environ) -> Allocation | None:
    """The allocation of the batch job we run in (None: not in one). Raises SchedulerError."""
    if env.get("SLURM_JOB_NODELIST", "").strip() or env.get("SLURM_NODELIST", "").strip():
        return _slurm(env)
    if env.get("PBS_NODEFILE"):
        return _pbs(env)
    if env.get("PE_HOSTFILE"):
        return _sge(env)
    if env.get("LSB_MCPU_HOSTS", "").strip() or env.get("LSB_HOSTS", "").strip():
        return _lsf(env)
    return None


# ------------------------------------------------------------------------------- planning

def spread(hosts: list[Host], n: int | None, default_slots: int) -> list[tuple[Host, int]]:
    """How many peers each host gets: ``[(host, count)]`` in host order, no count 0.

    Slots None count as ``default_slots``. ``n`` None: every slot. ``n`` below the total: hosts
    are filled in order and the last ones trimmed. ``n`` above it: every host is full and the
    extra peers go round-robin over the hosts in order, so oversubscription stays even.
    """
    if not hosts:
        raise ValueError("no host to start peers on")
    if default_slots < 1:
        raise ValueError(f"default_slots must be >= 1, not {default_slots}")
    slots = [default_slots if h.slots is None else h.slots for h in hosts]
    if n is None:
        n = sum(slots)
    if n < 1:
        raise ValueError(f"the number of peers must be >= 1, not {n}")
    counts = []
    left = n
    for s in slots:
        counts.append(min(s, left))
        left -= counts[-1]
    extra, rest = divmod(left, len(hosts))
    counts = [c + extra + (i < rest) for i, c in enumerate(counts)]
    return [(h, c) for h, c in zip(hosts, counts) if c > 0]


# ------------------------------------------------------------------------------ locality

@functools.lru_cache(maxsize=1)
def _own_names() -> frozenset[str]:
    name = socket.gethostname().lower()
    names = {name, name.split(".")[0], "localhost"}
    try:
        names.add(socket.getfqdn().lower())   # this machine's own name only, once
    except OSError:
        pass
    return frozenset(n for n in names if n)


def _own_addresses() -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    import ifaddr

    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                found.add(ipaddress.ip_address(text.split("%")[0]))
            except ValueError:
                pass
    return found


def is_local(host: Host) -> bool:
    """True when ``host`` is this machine: localhost, a loopback address, its host name or
    fully qualified name, or one of its interface addresses. Does no DNS lookup of ``host``.
    """
    name = host.name.strip().lower().rstrip(".")
    try:
        info = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError):
        return name in _own_names() or name.endswith(".localhost")
    addr = ipaddress.ip_address(info[0][4][0].split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified or addr in _own_addresses()
