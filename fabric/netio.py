"""Talking to clients over a connection: telling a client that went away from a failure.

A client that closes its connection early (a `curl` interrupted, a download
abandoned, a guest rebooted mid-request) shows up in the server as
BrokenPipeError or ConnectionResetError on the next write, or as a socket
timeout on a read that never completes. That is the client's choice, not an
error of the server: servers log it at debug, with no traceback, and drop the
connection. Anything else raised while serving is a real failure, logged with
its traceback.

    try:
        serve_one(request)
    except Exception as exc:
        log_failure(log, exc, f"GET {path} from {peer}")

A socketserver server (http.server's included) prints the traceback of
whatever escapes a handler to stderr; `QuietClientErrors` logs it as above:

    class Server(QuietClientErrors, ThreadingHTTPServer): ...
"""
from __future__ import annotations

import errno
import logging
import re
import socket
import ssl
import sys
from email.message import Message
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = ["BadLength", "QuietClientErrors", "TlsHttpServer", "client_gone", "declared_length", "log_failure"]

log = logging.getLogger(__name__)

# errno values of a connection its peer closed or abandoned (beyond the ConnectionError subclasses)
_GONE_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ESHUTDOWN, errno.ETIMEDOUT})


def client_gone(exc: BaseException) -> bool:
    """True when `exc`, raised while reading from or writing to a client's connection, means the client went
    away (closed, reset, or stalled past the socket's timeout); False for anything else.

    ConnectionRefusedError is not one: it is the server's own outgoing connection that failed."""
    if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, ConnectionRefusedError) and exc.errno in _GONE_ERRNOS


def log_failure(logger: logging.Logger, exc: BaseException, what: str) -> None:
    """`what` (a request) failed with `exc`: at debug, without a traceback, when the client went away; at
    error, with the traceback, otherwise."""
    if client_gone(exc):
        logger.debug("%s: the client went away (%s)", what, exc)
    else:
        logger.error("%s failed", what, exc_info=exc)


class QuietClientErrors:
    """A socketserver mixin, first among the bases: what escapes a handler is logged by `log_failure` on
    `error_log` instead of printed to stderr with its traceback (socketserver's default)."""

    error_log = log

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None:
            log_failure(self.error_log, exc, f"a request from {client_address!r}")


class TlsHttpServer(QuietClientErrors, ThreadingHTTPServer):
    """HTTPS for http.server handlers: each connection gets `io_timeout_s` on every socket operation and its TLS
    handshake in its own thread (never in the accepting one, which a client that stalls mid-handshake would
    hold). `peer_identity(request)` is the verified client certificate's identity, if one was presented."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any, tls: ssl.SSLContext, io_timeout_s: float) -> None:
        super().__init__(address, handler)
        self.tls = tls
        self.io_timeout_s = io_timeout_s

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        sock.settimeout(self.io_timeout_s)
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as exc:        # a client of no certificate we trust, or one gone
            self.error_log.info("TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)

    @staticmethod
    def peer_certificate(request: Any) -> bytes:
        """The DER of the client's verified certificate (b"" when it presented none)."""
        der = request.getpeercert(binary_form=True)
        return bytes(der) if der else b""


_LENGTH = re.compile(r"[0-9]{1,18}")      # a length in bytes (18 digits: far past any body, still an int64)


class BadLength(ValueError):
    """A request's declared body length that cannot be taken, found before a byte of the body is read.
    `chunked`: the body is sent chunked (Transfer-Encoding), which these servers do not take."""

    def __init__(self, message: str, chunked: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.chunked = chunked


def declared_length(headers: Message) -> int | None:
    """A request's Content-Length: None without one; BadLength when the body is chunked, or the header is not
    one decimal number of at most 18 digits (given once, or repeated with the same value)."""
    if headers.get("Transfer-Encoding"):
        raise BadLength("Transfer-Encoding is not taken: send the body with a Content-Length", chunked=True)
    values = headers.get_all("Content-Length") or []
    if not values:
        return None
    if len(set(values)) > 1 or not _LENGTH.fullmatch(values[0].strip()):
        shown = ", ".join(repr(v[:40]) for v in values)
        raise BadLength(f"Content-Length {shown} is not one number of bytes")
    return int(values[0])
