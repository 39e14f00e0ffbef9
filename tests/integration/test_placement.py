"""Placement in a fabric of many nodes, through the API: the trace keeps a few rows and the counts, any other
node is explained on demand, and the allocation record stays the same size however many VMs a node holds."""
from __future__ import annotations

from fabric.compute.reconciler import VmReconciler
from fabric.model import NodeAllocation, Observed, PowerState, VmRecord
from fabric.scheduler.scheduler import TRACE_ROWS
from fabric.store import Put, Store, keys
from fabric.store.informer import informed
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import arm_error


def create(api: Api, name: str, size: str = "Lab_A0") -> pb.Operation:
    op: pb.Operation = api.vms.Create(pb.CreateVirtualMachineRequest(
        resource_group="RG", name=name, image="fabriclab:busybox:lab:latest", size=size))
    return op


def placed_step(api: Api, op: pb.Operation) -> pb.TraceStep:
    trace = api.ops.Get(pb.GetOperationRequest(id=op.id, trace=True)).trace
    step: pb.TraceStep = next(t for t in trace if t.step == "placed")
    return step


def test_the_trace_keeps_a_few_rows_and_counts_the_rest(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    for i in range(12):
        register_node(api.store, f"node-{i:02d}", cores=1, memory_mb=4096)
    for i in range(4):                                     # four nodes full: 1 core x 4 vCPUs taken
        api.store.put(keys.allocation(f"node-{i:02d}"),
                      NodeAllocation(node=f"node-{i:02d}", cores=4, memory_mb=1024, disk_mb=2048, vm_count=4))
    step = placed_step(api, create(api, "vm1"))
    s = step.placement_summary
    assert (s.nodes, s.considered, s.feasible) == (12, 12, 8)
    assert [(r.filter, r.nodes) for r in s.rejected] == [("CoreFilter", 4)]
    assert (s.cores, s.memory_mb, s.resource_disk_mb) == (1, 256, 512)
    assert len(step.placement) == TRACE_ROWS
    assert step.placement[0].chosen and sum(c.chosen for c in step.placement) == 1
    assert int(step.placement[0].node[-2:]) >= 4                     # never a full node
    assert "8 of 12 nodes considered fit" in step.message


def test_why_not_explains_any_node_now(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    for i in range(8):
        register_node(api.store, f"node-{i}", cores=1)
    api.store.put(keys.allocation("node-7"), NodeAllocation(node="node-7", cores=4, vm_count=4))
    op = create(api, "vm1")
    shown = {c.node for c in placed_step(api, op).placement}
    assert "node-7" in shown                               # refused: one of the rows
    hidden = next(f"node-{i}" for i in range(7) if f"node-{i}" not in shown)

    w = api.ops.Get(pb.GetOperationRequest(id=op.id, why_not=hidden)).why_not
    assert w.registered and not w.in_trace and "not among the best shown" in w.note
    assert all(f.passed for f in w.now.filters) and w.now.weight > 0

    full = api.ops.Get(pb.GetOperationRequest(id=op.id, why_not="node-7")).why_not
    core = next(f for f in full.now.filters if f.filter == "CoreFilter")
    assert not core.passed and "needs 1 vCPUs, 0 free" in core.reason
    assert full.in_trace

    gone = api.ops.Get(pb.GetOperationRequest(id=op.id, why_not="node-99")).why_not
    assert not gone.registered and "no node named node-99 is registered now" in gone.note


def test_why_not_of_an_operation_that_placed_nothing_is_refused(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    create(api, "vm1")
    op = api.vms.Delete(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    _, body = arm_error(lambda: api.ops.Get(pb.GetOperationRequest(id=op.id, why_not="node-1")))
    assert (body["code"], body["target"]) == ("InvalidParameter", "whyNot")


def test_the_allocation_record_does_not_grow_with_the_vms(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", cores=16, memory_mb=65536)
    sizes = []
    for i in range(6):
        create(api, f"vm{i}")
        alloc = api.store.get(keys.allocation("node-1"), NodeAllocation)
        assert alloc is not None
        sizes.append(len(alloc.value.to_json()))
    last = alloc.value if alloc else NodeAllocation(node="")
    assert last.totals() == (6, 6 * 256, 6 * 512) and last.count() == 6
    assert max(sizes) - min(sizes) <= 3                    # digits of the totals, not a row per VM
    listed = api.nodes.List(pb.ListNodesRequest()).value[0]
    assert (listed.vm_count, listed.allocated_cores) == (6, 6)


def test_an_allocation_written_by_an_earlier_version_still_counts_and_releases(api: Api) -> None:
    """Allocations used to list each VM: those VMs still count, and leaving frees their share exactly."""
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", cores=1)
    create(api, "vm1")
    cur = api.store.get(keys.allocation("node-1"), NodeAllocation)
    vm = api.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    assert cur is not None
    old = NodeAllocation(node="node-1", vms={vm.properties.vm_id: [1, 256, 512], "older-vm": [2, 512, 1024]})
    assert api.store.commit([], [Put(keys.allocation("node-1"), old)])
    _, body = arm_error(lambda: create(api, "vm2", size="Lab_A2"))       # 2 of 4 vCPUs left... and 3 taken
    assert body["code"] == "AllocationFailed" and "needs 2 vCPUs, 1 free" in body["message"]
    release = NodeAllocation.from_json(old.to_json()).minus(vm.properties.vm_id, 1, 256, 512)
    assert release.totals() == (2, 512, 1024) and release.count() == 1


def test_an_observation_the_view_has_not_caught_up_with_decides_nothing(api: Api) -> None:
    """The VMs and the observations are two watches: a decision taken on an observation the store has
    since replaced (another controller wrote it) holds only if the observation is unchanged."""
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    op = create(api, "vm1")
    vm = api.store.get(keys.vm("RG", "vm1"), VmRecord)
    assert vm is not None
    view = informed(api.store, keys.OBSERVED, Observed)
    running = Observed(vm_id=vm.value.vm_id, node="node-1", power=PowerState.RUNNING, booted=True,
                       operation_id=op.id)
    view.stop()                                            # this view lags from now on
    api.store.put(keys.observed("node-1", vm.value.vm_id), running)          # written through to it
    other = Store(api.store.endpoints)                     # the node's newer report, through another controller
    try:
        other.put(keys.observed("node-1", vm.value.vm_id), running.replace(power=PowerState.STOPPED, booted=False))
    finally:
        other.close()
    VmReconciler(api.store, api.compute).reconcile_all()
    assert api.ops.Get(pb.GetOperationRequest(id=op.id)).status == "InProgress"    # not Succeeded on the stale one
    view.resume()
    VmReconciler(api.store, api.compute).reconcile_all()
    assert api.ops.Get(pb.GetOperationRequest(id=op.id)).status == "InProgress"    # the node says stopped
