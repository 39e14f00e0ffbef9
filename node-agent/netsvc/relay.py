"""HTTP relaying between a network's service namespace and the fabric, for guests' blob requests.

A guest asks `http://{account}.blob.{domain}/...` (a CNAME of the storage stamp's
name, which resolves to its network's gateway). The metadata process in the
service namespace sees a blob Host header and relays the request over a UNIX
socket (file-system based, so it crosses network namespaces) to the node
agent, which relays it to the controller's blob data plane. Nothing in the
root namespace listens for guests.

Bodies are streamed, never held: the request's head goes first, so the blob
service authorises it on its headers, then the body follows CHUNK bytes at a
time. When the service answers before the body is all sent (a refusal), that
answer is relayed and the rest of the body is not read. A request whose
Content-Length is missing on a body, negative, not a number, or larger than
the caller allows is refused before anything is read or sent.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import ThreadingUnixStreamServer
from urllib.parse import urlsplit

from fabric.netio import BadLength, QuietClientErrors, client_gone, declared_length
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES

CHUNK = 64 * 1024
RELAY_TIMEOUT_S = 30.0
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class RefusedLength(Exception):
    """A request body's declared length breaks a rule; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_length(headers: Message, limit: int) -> int:
    """The request body's length from its headers, checked before a byte of it is read (netio.declared_length:
    one decimal number; no chunked bodies), and at most `limit` bytes."""
    try:
        length = declared_length(headers) or 0
    except BadLength as e:
        raise RefusedLength(411 if e.chunked else 400, e.message) from None
    if length > limit:
        raise RefusedLength(413, f"Content-Length {length} is over the limit of {limit} bytes")
    return length


def answer_plain(handler: BaseHTTPRequestHandler, status: int, message: str) -> None:
    body = message.encode()
    handler.close_connection = True
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain; charset=utf-8")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = RELAY_TIMEOUT_S) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def relay(handler: BaseHTTPRequestHandler, conn: http.client.HTTPConnection,
          limit: int = MAX_BLOCK_BLOB_BYTES) -> None:
    """Send the handler's request through conn, streaming its body, and stream the answer back (Host kept)."""
    try:
        length = content_length(handler.headers, limit)
    except RefusedLength as e:
        return answer_plain(handler, e.status, e.message)
    handler.close_connection = True          # a refused body may be left unread
    try:
        conn.putrequest(handler.command, handler.path, skip_host=True, skip_accept_encoding=True)
        for k, v in handler.headers.items():
            if k.lower() not in HOP_BY_HOP:
                conn.putheader(k, v)
        conn.endheaders()
        if not _send_body(handler, conn, length):
            conn.close()
            return                               # the client went away mid-body: nothing to answer
        resp = conn.getresponse()
    except OSError as e:
        conn.close()
        return answer_plain(handler, 502, f"blob service unreachable from this node: {e}")
    try:
        handler.send_response(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                handler.send_header(k, v)
        handler.send_header("Connection", "close")
        handler.end_headers()
        if handler.command != "HEAD":
            while chunk := resp.read(CHUNK):
                handler.wfile.write(chunk)
    finally:
        conn.close()


def _send_body(handler: BaseHTTPRequestHandler, conn: http.client.HTTPConnection, length: int) -> bool:
    """Copy `length` body bytes from the client to conn, CHUNK at a time. False when the client stopped short;
    True when all was sent, or when the far end stopped taking it (it answered early: relay that answer)."""
    left = length
    while left > 0:
        try:
            chunk = handler.rfile.read(min(CHUNK, left))
        except OSError as e:
            if client_gone(e):
                return False
            raise
        if not chunk:
            return False
        try:
            conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            return True
        left -= len(chunk)
    return True


class _UnixServer(QuietClientErrors, ThreadingUnixStreamServer):
    daemon_threads = True


def serve_unix(path: Path, endpoint: Callable[[], str], tls: ssl.SSLContext | None = None) -> ThreadingUnixStreamServer:
    """The node agent's end: relay every request arriving on the UNIX socket to endpoint(): https://host:port
    (the controller's TLS front, with `tls`: this node's certificate, the controller's checked), or
    http://host:port on the same host."""
    path.unlink(missing_ok=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"
        timeout = RELAY_TIMEOUT_S

        def log_message(self, *_: object) -> None:
            pass

        def _relay(self) -> None:
            url = urlsplit(endpoint())
            conn = http.client.HTTPSConnection(url.hostname or "127.0.0.1", url.port or 443, context=tls,
                                               timeout=RELAY_TIMEOUT_S) if url.scheme == "https" else \
                http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=RELAY_TIMEOUT_S)
            relay(self, conn)

        do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = _relay  # noqa: N815 - http.server's names

    srv = _UnixServer(str(path), Handler)
    path.chmod(0o600)
    threading.Thread(target=srv.serve_forever, daemon=True, name="blob-relay").start()
    return srv
