"""The agent's HTTP endpoint for diagnostics: GET /serial/{vmId}?tail=N.

Serves only VMs assigned to this node; the controller fetches serial output
here, so no shared file system is assumed between controller and nodes.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


if TYPE_CHECKING:
    from nodeagent.agent import NodeAgent

_PATH = re.compile(r"^/serial/([0-9a-f-]{36})$")
MAX_TAIL_LINES = 5000


def serve(listen: str, agent: Callable[[], NodeAgent | None]) -> ThreadingHTTPServer:
    """Start serving in a thread; `agent()` is looked up per request (it may not exist yet)."""
    host, port = listen.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
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

    srv = ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv
