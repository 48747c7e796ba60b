"""Static discovery: a fixed list of peer addresses, and the one parser of peer addresses.

Owns: ``parse_peer`` (what a user may type after ``--peers``), ``split_address`` (the inverse,
used by every source that needs the host and port of an endpoint), and ``StaticDiscovery``,
which reports each listed address once as a ``PeerSeen``.

Accepted forms, all normalised to a ZeroMQ endpoint::

    HOST:PORT            node7:5555, 10.0.0.3:5555         -> tcp://node7:5555
    [IPv6]:PORT          [fe80::1%eth0]:5555, [::1]:5555   -> tcp://[::1]:5555
    tcp://HOST:PORT      tcp://10.0.0.3:5555               -> tcp://10.0.0.3:5555

Invariants:

* ``parse_peer`` either returns ``tcp://HOST:PORT`` with a valid host (IPv4, bracketed IPv6, or an
  RFC 1123 host name) and a port in 1..65535, or raises ``ValueError`` that quotes the bad text
  and says what was expected. It never resolves names (no I/O): ZeroMQ resolves at connect time.
* A static list is a hint like any other source: an address that does not answer, or answers
  with the wrong cluster keys, is rejected by the handshake, not here.
* ``StaticDiscovery`` runs no thread: ``start()`` calls ``on_event`` in the caller's thread,
  once per distinct address, in list order; ``stop()`` reports nothing (a static peer never
  says goodbye; liveness comes from heartbeats). Both are idempotent.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Callable, Iterable

from . import PeerSeen

__all__ = ["parse_peer", "split_address", "StaticDiscovery"]

_SCHEME = "tcp://"
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_EXPECTED = "expected HOST:PORT, [IPv6]:PORT or tcp://HOST:PORT with a port in 1..65535"


def _fail(text: str, why: str) -> ValueError:
    return ValueError(f"bad peer address {text!r}: {why}; {_EXPECTED}")


def _check_port(text: str, port: str) -> int:
    if not port.isascii() or not port.isdigit() or len(port) > 5:
        raise _fail(text, f"port {port!r} is not a number")
    value = int(port)
    if not 1 <= value <= 65535:
        raise _fail(text, f"port {value} is out of range")
    return value


def _check_hostname(text: str, host: str) -> str:
    """Validate a DNS host name or IPv4 address; return it (lower-cased when it is a name)."""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    if host.replace(".", "").isdigit():
        raise _fail(text, f"{host!r} is not a valid IPv4 address")
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise _fail(text, f"{host!r} is not a valid host name")
    return name.lower()


def _split(text: str) -> tuple[str, int, bool]:
    """``(host, port, is_ipv6)`` of ``text`` with or without ``tcp://``; raises ValueError."""
    if not isinstance(text, str):
        raise TypeError(f"peer address must be a str, not {type(text).__name__}")
    rest = text.strip()
    if "://" in rest:
        if not rest.lower().startswith(_SCHEME):
            scheme = rest.split("://", 1)[0]
            raise _fail(text, f"transport {scheme!r} is not supported (only tcp)")
        rest = rest[len(_SCHEME):]
    if not rest:
        raise _fail(text, "it is empty")
    if rest.startswith("["):
        close = rest.find("]")
        if close < 0 or not rest[close + 1:].startswith(":"):
            raise _fail(text, "an IPv6 address needs brackets and a port: [ADDR]:PORT")
        host, port = rest[1:close], rest[close + 2:]
        try:
            addr = ipaddress.IPv6Address(host)
        except ValueError:
            raise _fail(text, f"{host!r} is not a valid IPv6 address") from None
        return str(addr), _check_port(text, port), True
    if rest.count(":") != 1:
        if rest.count(":") > 1:
            raise _fail(text, "an IPv6 address needs brackets: [ADDR]:PORT")
        raise _fail(text, "the port is missing")
    host, port = rest.split(":")
    if not host:
        raise _fail(text, "the host is missing")
    if host == "*":
        raise _fail(text, "'*' is a listening address, not a peer")
    return _check_hostname(text, host), _check_port(text, port), False


def parse_peer(text: str) -> str:
    """Return ``text`` as a ZeroMQ endpoint ``tcp://HOST:PORT``; ValueError names the bad text."""
    host, port, v6 = _split(text)
    return f"{_SCHEME}[{host}]:{port}" if v6 else f"{_SCHEME}{host}:{port}"


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a peer address in any accepted form; IPv6 hosts come without brackets."""
    host, port, _v6 = _split(address)
    return host, port


class StaticDiscovery:
    """Report a fixed list of peers once.

    ``addresses`` are parsed eagerly, so a typo fails at construction with the bad entry named.
    ``on_event`` receives ``PeerSeen(name=address, address=address, host=HOST, props={})`` for
    each distinct address (``address`` normalised by ``parse_peer``), in the caller's thread.
    """

    def __init__(self, addresses: Iterable[str], on_event: Callable[[PeerSeen], object]):
        if isinstance(addresses, str):
            addresses = [addresses]  # one address, not a list of characters
        seen: dict[str, str] = {}
        for text in addresses:
            address = parse_peer(text)
            seen.setdefault(address, split_address(address)[0])
        self._peers = seen
        self._on_event = on_event
        self._started = False
        self._stopped = False

    @property
    def addresses(self) -> list[str]:
        """The normalised, de-duplicated addresses, in the order given."""
        return list(self._peers)

    def start(self) -> None:
        """Report every address as a ``PeerSeen`` (first call only)."""
        if self._started or self._stopped:
            return
        self._started = True
        for address, host in self._peers.items():
            self._on_event(PeerSeen(name=address, address=address, host=host, props={}))

    def stop(self) -> None:
        """Stop reporting. Static peers never send a ``PeerGone``."""
        self._stopped = True

    def __enter__(self) -> "StaticDiscovery":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "started" if self._started else "new"
        return f"<StaticDiscovery {state} peers={len(self._peers)}>"
