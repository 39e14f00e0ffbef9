"""Bad input gets an ARM error naming the field, with the right gRPC code, and writes nothing."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node

IMAGE = "fabriclab:busybox:lab:latest"


def arm_error(call: Callable[[], object]) -> tuple[grpc.StatusCode, dict[str, Any]]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    meta = dict(e.value.trailing_metadata())
    return e.value.code(), json.loads(meta["fabric-error"])


def snapshot(api: Api) -> list[str]:
    return sorted(k for k in _all_keys(api))


def _all_keys(api: Api) -> list[str]:
    return api.store.key_list("/fabriclab/")


@pytest.fixture
def ready(api: Api) -> Api:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    return api


def create(api: Api, **kw: str) -> pb.Operation:
    req: dict[str, Any] = dict(resource_group="RG", name="vm1", image=IMAGE, size="Lab_A0")
    req.update(kw)
    op: pb.Operation = api.vms.Create(pb.CreateVirtualMachineRequest(**req))
    return op


@pytest.mark.parametrize("kw,code,status,target", [
    ({"size": "Standard_Nope"}, "SkuNotAvailable", grpc.StatusCode.INVALID_ARGUMENT, "hardwareProfile.vmSize"),
    ({"image": "fabriclab:busybox:lab:9.9.9"}, "ImageVersionNotFound", grpc.StatusCode.NOT_FOUND,
     "storageProfile.imageReference.version"),
    ({"image": "acme:os:x:latest"}, "ImageNotFound", grpc.StatusCode.NOT_FOUND, "storageProfile.imageReference"),
    ({"image": "not-an-urn"}, "InvalidParameter", grpc.StatusCode.INVALID_ARGUMENT, "storageProfile.imageReference"),
    ({"name": "bad_name!"}, "InvalidParameter", grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"resource_group": "NoSuchRG"}, "ResourceGroupNotFound", grpc.StatusCode.NOT_FOUND, "resourceGroupName"),
    ({"location": "westus"}, "LocationNotAvailable", grpc.StatusCode.INVALID_ARGUMENT, "location"),
])
def test_bad_create_is_refused_and_changes_nothing(ready: Api, kw: dict[str, str], code: str, status: grpc.StatusCode,
                                                    target: str) -> None:
    before = snapshot(ready)
    got_status, body = arm_error(lambda: create(ready, **kw))
    assert (got_status, body["code"], body["target"]) == (status, code, target)
    assert body["message"]
    assert snapshot(ready) == before


def test_duplicate_name_is_a_conflict_case_insensitively(ready: Api) -> None:
    create(ready)
    before = snapshot(ready)
    status, body = arm_error(lambda: create(ready, name="VM1"))
    assert (status, body["code"]) == (grpc.StatusCode.ALREADY_EXISTS, "Conflict")
    assert snapshot(ready) == before


def test_allocation_failed_explains_every_node(ready: Api) -> None:
    register_node(ready.store, "node-2", memory_mb=1024)
    before = snapshot(ready)
    status, body = arm_error(lambda: create(ready, size="Standard_DS2_v2"))
    assert (status, body["code"]) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "AllocationFailed")
    assert "node-1: RamFilter" in body["message"] and "node-2: RamFilter" in body["message"]
    assert snapshot(ready) == before


def test_create_writes_desired_state_and_an_explained_placement(ready: Api) -> None:
    register_node(ready.store, "node-2", fd=1)
    op = create(ready)
    assert op.status == "InProgress" and op.target.endswith("/virtualMachines/vm1")
    vm = ready.vms.Get(pb.VirtualMachineRef(resource_group="rg", name="VM1", instance_view=True))
    assert vm.properties.provisioning_state == "Creating"
    assert vm.properties.storage_profile.image_reference.exact_version == "1.0.0"
    assert vm.properties.storage_profile.image_reference.version == "latest"
    assert vm.properties.storage_profile.os_disk.create_option == "FromImage"
    assert vm.properties.instance_view.node_name in ("node-1", "node-2")
    full = ready.ops.Get(pb.GetOperationRequest(id=op.id, trace=True))
    steps = [s.step for s in full.trace]
    assert steps[:5] == ["validated", "os-disk-created", "lease-acquired", "nic-claimed", "placed"]
    assert "private IP 10.0.0.4 in 10.0.0.0/24" in full.trace[3].message
    assert "fmt=qcow2" in full.trace[1].detail and "backing_fmt=vpc" in full.trace[1].detail   # what qemu-img made
    placed = full.trace[4]
    assert sorted(c.node for c in placed.placement) == ["node-1", "node-2"]
    assert sum(c.chosen for c in placed.placement) == 1
    assert all(f.passed for c in placed.placement for f in c.filters)


def test_power_actions_refused_in_the_wrong_state(ready: Api) -> None:
    create(ready)
    status, body = arm_error(lambda: ready.vms.Restart(pb.VirtualMachineRef(resource_group="RG", name="vm1")))
    assert body["code"] == "Conflict" and "in progress" in body["message"]


def test_missing_vm_and_operation(ready: Api) -> None:
    status, body = arm_error(lambda: ready.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="ghost")))
    assert (status, body["code"]) == (grpc.StatusCode.NOT_FOUND, "ResourceNotFound")
    status, body = arm_error(lambda: ready.ops.Get(pb.GetOperationRequest(id="nope")))
    assert (status, body["code"]) == (grpc.StatusCode.NOT_FOUND, "OperationNotFound")


def test_sizes_per_location(ready: Api) -> None:
    sizes = ready.vms.ListSizes(pb.ListSizesRequest(location="local")).value
    assert "Standard_DS1_v2" in [s.name for s in sizes]
    status, body = arm_error(lambda: ready.vms.ListSizes(pb.ListSizesRequest(location="mars")))
    assert body["code"] == "LocationNotAvailable"
