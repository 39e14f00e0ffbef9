"""Disks over NBD with TLS: the storage host exports a disk body to one node, whose certificate alone opens
it; a second writer is refused; a withdrawn export is gone; the node API exports only a disk of a VM
assigned to the caller."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
import subprocess
from pathlib import Path

import grpc
import pytest

from fabric.model import Assignment, DiskRef, PowerState
from fabric.pki import Credential, key_pem, nbd_identity, new_key, node_identity, serial_of, signing_request
from fabric.storage.nbd import NbdError, NbdExports, export_name, withdraw_unassigned
from fabric.store import keys
from fabric.v1 import node_pb2 as pb
from fabric.v1 import node_pb2_grpc as rpc
from tests.conftest import require
from tests.integration.conftest import Api, Pki
from tests.integration.test_node_api import IMAGE


def client_dir(root: Path, cred: Credential) -> Path:
    d = root / f"client-{cred.identity.name.replace(':', '-')}-{serial_of(cred.certificate.encode())[:8]}"
    d.mkdir(exist_ok=True)
    (d / "ca-cert.pem").write_text(cred.ca)
    (d / "client-cert.pem").write_text(cred.certificate)
    (d / "client-key.pem").write_text(cred.key)
    return d


def opens(tls: Path, host: str, port: int, name: str) -> subprocess.CompletedProcess[str]:
    """qemu's NBD client over TLS, as a node's qemu connects."""
    return subprocess.run(["qemu-img", "info", "--object", f"tls-creds-x509,id=tls0,dir={tls},endpoint=client",
                           "--image-opts", f"driver=nbd,host={host},port={port},export={name},tls-creds=tls0"],
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def revoked(pki: Pki) -> Credential:
    """An earlier qemu certificate of a node hb since removed."""
    return pki.ca.credential(nbd_identity("hb"), "")


@pytest.fixture
def exports(tmp_path: Path, pki: Pki, revoked: Credential) -> Iterator[NbdExports]:
    require(shutil.which("qemu-storage-daemon") is not None, "qemu-storage-daemon (Debian qemu-utils)")
    e = NbdExports(tmp_path / "nbd", "127.0.0.1", pki.controller,
                   lambda: pki.ca.revocation_list([serial_of(revoked.certificate.encode())]))
    yield e
    e.keep_only(dict)


def body(tmp_path: Path, name: str = "disk.qcow2") -> Path:
    p = tmp_path / name
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(p), "16M"], check=True)
    return p


def test_an_export_opens_with_its_nodes_nbd_certificate_alone(exports: NbdExports, tmp_path: Path, pki: Pki,
                                                              revoked: Credential) -> None:
    disk = body(tmp_path)
    e = exports.grant("hb", disk)
    assert exports.grant("hb", disk) == e                      # idempotent
    hb = client_dir(tmp_path, pki.ca.credential(nbd_identity("hb"), ""))
    ok = opens(hb, e.host, e.port, e.name)
    assert ok.returncode == 0 and "virtual size: 16 MiB" in ok.stdout, ok.stderr
    for other in (pki.ca.credential(nbd_identity("hc"), ""),     # another node's qemu
                  pki.ca.credential(node_identity("hb"), ""),    # hb's API certificate: not for disks
                  revoked):                                      # revoked
        assert opens(client_dir(tmp_path, other), e.host, e.port, e.name).returncode != 0, other.identity
    plain = subprocess.run(["qemu-img", "info", f"nbd://{e.host}:{e.port}/{e.name}"], capture_output=True,
                           text=True, timeout=30, check=False)
    assert plain.returncode != 0                              # no TLS: refused

    with pytest.raises(NbdError, match="cannot be opened for node hc"):
        exports.grant("hc", disk)                             # a second writer of the same body
    assert exports.keep_only(lambda: {"hb": set()}) == [("hb", export_name(disk))]
    assert opens(hb, e.host, e.port, e.name).returncode != 0


def test_the_node_api_exports_only_a_disk_of_a_vm_assigned_to_the_caller(api: Api, tmp_path: Path) -> None:
    require(shutil.which("qemu-storage-daemon") is not None, "qemu-storage-daemon (Debian qemu-utils)")
    disk = body(tmp_path, "os.qcow2")
    a = Assignment(vm_id="vm-a", resource_group="RG", name="a", node="node-1", power=PowerState.RUNNING,
                   generation=0, cores=1, memory_mb=64, resource_disk_mb=1, image=IMAGE,
                   os_disk=DiskRef("localpath", "http://blob/os-a.vhd", str(disk)), operation_id="op-a")
    api.store.put(keys.assignment("node-1", "vm-a"), a)
    n1 = rpc.NodeAgentsStub(api.join("node-1").channel())
    n2 = rpc.NodeAgentsStub(api.join("node-2").channel())
    got = n1.OpenDisk(pb.DiskRequest(vm_id="vm-a", uri="http://blob/os-a.vhd"), timeout=20)
    assert (got.host, got.name) == ("127.0.0.1", export_name(disk)) and got.port > 0
    for stub, req, why in ((n2, pb.DiskRequest(vm_id="vm-a", uri="http://blob/os-a.vhd"), "not assigned to node"),
                           (n1, pb.DiskRequest(vm_id="vm-a", uri="http://blob/other.vhd"), "is not a disk of VM")):
        with pytest.raises(grpc.RpcError) as e:
            stub.OpenDisk(req, timeout=20)
        assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED and why in (e.value.details() or "")


def test_a_node_gets_a_certificate_for_its_qemu_that_opens_no_api_and_is_revoked_with_the_node(api: Api) -> None:
    key = new_key()
    issued = rpc.NodeAgentsStub(api.join("node-1").channel()).IssueNbdCertificate(
        pb.CertificateRequest(csr=signing_request(key, nbd_identity("node-1")).decode()), timeout=20)
    qemu = Credential(controller=api.address, ca=issued.ca, certificate=issued.certificate, key=key_pem(key).decode())
    assert qemu.identity == nbd_identity("node-1")
    with pytest.raises(grpc.RpcError) as e:
        rpc.NodeAgentsStub(qemu.channel()).GetFabric(pb.NodeEmpty(), timeout=20)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED
    other = signing_request(new_key(), nbd_identity("node-2")).decode()
    with pytest.raises(grpc.RpcError) as e:
        rpc.NodeAgentsStub(api.join("node-1").channel()).IssueNbdCertificate(pb.CertificateRequest(csr=other),
                                                                             timeout=20)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "not nbd:node-1" in (e.value.details() or "")
    api.enrollment.remove("node-1")
    revoked = {k.rsplit("/", 1)[1] for k in api.store.key_list(keys.REVOKED)}
    assert serial_of(issued.certificate.encode()) in revoked


def test_an_export_is_withdrawn_once_no_assignment_names_it_and_never_on_a_stale_view(
        exports: NbdExports, tmp_path: Path, api: Api) -> None:
    disk = body(tmp_path, "os.qcow2")
    api.join("hb")                                              # enrolled
    a = Assignment(vm_id="vm-a", resource_group="RG", name="a", node="hb", power=PowerState.RUNNING,
                   generation=0, cores=1, memory_mb=64, resource_disk_mb=1, image=IMAGE,
                   os_disk=DiskRef("localpath", "http://blob/os-a.vhd", str(disk)), operation_id="op-a")
    api.store.put(keys.assignment("hb", "vm-a"), a)
    exports.grant("hb", disk)
    assert withdraw_unassigned(api.store, exports) == []
    # what a view not yet told of the assignment would say: the store, read again, keeps the export
    assert exports.keep_only(dict, lambda: {"hb": {export_name(disk)}}) == []
    api.store.delete(keys.assignment("hb", "vm-a"))
    assert withdraw_unassigned(api.store, exports) == [("hb", export_name(disk))]
