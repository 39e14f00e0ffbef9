"""Joining a cluster with a one-time token, and removing a node (its certificate revoked): through the
controller's real join endpoint (HTTPS), the admin API and the CLI."""
from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys

import grpc
import pytest

from fabric.join import JoinError, JoinToken, join
from fabric.model import JoinTokenRecord, NodeRecord
from fabric.pki import Authority, Credential, node_identity, new_key, signing_request
from fabric.store import keys
from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import node_pb2 as pb
from fabric.v1 import node_pb2_grpc as rpc
from tests.integration.conftest import Api


def token(api: Api) -> JoinToken:
    return api.enrollment.create_token(600, "test")[0]


def enrolled(api: Api) -> list[str]:
    return api.store.key_list(keys.ENROLLMENTS)


def refused(api: Api, tok: JoinToken, node: str = "node-9") -> str:
    """The join's error, with nothing enrolled by it."""
    before = enrolled(api)
    with pytest.raises(JoinError) as e:
        join(api.join_address, tok, node)
    assert enrolled(api) == before
    return str(e.value)


def test_a_node_joins_once_with_a_token_and_its_credential_works(api: Api) -> None:
    tok = token(api)
    cred = join(api.join_address, tok, "node-7")
    assert cred.identity == node_identity("node-7") and cred.controller == api.address
    assert cred.ca == api.pki.ca.cert_pem.decode()
    lease = rpc.NodeAgentsStub(cred.channel()).Register(pb.RegisterNodeRequest(record=NodeRecord(
        name="node-7", fault_domain=0, hypervisor="qemu", cores=1, memory_mb=64, local_disk_mb=1).to_json().encode()),
        timeout=10)
    assert lease.ttl_s > 0
    stored = api.store.get(keys.join_token(tok.id), JoinTokenRecord)
    assert stored is not None and stored.value.used_by == "node-7" and tok.secret not in stored.value.to_json()
    assert "was already used, by node node-7" in refused(api, tok, "node-8")


def test_forged_expired_and_unknown_tokens_are_refused_and_write_nothing(api: Api) -> None:
    tok = token(api)
    assert "the secret does not match" in refused(api, JoinToken(tok.id, "x" * 16, tok.ca_hash))
    assert "is not a join token of this cluster" in refused(api, JoinToken("zzzzzz", tok.secret, tok.ca_hash))
    stored = api.store.get(keys.join_token(tok.id), JoinTokenRecord)
    assert stored is not None
    api.store.put(stored.key, stored.value.replace(expires="2020-01-01T00:00:00Z"))
    assert "expired at 2020-01-01T00:00:00Z" in refused(api, tok)
    with pytest.raises(JoinError, match="expected ID.SECRET.CAHASH"):
        JoinToken.parse("abc.def")


def test_a_controller_of_another_ca_is_refused_before_the_secret_is_sent(api: Api) -> None:
    tok = token(api)
    elsewhere = JoinToken(tok.id, tok.secret, Authority.create("elsewhere").fingerprint.removeprefix("sha256:"))
    message = refused(api, elsewhere)
    assert f"presents cluster CA {api.pki.ca.fingerprint}, but the token names sha256:{elsewhere.ca_hash}" in message
    stored = api.store.get(keys.join_token(tok.id), JoinTokenRecord)
    assert stored is not None and stored.value.used_by == ""          # not spent: the secret never left


def test_an_enrolled_name_cannot_join_again_and_the_token_stays_unused(api: Api) -> None:
    join(api.join_address, token(api), "node-5")
    tok = token(api)
    assert "Node node-5 is already enrolled" in refused(api, tok, "node-5")
    stored = api.store.get(keys.join_token(tok.id), JoinTokenRecord)
    assert stored is not None and stored.value.used_by == ""


def post_join(api: Api, body: dict[str, str]) -> tuple[int, str]:
    host, port = api.join_address.rsplit(":", 1)
    conn = http.client.HTTPSConnection(host, int(port), timeout=10,
                                       context=ssl.create_default_context(cadata=api.pki.ca.cert_pem.decode()))
    conn.request("POST", "/v1/join", body=json.dumps(body))
    resp = conn.getresponse()
    return resp.status, resp.read().decode()


