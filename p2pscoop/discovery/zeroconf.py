"""Zeroconf discovery: announce this node on the LAN and report the nodes of the same cluster.

Owns: one ``zeroconf.Zeroconf`` instance per ``ZeroconfDiscovery``, the service it registers
(``<node_id>._p2pscoop._tcp.local.``), a ``ServiceBrowser`` on the same type, and a periodic
re-announcement. ``interface_addresses`` maps an interface name to its IPv4 addresses for a
``--interface IF`` option.

What a node announces (TXT properties; all public, none of them a secret)::

    fp    the cluster's public fingerprint, 16 lowercase hex characters
    v     the wire protocol version (decimal)
    id    the node id ([A-Za-z0-9_-], 1..63 characters; also the service instance name)
    host  the machine's name, informational

Threads (all zeroconf's own; we start none):

    caller           start(), stop(), ignored
    zeroconf loop    re-announcement timer (asyncio task on ``Zeroconf.loop``)
    browser thread   resolves services and calls ``on_event``; blocking there delays only
                     discovery, never the node. ``on_event`` must be quick and thread-safe
                     (hand the event to the owner thread) and must not call ``stop()``.

Invariants:

* mDNS is untrusted input. A service is reported only when its properties are all present and
  valid, its ``fp`` equals ours, its address is a unicast IPv4 address and its port is in
  1..65535. Anything else is dropped and counted in ``ignored`` (reasons: ``foreign``: another
  cluster; ``invalid``: malformed; ``unresolved``: no full answer in time; ``self``: our own
  service, or another naming our node id). The counts are of browser events, not of distinct
  services. Nothing read from the network raises in zeroconf's threads; an exception from
  ``on_event`` is logged and swallowed there.
* ``PeerSeen.props`` is ``{"fp": str, "v": int, "id": str, "host": str}``. A peer announcing
  another protocol version is still reported: the handshake then tells the user what differs,
  where silence here would only look like a network problem.
* Never reports itself. ``PeerGone(name)`` follows only a ``PeerSeen(name)``, when the last
  service naming that node is removed (a goodbye, or a record expiry that mDNS may take
  18 minutes or more to notice: liveness comes from heartbeats, not from here).
* Registration uses ``cooperating_responders=True``: no 1.2 s RFC 6762 probing, so a name
  clash is not detected here; the caller makes node ids unique (random), and the handshake
  catches a peer that lies. The service is re-announced (3 multicast packets, as zeroconf's
  ``update_service`` sends) every ``reannounce`` seconds, because a browser that missed us
  during a partition never asks again on its own.
* ``_state`` is written under ``_lock`` and read without it by the browser thread (a str
  reference: a stale read only lets one more event through during ``stop()``).
* ``stop()`` cancels the re-announcement first, then unregisters (a goodbye), then closes; every
  step is bounded by zeroconf's own time-outs, so it never hangs. It is idempotent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import threading
from collections import Counter
from typing import Callable

import ifaddr
from zeroconf import (InterfaceChoice, IPVersion, ServiceBrowser, ServiceInfo,
                      ServiceStateChange, Zeroconf)

from ..core.messages import PROTOCOL_VERSION
from . import PeerGone, PeerSeen
from .static import split_address

__all__ = ["SERVICE_TYPE", "ZeroconfDiscovery", "interface_addresses"]

LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_p2pscoop._tcp.local."
RESOLVE_TIMEOUT_MS = 2000  # how long the browser thread waits for a service's records
_STOP_TIMEOUT = 5.0        # bound on waiting for the zeroconf loop while stopping

_FINGERPRINT = re.compile(r"[0-9a-f]{16}\Z")
_NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,63}\Z")
_VERSION = re.compile(r"[0-9]{1,9}\Z")
_MAX_HOST = 253
_KEYS = ("fp", "v", "id", "host")


def _check_host(host: object) -> bool:
    return (isinstance(host, str) and 0 < len(host.encode("utf-8", "replace")) <= _MAX_HOST
            and host.isprintable())


def interface_addresses(ifname: str) -> list[str]:
    """The IPv4 addresses of network interface ``ifname``, e.g. ``["10.0.0.3"]``.

    Raises ValueError naming the interfaces that exist when there is no ``ifname``, or when it
    has no IPv4 address.
    """
    adapters = ifaddr.get_adapters()
    names = sorted({a.nice_name for a in adapters} | {str(a.name) for a in adapters})
    for adapter in adapters:
        if ifname in (adapter.nice_name, str(adapter.name)):
            found = [ip.ip for ip in adapter.ips if ip.is_IPv4]
            if not found:
                raise ValueError(f"network interface {ifname!r} has no IPv4 address")
            return found
    raise ValueError(f"no network interface named {ifname!r}; interfaces here: "
                     f"{', '.join(names) or '(none)'}")


def _check_interfaces(interfaces) -> list[str]:
    if isinstance(interfaces, str):
        interfaces = [interfaces]
    checked = []
    for item in interfaces:
        try:
            checked.append(str(ipaddress.IPv4Address(item)))
        except ValueError:
            raise ValueError(f"interfaces take IPv4 addresses, not {item!r}; "
                             f"interface_addresses(NAME) gives those of an interface") from None
    if not checked:
        raise ValueError("interfaces is empty: give None for all, or IPv4 addresses")
    return checked


def _decode_props(raw: dict) -> dict[str, str] | None:
    """Our four TXT properties as str, or None when one is missing or not UTF-8."""
    props: dict[str, str] = {}
    for key in _KEYS:
        value = raw.get(key.encode())
        if not isinstance(value, bytes):
            return None
        try:
            props[key] = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return props


class ZeroconfDiscovery:
    """Announce ``address`` for ``node_id`` and report peers of cluster ``fingerprint``.

    ``address`` is this node's endpoint, ``tcp://IPv4:PORT`` (or ``IPv4:PORT``), with a concrete
    unicast address (not ``0.0.0.0``). ``interfaces``: None for all, or a list of IPv4 addresses
    to use (see ``interface_addresses``). ``reannounce``: seconds between re-announcements
    (``0`` turns them off). ``version``: the protocol version to announce.
    """

    def __init__(self, fingerprint: str, node_id: str, address: str, host: str,
                 on_event: Callable[[PeerSeen | PeerGone], object], interfaces=None,
                 reannounce: float = 10.0, *, version: int = PROTOCOL_VERSION,
                 announce: bool = True):
        """``announce=False``: browse only (a program looking for nodes); ``address`` is
        then ignored."""
        self.announce = announce
        if not announce:
            address = "127.0.0.1:1"
        if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
            raise ValueError(f"cluster fingerprint {fingerprint!r} is not 16 lowercase hex digits")
        if not isinstance(node_id, str) or not _NODE_ID.match(node_id):
            raise ValueError(f"node id {node_id!r} must be 1 to 63 of A-Z a-z 0-9 _ -")
        if not _check_host(host):
            raise ValueError(f"host name {host!r} must be printable, 1 to {_MAX_HOST} bytes")
        if type(version) is not int or not 0 <= version < 10**9:
            raise ValueError(f"protocol version {version!r} is not a non-negative int")
        if not reannounce >= 0:
            raise ValueError(f"reannounce must be >= 0 seconds, not {reannounce!r}")
        ip, port = split_address(address)
        try:
            parsed = ipaddress.IPv4Address(ip)
        except ValueError:
            raise ValueError(f"zeroconf announces an IPv4 address, not {ip!r} (from {address!r});"
                             " use a static peer list for IPv6 or host names") from None
        if announce and (parsed.is_unspecified or parsed.is_multicast or parsed.is_reserved):
            raise ValueError(f"cannot announce {address!r}: give the address peers should dial")
        if interfaces is not None:
            interfaces = _check_interfaces(interfaces)
        self.fingerprint, self.node_id = fingerprint, node_id
        self.host, self.version = host, version
        self.address = f"tcp://{parsed}:{port}"
        self.service_name = f"{node_id}.{SERVICE_TYPE}"
        self._ip, self._port = str(parsed), port
        self._on_event = on_event
        self._interfaces = interfaces
        self._reannounce = float(reannounce)
        self._lock = threading.Lock()       # guards _ignored, _reported and the state below
        self._ignored: Counter[str] = Counter()
        self._reported: dict[str, str] = {}  # service name -> node id, for services reported
        self._state = "new"                 # new -> started -> stopped
        self._zc: Zeroconf | None = None
        self._info: ServiceInfo | None = None
        self._browser: ServiceBrowser | None = None
        self._timer: asyncio.Task | None = None

    # ---- caller's thread -------------------------------------------------------------------

    @property
    def ignored(self) -> dict[str, int]:
        """How many services were dropped, by reason (foreign, invalid, unresolved, self)."""
        with self._lock:
            return dict(self._ignored)

    def start(self) -> None:
        """Register, start browsing and re-announcing. Blocks ~0.5 s (the announcements)."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"ZeroconfDiscovery is {self._state}; make a new one")
            self._state = "started"
        props = {"fp": self.fingerprint, "v": str(self.version), "id": self.node_id,
                 "host": self.host}
        self._info = ServiceInfo(SERVICE_TYPE, self.service_name, port=self._port,
                                 addresses=[ipaddress.IPv4Address(self._ip).packed],
                                 properties=props, server=f"{self.node_id}.p2pscoop.local.")
        try:
            try:
                self._zc = Zeroconf(interfaces=self._interfaces or InterfaceChoice.All,
                                    ip_version=IPVersion.V4Only)
            except (OSError, RuntimeError) as exc:
                where = ("any IPv4 interface" if self._interfaces is None else
                         f"{', '.join(self._interfaces)} (is that an address of this machine?)")
                raise OSError(f"zeroconf discovery cannot listen on {where}: {exc}") from exc
            if self.announce:
                self._zc.register_service(self._info, cooperating_responders=True)
            else:
                self._info = None
            self._browser = ServiceBrowser(self._zc, SERVICE_TYPE, handlers=[self._on_change])
            if self._reannounce > 0 and self.announce:
                self._timer = asyncio.run_coroutine_threadsafe(
                    self._start_timer(), self._zc.loop).result(_STOP_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop re-announcing, say goodbye, stop browsing, close. Idempotent; never hangs."""
        browser = self._browser
        if browser is not None and threading.current_thread() is browser:
            raise RuntimeError("ZeroconfDiscovery.stop() was called from on_event; call it "
                               "from another thread")
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
        zc, self._zc = self._zc, None
        if zc is None:
            return
        if self._timer is not None and zc.loop is not None and zc.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._stop_timer(), zc.loop).result(_STOP_TIMEOUT)
            except Exception:
                LOGGER.warning("zeroconf: re-announcement did not stop cleanly", exc_info=True)
        if self._info is not None:
            try:
                zc.unregister_service(self._info)  # goodbye; bounded by zeroconf's time-out
            except Exception:
                LOGGER.warning("zeroconf: goodbye for %s failed", self.service_name, exc_info=True)
        if browser is not None:
            browser.cancel()  # joins the browser thread: at most one resolve time-out
        try:
            zc.close()
        except Exception:
            LOGGER.warning("zeroconf: close failed", exc_info=True)

    def __enter__(self) -> "ZeroconfDiscovery":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"<ZeroconfDiscovery {self._state} id={self.node_id} {self.address} "
                f"fp={self.fingerprint} peers={len(set(self._reported.values()))}>")

    # ---- zeroconf loop thread --------------------------------------------------------------

    async def _start_timer(self) -> asyncio.Task:
        return asyncio.ensure_future(self._reannounce_forever())

    async def _reannounce_forever(self) -> None:
        zc, info = self._zc, self._info
        while True:
            await asyncio.sleep(self._reannounce)
            if zc is None or info is None or zc.done:
                return
            broadcasts = await zc.async_update_service(info)
            await broadcasts

    async def _stop_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and not timer.done():
            timer.cancel()  # also cancels a re-announcement under way: no announce after bye
            try:
                await timer
            except asyncio.CancelledError:
                pass

    # ---- browser thread --------------------------------------------------------------------

    def _on_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                   state_change: ServiceStateChange) -> None:
        if self._state != "started":
            return
        try:
            if state_change is ServiceStateChange.Removed:
                event = self._forget(name)
            else:
                event = self._resolve(zeroconf, service_type, name)
        except Exception:  # untrusted input must never break zeroconf's thread
            LOGGER.debug("zeroconf: dropped %r", name, exc_info=True)
            self._count("invalid")
            return
        if event is not None and self._state == "started":
            try:
                self._on_event(event)
            except Exception:
                LOGGER.exception("zeroconf: on_event failed for %r", event)

    def _count(self, reason: str) -> None:
        with self._lock:
            self._ignored[reason] += 1

    def _forget(self, name: str) -> PeerGone | None:
        with self._lock:
            node = self._reported.pop(name, None)
            if node is None or node in self._reported.values():
                return None  # never reported, or another service still names this node
        return PeerGone(node)

    def _resolve(self, zc: Zeroconf, service_type: str, name: str) -> PeerSeen | PeerGone | None:
        if name == self.service_name:
            self._count("self")
            return None
        info = ServiceInfo(service_type, name)
        # request() reads the cache first, in zeroconf's loop thread (the cache is not ours)
        if not info.request(zc, RESOLVE_TIMEOUT_MS):
            self._count("unresolved")
            return None
        props = _decode_props(info.properties or {})
        if props is None:
            return self._reject(name, "invalid", "missing or non-UTF-8 properties")
        if props["fp"] != self.fingerprint:
            return self._reject(name, "foreign", f"fingerprint {props['fp']!r:.40}")
        if props["id"] == self.node_id:
            return self._reject(name, "self", "our own node id")
        address = self._address_of(info)
        problem = _problem(props, address)
        if problem:
            return self._reject(name, "invalid", problem)
        with self._lock:
            self._reported[name] = props["id"]
        return PeerSeen(name=props["id"], address=address, host=props["host"],
                        props={**props, "v": int(props["v"])})

    def _reject(self, name: str, reason: str, why: str) -> PeerGone | None:
        LOGGER.debug("zeroconf: ignoring %r (%s: %s)", name, reason, why)
        self._count(reason)
        return self._forget(name)  # it was valid before and changed: no longer a peer

    @staticmethod
    def _address_of(info: ServiceInfo) -> str | None:
        port = info.port
        if type(port) is not int or not 1 <= port <= 65535:
            return None
        for text in info.parsed_addresses(IPVersion.V4Only):
            try:
                ip = ipaddress.IPv4Address(text)
            except ValueError:
                continue
            if not (ip.is_unspecified or ip.is_multicast or ip.is_reserved):
                return f"tcp://{ip}:{port}"
        return None


def _problem(props: dict[str, str], address: str | None) -> str | None:
    """What is wrong with a same-cluster service's properties and address, or None."""
    if not _NODE_ID.match(props["id"]):
        return f"node id {props['id']!r:.80}"
    if not _VERSION.match(props["v"]):
        return f"version {props['v']!r:.20}"
    if not _check_host(props["host"]):
        return f"host {props['host']!r:.80}"
    if address is None:
        return "no unicast IPv4 address or no port in 1..65535"
    return None
