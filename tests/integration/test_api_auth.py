"""Every call to the controller is mutual TLS with the cluster CA, and its role decides what it may call: a
client without a certificate, or with one from another CA, is refused before anything it sends is read; a
node's certificate may not use the resource API; the CLI says which of these happened."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from fabric.pki import ADMINS, Authority, Credential, Identity
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc
from tests.integration.conftest import Api

CLI = [sys.executable, "-m", "fabric.cli.main"]


def create_group(channel: grpc.Channel) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as e:
        rpc.ResourceGroupsStub(channel).Create(pb.CreateResourceGroupRequest(name="Intruder", location="local"),
                                               timeout=10)
    return e.value


def cli(api: Api, credential: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FABRIC_CONTROLLER": api.address, "FABRIC_CREDENTIALS": str(credential)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60)


def test_a_client_without_a_certificate_is_refused_and_nothing_changes(api: Api) -> None:
    before = api.store.key_list("/fabriclab/")
    anonymous = grpc.secure_channel(api.address, grpc.ssl_channel_credentials(api.pki.ca.cert_pem))
    assert create_group(anonymous).code() == grpc.StatusCode.UNAVAILABLE      # the TLS handshake is refused
    plain = grpc.insecure_channel(api.address)
    assert create_group(plain).code() == grpc.StatusCode.UNAVAILABLE
    assert api.store.key_list("/fabriclab/") == before


def test_a_certificate_of_another_cluster_is_refused(api: Api) -> None:
    before = api.store.key_list("/fabriclab/")
    other = Authority.create("elsewhere").credential(Identity("admin", ADMINS), api.address)
    foreign = Credential(api.address, api.pki.ca.cert_pem.decode(), other.certificate, other.key)
    assert create_group(foreign.channel(api.address)).code() == grpc.StatusCode.UNAVAILABLE
    assert api.store.key_list("/fabriclab/") == before


def test_a_node_may_not_use_the_resource_api(api: Api) -> None:
    node = api.join("node-1")
    before = api.store.key_list("/fabriclab/")
    err = create_group(node.channel(api.address))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "node:node-1 (nodes) may not call /fabric.v1.ResourceGroups/Create" in (err.details() or "")
    assert api.store.key_list("/fabriclab/") == before


def test_the_cli_without_a_credential_says_where_it_looked(api: Api, tmp_path: Path) -> None:
    r = cli(api, tmp_path / "missing.json", "group", "list")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "Unauthenticated"
    assert str(tmp_path / "missing.json") in err["message"] and "fabric lab up" in err["message"]


def test_the_cli_names_a_refused_certificate_and_an_untrusted_server(api: Api, tmp_path: Path) -> None:
    other = Authority.create("elsewhere").credential(Identity("admin", ADMINS), api.address)
    refused = tmp_path / "refused.json"
    Credential(api.address, api.pki.ca.cert_pem.decode(), other.certificate, other.key).save(refused)
    r = cli(api, refused, "group", "list")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "Unauthenticated" and "refused the certificate" in err["message"]
    untrusting = tmp_path / "untrusting.json"
    other.save(untrusting)                       # trusts only its own CA: the controller is a stranger to it
    r = cli(api, untrusting, "group", "list")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "ControllerNotTrusted"


def test_a_garbled_credential_file_is_named(api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"controller": "x"}')
    r = cli(api, bad, "group", "list")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "Unauthenticated" and str(bad) in err["message"]


def test_the_admin_credential_works_from_the_cli(api: Api) -> None:
    r = cli(api, api.pki.admin_file, "group", "create", "-n", "Mine", "-l", "local")
    assert r.returncode == 0, r.stderr
    assert [g.name for g in rpc.ResourceGroupsStub(api.pki.channel(api.address)).List(
        pb.ListResourceGroupsRequest()).value] == ["Mine"]


def test_a_credential_whose_key_is_not_its_certificates_is_refused(api: Api, tmp_path: Path) -> None:
    one, other = (api.pki.ca.credential(Identity("admin", ADMINS), api.address) for _ in range(2))
    swapped = tmp_path / "swapped.json"
    Credential(api.address, one.ca, one.certificate, other.key).save(swapped)
    r = cli(api, swapped, "group", "list")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "Unauthenticated" and "not the key of its certificate" in err["message"]