def test_a_request_for_another_name_or_a_bad_name_is_refused_naming_the_field(api: Api) -> None:
    tok = token(api)
    other = signing_request(new_key(), node_identity("node-other")).decode()
    status, body = post_join(api, {"token": tok.credential, "node": "node-1", "csr": other})
    assert status == 400 and "asks for node:node-other, not node:node-1" in body and '"target": "csr"' in body
    status, body = post_join(api, {"token": tok.credential, "node": "Node_1", "csr": other})
    assert status == 400 and "Invalid value for 'node'" in body
    status, body = post_join(api, {"token": tok.credential, "node": "node-1"})
    assert status == 400 and "token, node and csr" in body
    assert enrolled(api) == []


def fabric(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fabric.cli.main", "--controller", api.address, *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_removing_a_node_revokes_its_certificate_and_ends_its_stream(api: Api) -> None:
    made = fabric(api, "node", "join-token", "create", "--ttl", "10m")
    assert made.returncode == 0, made.stderr
    command = made.stdout.splitlines()[-1].split()
    assert command[:3] == ["sudo", "fabric-node-agent", "join"] and command[3] == api.join_address
    cred = join(command[3], JoinToken.parse(command[-1]), "node-3")
    node = rpc.NodeAgentsStub(cred.channel())
    stream = node.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=30)
    next(stream)
    listed = fabric(api, "node", "list", "-o", "json")
    assert [(n["name"], n["state"]) for n in json.loads(listed.stdout)] == [("node-3", "NotReady")]

    removed = fabric(api, "node", "remove", "node-3")
    assert removed.returncode == 0 and "node node-3 removed: certificate" in removed.stdout, removed.stderr
    with pytest.raises(grpc.RpcError) as e:
        next(stream)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        node.GetFabric(pb.NodeEmpty(), timeout=10)
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and "not enrolled" in (e.value.details() or "")
    again = fabric(api, "node", "remove", "node-3")
    assert again.returncode == 1 and "Node node-3 is not enrolled" in again.stderr
    join(api.join_address, token(api), "node-3")          # the name is free again, with a new certificate
    with pytest.raises(grpc.RpcError):
        node.GetFabric(pb.NodeEmpty(), timeout=10)        # the old one stays refused


def test_join_tokens_need_a_sane_lifetime(api: Api) -> None:
    with pytest.raises(grpc.RpcError) as e:
        api.nodes.CreateJoinToken(fpb.CreateJoinTokenRequest(ttl_s=10), timeout=10)
    assert "Invalid value for 'ttl'" in (e.value.details() or "")
    listed = api.nodes.ListJoinTokens(fpb.ListJoinTokensRequest(), timeout=10)
    assert list(listed.value) == []


def get_gallery(api: Api, path: str, cred: Credential | None) -> int:
    host, port = api.join_address.rsplit(":", 1)
    ctx = cred.ssl_context(server=False) if cred else ssl.create_default_context(cadata=api.pki.ca.cert_pem.decode())
    conn = http.client.HTTPSConnection(host, int(port), timeout=10, context=ctx)
    conn.request("GET", path)
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_the_gallery_files_are_for_enrolled_nodes_and_only_the_published_ones(api: Api) -> None:
    kernel = "/v1/gallery/fabriclab/busybox/lab/1.0.0/vmlinuz"
    assert get_gallery(api, kernel, None) == 403
    assert get_gallery(api, kernel, api.pki.admin) == 403
    node = api.join("node-1")
    assert get_gallery(api, kernel, node) == 200
    for bad in ("/v1/gallery/fabriclab/busybox/lab/1.0.0/image.json", "/v1/gallery/fabriclab/busybox/lab/1.0.0/..",
                "/v1/gallery/fabriclab/busybox/lab/1.0.0/../../../../etc/passwd"):
        assert get_gallery(api, bad, node) == 404
    api.enrollment.remove("node-1")
    assert get_gallery(api, kernel, node) == 403
