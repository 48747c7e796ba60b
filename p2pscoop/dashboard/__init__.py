"""The live dashboard (``--dashboard [HOST:]PORT``): a read-only web page of a run or a node.

``server.py`` serves the page and ``/api/snapshot`` (the telemetry snapshot: docs/dashboard.md) on
a daemon thread; ``local.py`` builds snapshots from a peer's or a node's own state when the
telemetry collector is not there; ``page.html`` and ``timeline.html`` are the static pages
(no CDN, no network: everything inline). This module only parses the command line's
``[HOST:]PORT`` (``parse_address``), so that ``--help`` and usage errors import nothing more.
"""

from __future__ import annotations

import ipaddress

LOOPBACK = "127.0.0.1"


def parse_address(text: str) -> tuple[str, int]:
    """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port); host defaults to loopback.

    Port 0 asks the system for a free port. Raises ValueError with a message for the user.
    """
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = LOOPBACK, text
    elif host.startswith("["):
        if not host.endswith("]"):
            raise ValueError(f"--dashboard {text!r}: an IPv6 address is written [ADDR]:PORT")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"--dashboard {text!r}: {host!r} is not an IPv6 address") \
                from None
    elif ":" in host:
        raise ValueError(f"--dashboard {text!r}: write an IPv6 address as [ADDR]:PORT")
    elif not host:
        raise ValueError(f"--dashboard {text!r}: the host before ':' is empty "
                         f"(give PORT alone for {LOOPBACK})")
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"--dashboard {text!r}: the port must be a number, got "
                         f"{port_text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"--dashboard {text!r}: the port must be between 0 and 65535")
    return host, port


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback name or address (``localhost``, 127.x, ::1)?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
