"""The dashboard's HTTP server: the page, ``/api/snapshot``, and the trace viewer.

The standard library's ``http.server.ThreadingHTTPServer`` is enough: a handful of
browsers poll one small JSON document about once a second, so there is no need for an
asynchronous framework or another dependency. The server runs on a daemon thread of the
process it describes (the origin of a run, or a ``p2pscoop join`` node) and is given a
``snapshot: Callable[[], dict]`` (the telemetry snapshot: docs/dashboard.md); it never touches the
runtime itself.

Routes (GET and HEAD only; any other method is answered 405 with ``Allow: GET, HEAD``):

    /                 page.html: the live dashboard (polls /api/snapshot about once a second)
    /api/snapshot     snapshot() as JSON (500 with {"error": ...} if it raised)
    /timeline         timeline.html: a viewer of Chrome trace-event files (a file picker)
    /api/trace        this run's trace so far, under ``--trace`` (404 otherwise)

Invariants:

* Read-only: no route changes anything, and nothing a request carries reaches the runtime.
* Bound to 127.0.0.1 unless the user gave a HOST. Bound to loopback, requests whose ``Host``
  header names anything but a loopback address are refused (403): a web page elsewhere
  cannot read the dashboard through DNS rebinding. Bound elsewhere, the page shows function
  names, host names and PIDs to whoever reaches it: ``start`` prints a note saying so.
* ``stop`` closes the listening socket before it returns: the page is gone with the run.
* Every answer is ``Cache-Control: no-store`` with a Content-Security-Policy that allows
  this origin only (the pages load nothing from elsewhere).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

from . import LOOPBACK, is_loopback

LOGGER = logging.getLogger("p2pscoop.dashboard")

HERE = os.path.dirname(os.path.abspath(__file__))
PAGES = {"/": "page.html", "/index.html": "page.html", "/timeline": "timeline.html",
         "/timeline.html": "timeline.html"}
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
       "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; form-action 'none'")
EXPOSED_NOTE = ("p2pscoop: note: the dashboard listens on {host}: it shows function names, "
                "host names and PIDs of this {what} to whoever can reach that address "
                "(read-only)")


def _read_page(name: str) -> bytes:
    with open(os.path.join(HERE, name), "rb") as f:
        return f.read()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    dashboard: "Dashboard"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "p2pscoop-dashboard"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        LOGGER.debug("%s %s", self.address_string(), format % args)

    # -- methods -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _refuse_method(self) -> None:
        self._send(HTTPStatus.METHOD_NOT_ALLOWED, b"read-only: GET and HEAD only\n",
                   "text/plain; charset=utf-8", extra={"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_CONNECT = do_TRACE = \
        _refuse_method

    # -- routing -------------------------------------------------------------------------

    def _answer(self, body: bool) -> None:
        board = self.server.dashboard
        if not board.host_allowed(self.headers.get("Host", "")):
            self._send(HTTPStatus.FORBIDDEN, b"this dashboard answers loopback names only\n",
                       "text/plain; charset=utf-8", body=body)
            return
        path = urlsplit(self.path).path
        if path in PAGES:
            self._send(HTTPStatus.OK, board.page(PAGES[path]), "text/html; charset=utf-8",
                       body=body)
        elif path == "/api/snapshot":
            try:
                data = json.dumps(board.snapshot()).encode()
                status = HTTPStatus.OK
            except Exception as exc:  # the page shows it; the run goes on
                LOGGER.warning("the dashboard's snapshot failed: %r", exc)
                data = json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode()
                status = HTTPStatus.INTERNAL_SERVER_ERROR
            self._send(status, data, "application/json", body=body)
        elif path == "/api/trace" and board.trace is not None:
            self._send(HTTPStatus.OK, json.dumps(board.trace()).encode(), "application/json",
                       body=body)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain; charset=utf-8",
                       body=body)

    def _send(self, status: HTTPStatus, data: bytes, ctype: str, body: bool = True,
              extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class Dashboard:
    """The dashboard of one run or node: ``start()`` serves it, ``stop()`` ends it.

    ``snapshot``: returns the telemetry snapshot (docs/dashboard.md); called on a server thread,
    once per request of ``/api/snapshot``. ``trace``: returns the run's trace so far (a
    Chrome trace-event document), served at ``/api/trace``: the viewer at
    ``/timeline?trace=/api/trace`` opens it, live.
    """

    def __init__(self, snapshot: Callable[[], dict], host: str = LOOPBACK, port: int = 0,
                 trace: Callable[[], dict] | None = None):
        self.snapshot = snapshot
        self.host = host
        self.port = port
        self.trace = trace
        self.loopback = is_loopback(host)
        self._pages: dict[str, bytes] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        return f"http://{host}:{self.port}/"

    def start(self) -> str:
        """Listen and serve on a daemon thread; returns the page's URL. Raises OSError
        (address in use, not an address of this machine) with the system's reason."""
        server_cls = _Server
        if ":" in self.host:
            server_cls = type("_Server6", (_Server,), {"address_family": socket.AF_INET6})
        server = server_cls((self.host, self.port), _Handler)
        server.dashboard = self
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.2}, name="p2pscoop-dashboard", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and close the listening socket (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()

    def page(self, name: str) -> bytes:
        if name not in self._pages:
            self._pages[name] = _read_page(name)
        return self._pages[name]

    def host_allowed(self, header: str) -> bool:
        """May a request with this ``Host`` header be answered (see the module docstring)?"""
        if not self.loopback:
            return True
        name = header.strip()
        if name.startswith("["):
            name = name[1:].partition("]")[0]
        else:
            name = name.rpartition(":")[0] if name.count(":") == 1 else name
        return is_loopback(name)


def start_dashboard(address: tuple[str, int], snapshot: Callable[[], dict], what: str,
                    trace: Callable[[], dict] | None = None) -> Dashboard:
    """Start the dashboard of a ``what`` ("run", "node") at ``address`` (``parse_address``)
    and print its URL on stderr (with a note when it is reachable from other machines)."""
    host, port = address
    board = Dashboard(snapshot, host, port, trace)
    try:
        url = board.start()
    except OSError as exc:
        raise OSError(f"p2pscoop: cannot serve the dashboard on {host}:{port}: "
                      f"{exc.strerror or exc}") from exc
    print(f"p2pscoop: dashboard of this {what} at {url}", file=sys.stderr, flush=True)
    if not board.loopback:
        print(EXPOSED_NOTE.format(host=host, what=what), file=sys.stderr, flush=True)
    return board
