"""Redeploy: the VM moves to another node in one transaction (old assignment and allocation out, new in)."""
from __future__ import annotations

from fabric.model import Assignment, NodeAllocation, VmRecord
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import arm_error, snapshot
from tests.integration.test_extensions import node_reports


def test_redeploy_moves_the_vm_or_says_why_not(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="vm1", image="fabriclab:busybox:lab:latest",
                                                  size="Lab_A0"))
    node_reports(api, "RG", "vm1", power="running", booted=True)
    before = snapshot(api)
    _, body = arm_error(lambda: api.vms.Redeploy(pb.VirtualMachineRef(resource_group="RG", name="vm1")))
    assert body["code"] == "AllocationFailed" and "no node other than node-1" in body["message"]
    assert snapshot(api) == before

    register_node(api.store, "node-2", fd=1)
    op = api.vms.Redeploy(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    assert op.name == "Microsoft.Compute/virtualMachines/redeploy/action"
    vm = api.store.get(keys.vm("RG", "vm1"), VmRecord)
    assert vm is not None and vm.value.node == "node-2" and vm.value.power_state == "starting"
    vm_id = vm.value.vm_id
    assert api.store.get(keys.assignment("node-1", vm_id), Assignment) is None
    assert api.store.get(keys.assignment("node-2", vm_id), Assignment) is not None
    allocs = {a.value.node: a.value for a in api.store.list(keys.ALLOCATIONS, NodeAllocation)}
    assert allocs["node-1"].count() == 0 and allocs["node-2"].count() == 1
    trace = api.ops.Get(pb.GetOperationRequest(id=op.id, trace=True)).trace
    placed = next(t for t in trace if t.step == "placed")
    assert [c.node for c in placed.placement] == ["node-2"]          # the node it leaves is not a candidate

    node_reports(api, "RG", "vm1", on_node="node-2", power="running", booted=True)
    assert api.ops.Get(pb.GetOperationRequest(id=op.id)).status == "Succeeded"
    dealloc = api.vms.Deallocate(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    node_reports(api, "RG", "vm1", on_node="node-2", power="deallocated")
    assert api.ops.Get(pb.GetOperationRequest(id=dealloc.id)).status == "Succeeded"
    _, body = arm_error(lambda: api.vms.Redeploy(pb.VirtualMachineRef(resource_group="RG", name="vm1")))
    assert (body["code"], body["message"]) == (
        "OperationNotAllowed", "Cannot redeploy VM 'vm1' while its power state is 'deallocated'.")
