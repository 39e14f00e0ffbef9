"""A node's diagnostics (serial output) are served over TLS with the node's certificate, to the cluster's
controllers only."""
from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator

import pytest

from fabric.pki import ADMINS, CONTROLLERS, Authority, Credential, Identity, node_identity
from nodeagent import diagnostics
from nodeagent.agent import NodeAgent

CA = Authority.create("t")
NODE = CA.credential(node_identity("node-1"), "", server=True)      # as a join issues it


@pytest.fixture
def port() -> Iterator[int]:
    def no_agent() -> NodeAgent | None:
        return None
    srv = diagnostics.serve("127.0.0.1:0", no_agent, NODE)
    yield srv.server_address[1]
    srv.shutdown()


def status(port: int, cred: Credential | None) -> int:
    ctx = cred.ssl_context(server=False) if cred else ssl.create_default_context(cadata=CA.cert_pem.decode())
    ctx.check_hostname = False              # the node is known by the name in its certificate, not a host name
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    conn.request("GET", "/serial/00000000-0000-0000-0000-000000000000")
    return conn.getresponse().status


def test_only_a_controller_reads_serial_output(port: int) -> None:
    assert status(port, CA.credential(Identity("controller:c", CONTROLLERS), "")) == 404    # allowed: no such VM
    assert status(port, CA.credential(Identity("admin", ADMINS), "")) == 403
    assert status(port, CA.credential(node_identity("node-2"), "")) == 403
    assert status(port, None) == 403


def test_plain_http_gets_nothing(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        conn.request("GET", "/serial/x")
        conn.getresponse()
