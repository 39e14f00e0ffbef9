"""HTTP relaying between a network's service namespace and the fabric, for guests' blob requests.

A guest asks `http://{account}.blob.{domain}/...` (a CNAME of the storage stamp's
name, which resolves to its network's gateway). The metadata process in the
service namespace sees a blob Host header and relays the request over a UNIX
socket (file-system based, so it crosses network namespaces) to the node
agent, which relays it to the controller's blob data plane. Nothing in the
root namespace listens for guests.
"""
from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingUnixStreamServer
from urllib.parse import urlsplit

CHUNK = 64 * 1024
RELAY_TIMEOUT_S = 30.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = RELAY_TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def relay(handler: BaseHTTPRequestHandler, conn: http.client.HTTPConnection) -> None:
    """Send the handler's request through conn and stream the answer back (Host header kept)."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else None
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
    try:
        conn.request(handler.command, handler.path, body=body, headers=headers)
        resp = conn.getresponse()
    except OSError as e:
        msg = f"blob service unreachable from this node: {e}".encode()
        handler.send_response(502)
        handler.send_header("Content-Length", str(len(msg)))
        handler.end_headers()
        handler.wfile.write(msg)
        return
    handler.send_response(resp.status, resp.reason)
    for k, v in resp.getheaders():
        if k.lower() not in HOP_BY_HOP:
            handler.send_header(k, v)
    handler.end_headers()
    if handler.command != "HEAD":
        while chunk := resp.read(CHUNK):
            handler.wfile.write(chunk)
    conn.close()


def serve_unix(path: Path, endpoint: Callable[[], str]) -> ThreadingUnixStreamServer:
    """The node agent's end: relay every request arriving on the UNIX socket to endpoint() (http://host:port)."""
    path.unlink(missing_ok=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *_: object) -> None:
            pass

        def _relay(self) -> None:
            url = urlsplit(endpoint())
            relay(self, http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80,
                                                   timeout=RELAY_TIMEOUT_S))

        do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _relay  # noqa: N815 - http.server's names

    srv = ThreadingUnixStreamServer(str(path), Handler)
    srv.daemon_threads = True
    path.chmod(0o600)
    threading.Thread(target=srv.serve_forever, daemon=True, name="blob-relay").start()
    return srv
