"""The agent's HTTPS endpoint for diagnostics: GET /serial/{vmId}?tail=N.

Serves only VMs assigned to this node, and only to a controller: TLS with this node's certificate, the
caller's certificate required to be a controller's of the cluster CA. The controller fetches serial output
here (checking the certificate is this node's), so no shared file system is assumed between controller and
nodes.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from cryptography import x509

from fabric.netio import TlsHttpServer
from fabric.pki import CONTROLLERS, Credential, PkiError, identity_of


if TYPE_CHECKING:
    from nodeagent.agent import NodeAgent

_PATH = re.compile(r"^/serial/([0-9a-f-]{36})$")
MAX_TAIL_LINES = 5000
IO_TIMEOUT_S = 10.0


def serve(listen: str, agent: Callable[[], NodeAgent | None], credential: Credential) -> TlsHttpServer:
    """Start serving in a thread; `agent()` is looked up per request (it may not exist yet)."""
    host, port = listen.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            der = TlsHttpServer.peer_certificate(self.request)
            try:
                who = identity_of(x509.load_der_x509_certificate(der)) if der else None
            except (ValueError, PkiError):
                who = None
            if who is None or who.role != CONTROLLERS:
                self.send_error(403, "serial output is for the cluster's controllers")
                return
            url = urlsplit(self.path)
            m = _PATH.match(url.path)
            a = agent()
            if not m or a is None or not a.is_mine(m[1]):
                self.send_error(404, "no such VM on this node")
                return
            try:
                tail = min(int(parse_qs(url.query).get("tail", ["200"])[0]), MAX_TAIL_LINES)
            except ValueError:
                self.send_error(400, "tail must be an integer")
                return
            body = a.consoles.tail(m[1], tail).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Console-Path", str(a.consoles.log_path(m[1])))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    srv = TlsHttpServer((host, int(port)), Handler, credential.ssl_context(server=True), IO_TIMEOUT_S)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
