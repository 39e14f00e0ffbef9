"""A client that went away is told from a real failure (what servers log at debug, not as an error)."""
from __future__ import annotations

import errno
import logging
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fabric.netio import QuietClientErrors, client_gone

CHUNK_BYTES = 1024 * 1024
BODY_CHUNKS = 1024                  # 1 GiB declared: far more than socket buffers hold, so a reset client is seen


@pytest.mark.parametrize("exc", [BrokenPipeError(errno.EPIPE, "Broken pipe"),
                                 ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
                                 ConnectionAbortedError(errno.ECONNABORTED, "Software caused connection abort"),
                                 TimeoutError("timed out"), socket.timeout("timed out"),
                                 OSError(errno.EPIPE, "Broken pipe"), OSError(errno.ESHUTDOWN, "shut down")])
def test_a_client_gone_away(exc: BaseException) -> None:
    assert client_gone(exc)


@pytest.mark.parametrize("exc", [ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
                                 OSError(errno.ENOSPC, "No space left on device"),
                                 FileNotFoundError(errno.ENOENT, "gone"), ValueError("bad"), KeyError("x")])
def test_a_real_failure(exc: BaseException) -> None:
    assert not client_gone(exc)


def test_a_dropped_client_seen_by_a_real_socket() -> None:
    a, b = socket.socketpair()
    b.close()
    with pytest.raises(OSError) as e:
        for _ in range(100):
            a.sendall(b"x" * 65536)
    a.close()
    assert client_gone(e.value)


class _Big(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/fail":
            raise ValueError("a real failure")
        self.send_response(200)
        self.send_header("Content-Length", str(CHUNK_BYTES * BODY_CHUNKS))
        self.end_headers()
        chunk = b"x" * CHUNK_BYTES
        for _ in range(BODY_CHUNKS):
            self.wfile.write(chunk)

    def log_message(self, *_: object) -> None:
        pass


class _Server(QuietClientErrors, ThreadingHTTPServer):
    pass


def _get_and_drop(port: int, path: str) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    s.recv(4096)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))   # a reset, as a killed client
    s.close()


def test_a_server_logs_dropped_clients_at_debug_and_failures_as_errors(caplog: pytest.LogCaptureFixture,
                                                                        capfd: pytest.CaptureFixture[str]) -> None:
    srv = _Server(("127.0.0.1", 0), _Big)
    srv.block_on_close = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    with caplog.at_level(logging.DEBUG, logger="fabric.netio"):
        for _ in range(5):
            _get_and_drop(port, "/big")
        try:
            _get_and_drop(port, "/fail")
        except OSError:
            pass
        srv.shutdown()
        srv.server_close()          # joins the request threads
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    gone = [r for r in caplog.records if r.levelno == logging.DEBUG and "went away" in r.getMessage()]
    assert len(gone) == 5
    assert [r.exc_info[0] for r in errors if r.exc_info] == [ValueError]
    assert capfd.readouterr().err == ""          # nothing printed past logging
