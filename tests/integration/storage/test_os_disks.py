"""OS disks are page blobs of the VM's storage, leased in the VM's name in the VM's own transaction."""
from __future__ import annotations

import json
from typing import Any

import grpc
import pytest

from fabric.model import VmRecord
from fabric.storage.disk_blobs import default_account_name
from fabric.store import keys
from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api, register_node


@pytest.fixture
def placed(api: Api) -> Api:
    api.groups.Create(fpb.CreateResourceGroupRequest(name="BlogRG", location="local"))
    register_node(api.store, "node-1")
    return api


def create(api: Api, name: str = "BlogVM", **kw: Any) -> fpb.VirtualMachine:
    api.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name=name,
                                                   image="fabriclab:busybox:lab:latest", size="Lab_A0", **kw))
    vm: fpb.VirtualMachine = api.vms.Get(fpb.VirtualMachineRef(resource_group="BlogRG", name=name))
    return vm


def test_os_disk_is_a_leased_page_blob_of_the_groups_disk_account(placed: Api) -> None:
    vm = create(placed)
    disk = vm.properties.storage_profile.os_disk
    account = default_account_name(placed.compute.config.subscription, "BlogRG")
    assert account.startswith("blogrgdisks") and len(account) == len("blogrgdisks") + 3
    assert disk.vhd.uri == f"{placed.storage.config.endpoint}/{account}/vhds/{disk.name}.qcow2"
    assert (disk.create_option, disk.caching, disk.delete_option) == ("FromImage", "ReadWrite", "Delete")
    blob = placed.blobs.Get(pb.BlobRef(account_name=account, container="vhds", name=f"{disk.name}.qcow2"))
    assert blob.properties.blob_type == "PageBlob"
    assert (blob.properties.lease.state, blob.properties.lease.duration) == ("leased", "infinite")
    assert blob.metadata["vmId"] == vm.properties.vm_id and blob.metadata["attachedTo"] == vm.id
    # the node is told where the disk is through its storage backend's reference
    rec = placed.store.get(keys.vm("BlogRG", "BlogVM"), VmRecord)
    assert rec is not None and rec.value.os_disk is not None and rec.value.os_disk.ref.backend == "localpath"
    with pytest.raises(grpc.RpcError) as e:
        placed.blobs.Delete(pb.BlobRef(account_name=account, container="vhds", name=f"{disk.name}.qcow2"))
    assert json.loads(dict(e.value.trailing_metadata())["fabric-error"])["code"] == "LeaseIdMissing"


def test_a_named_storage_account_must_exist(placed: Api) -> None:
    with pytest.raises(grpc.RpcError) as e:
        create(placed, storage_account="nosuchaccount")
    assert json.loads(dict(e.value.trailing_metadata())["fabric-error"])["code"] == "StorageAccountNotFound"
    placed.accounts.Create(pb.CreateStorageAccountRequest(resource_group="BlogRG", name="mydisks"))
    vm = create(placed, storage_account="mydisks")
    assert "/mydisks/vhds/" in vm.properties.storage_profile.os_disk.vhd.uri


def test_a_bad_delete_option_is_refused(placed: Api) -> None:
    with pytest.raises(grpc.RpcError) as e:
        create(placed, os_disk_delete_option="Shred")
    body = json.loads(dict(e.value.trailing_metadata())["fabric-error"])
    assert body["target"] == "storageProfile.osDisk.deleteOption"


def test_a_failed_create_leaves_no_disk_body(placed: Api) -> None:
    create(placed)
    folder = next((placed.storage.config.blob_root).glob("*/vhds"))
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(grpc.RpcError):
        create(placed)                      # Conflict: the name exists
    assert sorted(p.name for p in folder.iterdir()) == before
