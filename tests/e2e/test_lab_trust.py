"""The lab's trust: `fabric lab up` made a cluster CA and an admin credential only root can read, the CLI found
that credential by default, the controller's API takes only certificates from that CA, and the lab's nodes
joined as a real cluster's do (one-time tokens through the join endpoint)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from fabric.lab.config import ADMIN_CREDENTIAL
from fabric.pki import ADMINS, CONTROLLERS, Authority, Credential, Identity, fingerprint, serial_of
from fabric.store import Store, StoreUnavailable, keys
from tests.e2e.conftest import LabHandle
from tests.integration.test_file_modes import as_nobody, mode


def test_the_lab_credentials_are_root_only_and_the_cli_uses_the_admins(lab: LabHandle) -> None:
    admin, pki = lab.root / ADMIN_CREDENTIAL, lab.root / "pki"
    assert (mode(admin), mode(pki), mode(pki / "ca.key"), mode(pki / "controller.json")) == (0o600, 0o700, 0o600,
                                                                                          0o600)
    for secret in (admin, pki / "ca.key"):
        assert as_nobody("head", "-c", "1", str(secret)).returncode != 0, f"{secret} is readable by nobody"
    cred = Credential.load(admin)
    assert cred.identity.role == ADMINS and cred.controller == lab.lab.config()["controller"]
    assert Credential.load(pki / "controller.json").identity.role == CONTROLLERS
    assert fingerprint(cred.ca.encode()) == fingerprint((pki / "ca.pem").read_bytes())
    assert json.loads(lab.fabric("group", "list").stdout) is not None       # found without FABRIC_CREDENTIALS


def test_the_lab_nodes_joined_with_tokens_and_each_is_enrolled_with_its_own_certificate(lab: LabHandle) -> None:
    nodes = {n["name"]: n for n in json.loads(lab.fabric("node", "list").stdout)}
    tokens = json.loads(lab.fabric("node", "join-token", "list").stdout)
    for name in lab.lab.config()["nodes"]:
        cred = Credential.load(lab.root / "pki" / f"{name}.json")
        assert nodes[name]["state"] == "Ready"
        assert nodes[name]["certificateSerial"] == serial_of(cred.certificate.encode())
        assert any(t["usedBy"] == name for t in tokens)


def test_the_lab_etcd_speaks_tls_and_opens_to_the_control_planes_certificate_alone(lab: LabHandle) -> None:
    cfg = lab.lab.config()
    assert cfg["etcd"].startswith("https://")
    store = lab.store()
    try:
        assert store.fabric_id() == cfg["fabric_id"]
    finally:
        store.close()
    etcd_ca = (lab.root / "pki" / "etcd" / "ca.pem").read_text()
    node = Credential.load(lab.root / "pki" / "node-1.json")        # a cluster CA certificate, not etcd's
    for cred in (dataclasses.replace(node, ca=etcd_ca),
                 dataclasses.replace(Authority.create("x").credential(Identity("admin", ADMINS), ""), ca=etcd_ca)):
        other = Store(cfg["etcd"], timeout_s=3.0, tls=cred)
        try:
            with pytest.raises(StoreUnavailable):
                other.get_raw(keys.SUBSCRIPTION)
        finally:
            other.close()
    with pytest.raises(StoreUnavailable):
        plain = Store(cfg["etcd"].replace("https://", "http://"), timeout_s=3.0)
        try:
            plain.get_raw(keys.SUBSCRIPTION)
        finally:
            plain.close()


def test_lab_up_again_keeps_the_ca_and_every_credential(lab: LabHandle) -> None:
    kept = [lab.root / ADMIN_CREDENTIAL, lab.root / "pki" / "ca.pem",
            *(lab.root / "pki" / f"{n}.json" for n in lab.lab.config()["nodes"])]
    before = [p.read_text() for p in kept]
    lab.up()
    assert [p.read_text() for p in kept] == before
