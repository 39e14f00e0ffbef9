"""A bounded HTTP/1.1 server for http.server handlers: a slow or idle client costs a socket, never a thread.

    listener ─▶ event loop (one thread) reads each request head: the whole head within HEADER_TIMEOUT_S
                (IDLE_TIMEOUT_S for the next request on a kept-alive connection), at most MAX_HEAD_BYTES
             ─▶ a pool of WORKERS threads runs the handler for that one request (its body, its answer) with
                IO_TIMEOUT_S on every socket operation
             ─▶ back to the loop for the connection's next request, or closed

At most MAX_CONNECTIONS connections are open. When a new one arrives at the cap, the connection that has
waited longest for its request head (a slow or idle client) is answered `503 ServerBusy` and closed, so a
client that talks promptly is never kept out by ones that do not; when every open connection is being
served, new ones wait in the listen backlog (LISTEN_BACKLOG) until one ends. A head that does not arrive in
time is answered 408, an oversized one 431; both close the connection.

Cleanup: `shutdown` closes the listener and every connection the loop holds, and stops the pool (a request
being served ends with its socket closed under it).
"""
from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import socket
import socketserver
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler
from typing import Any, cast

from fabric.netio import log_failure

log = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0          # from accepting a connection to the end of its first request head
IDLE_TIMEOUT_S = 60.0            # a kept-alive connection, to the end of its next request head
IO_TIMEOUT_S = 30.0              # each socket read or write while a worker serves a request
MAX_HEAD_BYTES = 64 * 1024       # request line and headers
MAX_CONNECTIONS = 512            # open at once (below a process's default 1024 descriptors)
WORKERS = 32                     # requests served at once
LISTEN_BACKLOG = 1024            # connections the kernel queues beyond MAX_CONNECTIONS (capped by somaxconn)
RECV_BYTES = 64 * 1024           # one read of a socket
SHUTDOWN_WAIT_S = 5.0            # for the loop's thread to end
ACCEPT_RETRY_S = 0.1             # after accept fails (e.g. the process is out of descriptors)


@dataclasses.dataclass(frozen=True)
class Limits:
    header_timeout_s: float = HEADER_TIMEOUT_S
    idle_timeout_s: float = IDLE_TIMEOUT_S
    io_timeout_s: float = IO_TIMEOUT_S
    max_head_bytes: int = MAX_HEAD_BYTES
    max_connections: int = MAX_CONNECTIONS
    workers: int = WORKERS
    listen_backlog: int = LISTEN_BACKLOG


