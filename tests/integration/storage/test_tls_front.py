"""The blob data plane over TLS (what nodes and clients on other hosts use): requests reach the data plane
whole, the controller's certificate checked by the client; a client that does not speak TLS gets nothing."""
from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator

import pytest

from fabric.hostinfo import free_port
from fabric.pki import node_identity
from fabric.storage.tls_front import TlsFront
from tests.integration.conftest import Api
from tests.integration.storage.conftest import upload
from tests.integration.storage.test_dataplane_server import path


@pytest.fixture
def front(acct: Api) -> Iterator[int]:
    port = free_port()
    f = TlsFront(f"127.0.0.1:{port}", acct.storage.config.endpoint.removeprefix("http://"), acct.pki.controller)
    f.start()
    yield port
    f.shutdown()


def test_a_node_reads_a_blob_through_the_tls_front(acct: Api, front: int) -> None:
    upload(acct, "scripts", "simple.sh", b"echo over tls\n")
    node = acct.pki.ca.credential(node_identity("node-1"), "")
    conn = http.client.HTTPSConnection("127.0.0.1", front, context=node.ssl_context(server=False), timeout=10)
    conn.request("GET", path(acct), headers={"x-ms-version": "2021-08-06"})
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"echo over tls\n")
    conn.close()


def test_no_tls_no_answer(front: int) -> None:
    with socket.create_connection(("127.0.0.1", front), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not s.recv(100).startswith(b"HTTP/")
    with pytest.raises(ssl.SSLCertVerificationError):           # a client that trusts another CA
        http.client.HTTPSConnection("127.0.0.1", front, context=ssl.create_default_context(),
                                    timeout=10).request("GET", "/")
