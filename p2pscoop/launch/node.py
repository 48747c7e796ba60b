"""``p2pscoop join``: a node of a cluster. A supervisor that keeps no user code.

    program's launcher ──HELLO(client)+SERVE──▶ ┌─────────────────────────┐
    `p2pscoop status`  ──HELLO(client)+STATUS─▶ │ Node (this process)     │──zeroconf: announce
                       ◀──SERVED / STATUS_REPORT│  ROUTER, CURVE + ZAP    │   _p2pscoop._tcp
                                                │  workers per program ───┼──▶ worker processes
                                                └─────────────────────────┘    (one program each)

The node answers two requests from authenticated clients of its cluster (the transport
checks the CURVE key; ``Membership.check`` the HELLO, so a version mismatch is refused with
a REFUSE that says what differs): SERVE starts ``n`` worker peers for that program (fresh
processes in a fresh directory, so programs never share globals, imports or constants, and a
crash touches one program only), STATUS describes the node. Workers greet the program's
origin themselves, die with the node (a lifeline pipe and ``PR_SET_PDEATHSIG``), and leave
when their program ends (SHUTDOWN, or the origin's death); the node then removes the
program's directory, so nothing of a program stays.

Graceful leave (SIGTERM, Ctrl-C): stop announcing (a zeroconf goodbye), tell every worker
to leave (SIGTERM: each says BYE, so the owners take back its leases at once), reap them,
exit 0.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import zmq

from ..core import messages as M
from ..core.errors import ProtocolError
from ..core.membership import Identity, Membership
from ..transport import security
from ..runtime.peer import PYTHON
from .cluster import Secure
from .local import default_size, spawn_worker

LOGGER = logging.getLogger("p2pscoop.node")

MAX_CLIENTS = 1024  # HELLOs remembered (a client says HELLO then asks at once)

#: the NodeConfig fields a program may set for the peers a node starts for it (SERVE's
#: ``config``): what it wants to see (--trace...), never what the node owns
SERVED_FIELDS = ("telemetry", "trace")


def served_config(text: str) -> str:
    """The served peers' NodeConfig JSON from a SERVE's ``config``: the ``SERVED_FIELDS``
    that are booleans, the rest (and anything unreadable) ignored."""
    try:
        asked = json.loads(text) if text else {}
    except ValueError:
        asked = {}
    if not isinstance(asked, dict):
        asked = {}
    return json.dumps({k: asked[k] for k in SERVED_FIELDS if type(asked.get(k)) is bool})


class Program:
    def __init__(self, name: str, workdir: str):
        self.name = name
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.started = time.time()


class Node:
    def __init__(self, secure: Secure, n: int | None = None, verbosity: int = 0,
                 zeroconf: bool = True, peers: list[str] | None = None,
                 dashboard: tuple[str, int] | None = None):
        from .. import __version__
        from ..runtime import payload

        self.secure = secure
        self.n = n or default_size()
        self.verbosity = verbosity
        self.use_zeroconf = zeroconf
        self.static_peers = list(peers or [])
        self.id = os.urandom(M.ID_LEN)
        self.node_id = "n" + self.id.hex()[:12]
        self.ctx = zmq.Context()
        security.require_curve()
        self.auth = security.Authenticator(self.ctx, secure.keys)
        self.auth.start()
        security.self_test(self.ctx, secure.keys)
        self.router = self.ctx.socket(zmq.ROUTER)
        security.harden(self.router)
        security.secure_server(self.router, secure.keys)
        self.router.setsockopt(zmq.LINGER, 1000)
        where = f"tcp://{secure.listen}"
        if secure.port:
            self.router.bind(f"{where}:{secure.port}")
            self.port = secure.port
        else:
            self.port = self.router.bind_to_random_port(where)
        self.address = f"tcp://{secure.advertise}:{self.port}"
        self.identity = Identity(self.id, 0, self.address, secure.host,
                                 secure.keys.fingerprint, PYTHON, payload.PROTOCOL,
                                 __version__, 1, secure.keys.hello_key, M.ROLE_NODE, "")
        self.members = Membership(self.identity)
        self.clients: dict[bytes, float] = {}  # admitted client identity -> when
        # clients whose HELLO was refused (and told why): their next requests are dropped
        # without another warning, so a mismatch logs one line, as on the client's side
        self.refused_clients: dict[bytes, float] = {}
        self.programs: dict[str, Program] = {}
        self.refused = 0
        self._stop = threading.Event()
        self._lifeline_r, self._lifeline_w = os.pipe()
        self._zc = None
        self.dashboard = dashboard  # (host, port) of its web page (``p2pscoop.dashboard``)

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        def on_signal(signum, frame):
            self._stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        board = None
        if self.dashboard is not None:
            from ..dashboard.local import start_for_node

            try:
                board = start_for_node(self, self.dashboard)
            except OSError as exc:
                print(exc, file=sys.stderr)
                self.close()
                return 1
        if self.use_zeroconf:
            from ..discovery.zeroconf import ZeroconfDiscovery

            self._zc = ZeroconfDiscovery(self.secure.keys.fingerprint, self.node_id,
                                         self.address, self.secure.host, lambda ev: None)
            self._zc.start()
        print(f"p2pscoop: node {self.node_id} of cluster {self.secure.cluster!r} listening "
              f"on {self.address} with {self.n} peer(s) per program", file=sys.stderr,
              flush=True)
        try:
            while not self._stop.is_set():
                if self.router.poll(200):
                    self._drain()
                self._reap()
        finally:
            if board is not None:
                board.stop()
            self.close()
        return 0

    def close(self) -> None:
        if self._zc is not None:
            self._zc.stop()
            self._zc = None
        procs = [p for prog in self.programs.values() for p in prog.procs]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # each says BYE and leaves
        deadline = time.monotonic() + 5.0
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._reap()
        os.close(self._lifeline_w)
        os.close(self._lifeline_r)
        self.router.close(linger=0)
        self.auth.stop()
        self.ctx.term()

    # -- requests ------------------------------------------------------------------------

    def _drain(self) -> None:
        for _ in range(100):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._on_frames(frames[0], frames[1:])

    def _reply(self, ident: bytes, msg: M.Message) -> None:
        try:
            self.router.send_multipart([ident, *M.encode(msg)], zmq.NOBLOCK)
        except zmq.ZMQError:
            pass

    def _on_frames(self, ident: bytes, body: list) -> None:
        try:
            msg = M.decode(body)
        except ProtocolError as exc:
            self._refuse_log(f"malformed frame: {exc}")
            return
        cls = type(msg)
        if cls is M.Hello:
            why = self.members.check(ident, msg)
            if why is None and msg.role != M.ROLE_CLIENT:
                why = ("it is not a client", "a node only answers clients (SERVE, STATUS)")
            if why is not None:
                self._refuse_log(f"refused HELLO from {msg.address or ident.hex()[:8]} "
                                 f"(host {msg.host!r}): {why[0]}")
                self._reply(ident, M.Refuse(why[1]))
                _remember(self.refused_clients, ident)
                return
            _remember(self.clients, ident)
            return
        if ident not in self.clients:
            if ident in self.refused_clients:  # already told why, and logged once
                LOGGER.debug("dropped %s of a refused client", cls.__name__)
            else:
                self._refuse_log(f"{cls.__name__} before a valid HELLO")
            return
        if cls is M.Serve:
            self._reply(ident, M.Served(msg.program, self._serve(msg)))
        elif cls is M.Status:
            self._reply(ident, M.StatusReport(msg.req, json.dumps(self.report())))
        else:
            self._refuse_log(f"{cls.__name__} is not a request a node answers")

    def _refuse_log(self, text: str) -> None:
        self.refused += 1
        if self.refused <= 5 or self.refused % 100 == 0:
            LOGGER.warning("%s (%d rejected so far)", text, self.refused)

    def _serve(self, msg: M.Serve) -> int:
        prog = self.programs.get(msg.program)
        if prog is not None and any(p.poll() is None for p in prog.procs):
            return 0  # already serving it
        workdir = tempfile.mkdtemp(prefix=f"p2pscoop-{msg.program}-")
        prog = self.programs[msg.program] = Program(msg.program, workdir)
        count = self.n if msg.workers == 0 else min(self.n, msg.workers)
        spec = {
            "origin": msg.address, "origin_id": msg.origin.hex(), "cluster": "",
            "size": 1, "lifeline_fd": self._lifeline_r, "main": "", "origin_pid": os.getpid(),
            "sys_path": [p for p in sys.path if p], "verbosity": self.verbosity,
            "config": served_config(msg.config), "program": msg.program, "cluster_name": self.secure.cluster,
            "listen": self.secure.listen, "advertise": self.secure.advertise,
            "host": self.secure.host, "leave_with_origin": True,
        }
        for k in range(count):
            try:
                proc = spawn_worker(dict(spec, rank=1000 + k), self._lifeline_r,
                                    secret_text=self.secure.secret_text, cwd=workdir)
            except OSError as exc:  # out of processes or descriptors: serve with fewer
                LOGGER.warning("could not start a peer for program %s: %s", msg.program, exc)
                break
            prog.procs.append(proc)
        count = len(prog.procs)
        LOGGER.info("serving program %s of %s with %d peer(s)", msg.program, msg.address,
                    count)
        return count

    def _reap(self) -> None:
        for name, prog in list(self.programs.items()):
            if all(p.poll() is not None for p in prog.procs):
                shutil.rmtree(prog.workdir, ignore_errors=True)
                del self.programs[name]
                LOGGER.info("program %s ended: nothing of it is left here", name)

    def report(self) -> dict:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = None
        return {
            "node": self.node_id, "host": self.secure.host, "address": self.address,
            "cluster": self.secure.cluster, "peers_per_program": self.n, "load": load,
            "known_nodes": self.static_peers,
            "programs": [{"program": p.name,
                          "peers": sum(1 for q in p.procs if q.poll() is None),
                          "since": p.started} for p in self.programs.values()],
        }


def _remember(table: dict[bytes, float], ident: bytes) -> None:
    """Note ``ident`` in ``table``, forgetting the oldest entry beyond MAX_CLIENTS."""
    if ident not in table and len(table) >= MAX_CLIENTS:
        table.pop(next(iter(table)))
    table[ident] = time.monotonic()


#: the messages a node answers (NodeState and Membership answer the others)
HANDLERS = {M.Serve: Node._serve, M.Status: Node.report}
#: the answers a node gives (read by the clients that asked)
ANSWERS = (M.Served, M.StatusReport)
