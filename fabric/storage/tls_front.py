"""The blob data plane over TLS, for what reaches it from other hosts (nodes relaying their guests' requests,
users' clients): a TLS front that hands each connection's bytes to the data plane's own listener on
loopback, where its limits (slow clients, head sizes, connection caps) apply as to any client.

TLS with the controller's certificate; a client certificate of the cluster CA is asked for and checked
when given, not required (the data plane authorises each request itself, by SharedKey or SAS). One asyncio
loop in a thread of its own: a connection costs a socket pair, never a thread. At most MAX_CONNECTIONS at
once (more wait in the backlog); a handshake not done in HANDSHAKE_TIMEOUT_S is dropped.
"""
from __future__ import annotations

import asyncio
import logging
import threading

from fabric.pki import Credential

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
HANDSHAKE_TIMEOUT_S = 10.0
CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError, RuntimeError):
            pass


class TlsFront:
    def __init__(self, listen: str, backend: str, credential: Credential) -> None:
        self.host, port = listen.rsplit(":", 1)
        self.port = int(port)
        self.backend_host, backend_port = backend.rsplit(":", 1)
        self.backend_port = int(backend_port)
        self.tls = credential.ssl_context(server=True)
        self.loop = asyncio.new_event_loop()
        self.slots = asyncio.Semaphore(MAX_CONNECTIONS)
        self.server: asyncio.AbstractServer | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, name="blob-tls-front", daemon=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self.slots:
            try:
                b_reader, b_writer = await asyncio.open_connection(self.backend_host, self.backend_port)
            except OSError as exc:
                log.warning("blob TLS front: the data plane at %s:%d: %s", self.backend_host, self.backend_port, exc)
                writer.close()
                return
            await asyncio.gather(_pipe(reader, b_writer), _pipe(b_reader, writer))

    def start(self) -> TlsFront:
        async def listen() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._serve, self.host.strip("[]"), self.port, ssl=self.tls,
                                              ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(listen(), self.loop).result(10)
        return self

    def shutdown(self) -> None:
        """Stop listening and stop the loop. The server is closed in the loop's own thread: asyncio is not
        thread-safe, and closing it from here raced a connection ending there (a TypeError in asyncio)."""
        async def close() -> None:
            if self.server is not None:
                self.server.close()
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