def _answer(status: str, code: str) -> bytes:
    body = f"{status}: {code}\n".encode()
    return (f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\nx-ms-error-code: {code}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


BUSY = _answer("503 Service Unavailable", "ServerBusy")
TIMED_OUT = _answer("408 Request Timeout", "RequestTimeout")
HEAD_TOO_LARGE = _answer("431 Request Header Fields Too Large", "RequestHeaderFieldsTooLarge")


def _head_end(buf: bytearray, start: int) -> int:
    """Index just past the blank line ending a request head (CRLF or bare LF lines), or -1."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = buf.find(sep, max(0, start - len(sep) + 1))
        if i >= 0:
            return i + len(sep)
    return -1


def _say(sock: socket.socket, answer: bytes) -> None:
    """Best effort on a non-blocking socket about to be closed."""
    try:
        sock.send(answer)
    except OSError:
        pass


class _Input(io.BufferedIOBase):
    """A request's input: the bytes the loop read already, then the socket. `leftover` is what was read past the
    request (a pipelined next one), for the loop to continue with. `read` returns what is at hand (at least one
    byte, b"" at the end), like `read1`."""

    def __init__(self, sock: socket.socket, data: bytes) -> None:
        super().__init__()
        self._sock = sock
        self._buf = bytearray(data)

    def readable(self) -> bool:
        return True

    def _fill(self) -> bool:
        data = self._sock.recv(RECV_BYTES)
        self._buf += data
        return bool(data)

    def read(self, size: int | None = -1, /) -> bytes:
        if size == 0:
            return b""
        if not self._buf:
            self._fill()
        n = len(self._buf) if size is None or size < 0 else min(size, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(size)

    def readline(self, size: int | None = -1, /) -> bytes:
        limit = -1 if size is None else size
        while b"\n" not in self._buf and (limit < 0 or len(self._buf) < limit) and self._fill():
            pass
        end = self._buf.find(b"\n") + 1 or len(self._buf)
        return self.read(end if limit < 0 else min(end, limit))

    def leftover(self) -> bytes:
        return bytes(self._buf)


class _OneRequest(BaseHTTPRequestHandler):
    """Runs one request of a connection whose head `_Input` holds; the server keeps the socket."""

    def __init__(self, sock: socket.socket, addr: Any, server: BoundedHTTPServer, head: bytes) -> None:
        self.input = _Input(sock, head)
        super().__init__(sock, addr, cast(socketserver.BaseServer, server))

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = self.input
        self.wfile = self.connection.makefile("wb")

    def handle(self) -> None:
        self.close_connection = True
        self.handle_one_request()

    def finish(self) -> None:
        try:
            self.wfile.close()           # flushes
        except OSError:
            self.close_connection = True


class BoundedHTTPServer:
    """Serves `handler` (a BaseHTTPRequestHandler class) on `address` once `start` is called."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 limits: Limits = Limits()) -> None:
        self.limits = limits
        self.handler = cast(type[_OneRequest], type(f"Bounded{handler.__name__}", (_OneRequest, handler), {}))
        self._listener = socket.create_server(address, backlog=limits.listen_backlog)
        self._listener.setblocking(False)
        self.server_address: tuple[str, int] = self._listener.getsockname()[:2]
        self._pool = ThreadPoolExecutor(limits.workers, thread_name_prefix="blob-worker")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="blob-dataplane")
        self._stopping = asyncio.Event()
        self._room = asyncio.Event()      # set when a connection ends or starts waiting for a head (evictable)
        self._open: dict[socket.socket, asyncio.Task[None]] = {}
        self._waiting: dict[socket.socket, asyncio.Task[None]] = {}   # waiting for a head, oldest first

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(SHUTDOWN_WAIT_S)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._listener.close()

    # ----- the loop -----

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        accepting = asyncio.ensure_future(self._accept())
        await self._stopping.wait()
        self._listener.close()
        tasks = [accepting, *self._open.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if len(self._open) >= self.limits.max_connections and not self._waiting:
                await asyncio.sleep(0)         # connections just accepted start waiting for their heads
                if not self._waiting:          # every connection is being served: the backlog holds the rest
                    self._room.clear()
                    await self._room.wait()
                continue
            try:
                sock, addr = await loop.sock_accept(self._listener)
            except OSError as e:
                log.warning("accept failed: %s", e)
                await asyncio.sleep(ACCEPT_RETRY_S)
                continue
            sock.setblocking(False)
            if len(self._open) >= self.limits.max_connections:
                if not self._waiting:
                    _say(sock, BUSY)
                    sock.close()
                    continue
                oldest, task = next(iter(self._waiting.items()))
                del self._waiting[oldest]
                _say(oldest, BUSY)
                task.cancel()                  # its connection closes as the task ends
            self._open[sock] = loop.create_task(self._connection(sock, addr))

    async def _connection(self, sock: socket.socket, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        data, timeout = b"", self.limits.header_timeout_s
        try:
            while True:
                head = await self._head(sock, data, timeout)
                if head is None:
                    return
                keep, data = await loop.run_in_executor(self._pool, self._one_request, sock, addr, head)
                if not keep:
                    return
                timeout = self.limits.idle_timeout_s
        finally:
            self._waiting.pop(sock, None)
            self._open.pop(sock, None)
            sock.close()
            self._room.set()

    async def _head(self, sock: socket.socket, data: bytes, timeout: float) -> bytes | None:
        """The connection's next request head (with whatever followed it), None when the connection ends."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._waiting[sock] = task
        self._room.set()
        buf = bytearray(data)
        try:
            async with asyncio.timeout(timeout):
                scanned = 0
                while _head_end(buf, scanned) < 0:
                    if len(buf) > self.limits.max_head_bytes:
                        _say(sock, HEAD_TOO_LARGE)
                        return None
                    scanned = len(buf)
                    chunk = await loop.sock_recv(sock, RECV_BYTES)
                    if not chunk:
                        return None
                    buf += chunk
        except TimeoutError:
            if buf:                                   # a head begun and not finished; an idle one just closes
                _say(sock, TIMED_OUT)
            return None
        except OSError:
            return None
        finally:
            self._waiting.pop(sock, None)
        return bytes(buf)

    # ----- a worker -----

    def _one_request(self, sock: socket.socket, addr: Any, head: bytes) -> tuple[bool, bytes]:
        """Serve one request; (keep the connection, bytes already read of the next request)."""
        sock.settimeout(self.limits.io_timeout_s)
        try:
            h = self.handler(sock, addr, self, head)
        except Exception as exc:  # noqa: BLE001 - a handler's failure ends its connection, never the server
            log_failure(log, exc, f"a request from {addr!r}")
            return False, b""
        finally:
            sock.setblocking(False)
        return (False, b"") if h.close_connection else (True, h.input.leftover())
