"""A guest's blob requests through the node agent's relay to the real data plane: bodies are streamed with a
bounded buffer and refused on their headers, never read whole into memory first."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from nodeagent.netsvc import relay
from tests.integration.conftest import Api
from tests.integration.storage.test_dataplane import sas_url

MiB = 1024 * 1024


@pytest.fixture
def relay_socket(acct: Api, tmp_path: Path) -> Iterator[Path]:
    path = Path("/tmp") / f"fabriclab-relay-{uuid.uuid4().hex[:8]}.sock"     # short: a UNIX socket path
    srv = relay.serve_unix(path, lambda: acct.storage.config.endpoint)
    yield path
    srv.shutdown()
    path.unlink(missing_ok=True)


def rss_kib() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def put(sock_path: Path, url: str, length: int, send: int, declared: str | None = None) -> str:
    """PUT `send` bytes of body (declaring `length`, or the raw `declared` header) through the relay the way the
    metadata process does; the answer's status line ("" when there is none)."""
    u = urlsplit(url)
    path = u.path.removeprefix("/blogacct")          # host style, as a guest asks: {account}.blob.{domain}/...
    head = (f"PUT {path}?{u.query} HTTP/1.1\r\nHost: blogacct.blob.fabriclab.test\r\nx-ms-blob-type: BlockBlob\r\n"
            f"Content-Length: {declared if declared is not None else length}\r\n\r\n").encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(str(sock_path))
    got: list[bytes] = []

    def read() -> None:
        try:
            got.append(s.recv(4096))
        except OSError:
            pass
    t = threading.Thread(target=read)
    t.start()
    s.sendall(head)
    chunk = b"x" * MiB
    try:
        left = send
        while left > 0:
            s.sendall(chunk[:min(left, MiB)])
            left -= min(left, MiB)
        if send < length:
            s.shutdown(socket.SHUT_WR)             # a client that stops short and goes away
    except OSError:
        pass
    t.join(30)
    s.close()
    return got[0].split(b"\r\n")[0].decode() if got else ""


def test_an_unauthorised_upload_is_refused_on_its_headers(acct: Api, relay_socket: Path) -> None:
    before = rss_kib()
    bad = sas_url(acct, blob="big.bin", perms="c").replace("sig=", "sig=AAAA")
    assert put(relay_socket, bad, 60 * MiB, 60 * MiB).startswith("HTTP/1.0 403")
    assert rss_kib() - before < 32 * 1024


def test_an_authorised_upload_streams_through_with_bounded_memory(acct: Api, relay_socket: Path) -> None:
    size = 48 * MiB
    before = rss_kib()
    assert put(relay_socket, sas_url(acct, blob="big.bin", perms="c"), size, size).startswith("HTTP/1.0 201")
    assert rss_kib() - before < 24 * 1024, "the body was held in memory"
    rec = acct.storage.blob("blogacct", "scripts", "big.bin").value
    assert rec.size == size
    with open(acct.storage.body_path(rec), "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(b"x" * size).digest()


def test_bad_lengths_are_refused_by_the_relay_itself(acct: Api, relay_socket: Path) -> None:
    url = sas_url(acct, blob="x.bin", perms="c")
    assert put(relay_socket, url, 0, 1024, declared="-1").startswith("HTTP/1.0 400")
    assert put(relay_socket, url, 0, 0, declared="abc").startswith("HTTP/1.0 400")
    assert put(relay_socket, url, 0, 0, declared=str(1 << 40)).startswith("HTTP/1.0 413")


def test_a_body_shorter_than_declared_stores_nothing(acct: Api, relay_socket: Path) -> None:
    folder = acct.storage.config.blob_root / "blogacct" / "scripts"
    before = set(folder.iterdir())
    answer = put(relay_socket, sas_url(acct, blob="short.bin", perms="c"), 8 * MiB, 10)
    assert not answer.startswith("HTTP/1.0 2"), answer
    deadline = time.monotonic() + 10         # the data plane may still be ending the request: until it has
    while time.monotonic() < deadline and set(folder.iterdir()) != before:
        time.sleep(0.1)
    assert set(folder.iterdir()) == before                     # no body, no temporary file
    assert "short.bin" not in [b.name for b in acct.storage.list_blobs("blogacct", "scripts", "")[0]]
