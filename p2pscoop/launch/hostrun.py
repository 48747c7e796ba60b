"""A run over a list of hosts: where the peers go, and the run's own secure settings.

``plan`` turns the hosts (``--hosts``, ``--hostfile`` or a batch scheduler's allocation,
parsed by ``launch.hosts``) and ``-n`` into this machine's share and each remote host's:

* The origin always runs here, and ``-n`` counts every peer, the origin included.
* Hosts that are this machine (``localhost``, its name, one of its addresses) are served by
  local peers, without SSH; their slots include the origin's.
* When this machine is not listed, the origin is one peer more here, and the ``n - 1``
  others are spread over the listed hosts.
* A host without a slot count gets as many peers as this machine has cores (the common
  case of a homogeneous cluster); ``host:N`` or a hostfile says otherwise.
* ``-n`` beyond the slots spreads the extra peers round robin; below them, hosts are
  trimmed from the end of the list (``launch.hosts.spread``).

``run_secure`` makes the run's settings: a fresh random secret and cluster name that exist
only for this run (the remote peers get the secret through SSH's stdin), listening on every
interface with CurveZMQ, and the address remote peers dial (``--external-hostname``, else
this machine's address on the route toward the first remote host).
"""

from __future__ import annotations

import logging
import secrets
import socket
from dataclasses import dataclass

from ..transport.secret import SECRET_BYTES, ClusterKeys
from .cluster import Secure, default_address
from .hosts import Host, is_local, spread
from .local import default_size

LOGGER = logging.getLogger("p2pscoop.launch")


@dataclass(frozen=True)
class Plan:
    local: int  # peers on this machine, the origin included (>= 1)
    remote: list[tuple[str, str, int]]  # (name for messages, ssh target, peers) per host
    local_listed: bool  # this machine was one of the hosts


def plan(hosts: list[Host], n: int | None, cores: int | None = None) -> Plan:
    """Where the ``n`` peers of a run over ``hosts`` go (see the module docstring)."""
    cores = cores or default_size()
    local_listed = any(is_local(h) for h in hosts)
    if n is not None and not local_listed:
        n -= 1  # the origin's own peer is extra
        if n == 0:
            return Plan(1, [], False)
    shares = spread(hosts, n, cores)
    local = 0 if local_listed else 1
    remote: dict[str, list] = {}
    for host, count in shares:
        if is_local(host):
            local += count
        else:
            key = host.target()
            if key in remote:
                remote[key][2] += count
            else:
                remote[key] = [str(host), key, count]
    return Plan(max(local, 1), [tuple(r) for r in remote.values()], local_listed)


def route_address(toward: str) -> str:
    """This machine's address on the route toward host ``toward`` (no packet is sent:
    connecting a UDP socket only picks the route); our first routable address if the name
    does not resolve."""
    try:
        info = socket.getaddrinfo(toward, 22, socket.AF_INET, socket.SOCK_DGRAM)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(info[0][4])
            return sock.getsockname()[0]
    except OSError:
        return default_address()


def run_secure(toward: str, external: str | None = None) -> Secure:
    """Settings of a run over SSH: a secret and a cluster name of its own."""
    secret = secrets.token_bytes(SECRET_BYTES)
    cluster = "run-" + secrets.token_hex(6)
    advertise = external or route_address(toward)
    return Secure(cluster, secret, ClusterKeys.derive(secret, cluster), "0.0.0.0", 0,
                  advertise, socket.gethostname())
