"""The node API checks every call against the caller's node certificate (node restriction): a
real node-1 certificate may read and write only what is node-1's, and nothing of the resource API."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from fabric.arm import node_server
from fabric.model import (Assignment, DiskRef, ImageRecord, NodeRecord, Observed, PowerState, TraceRecord,
                          VmNic)
from fabric.store import keys
from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import node_pb2 as pb
from fabric.v1 import node_pb2_grpc as rpc
from fabric.v1 import storage_pb2 as spb
from fabric.v1 import storage_pb2_grpc as srpc
from tests.integration.conftest import Api

IMAGE = ImageRecord(publisher="fabriclab", offer="busybox", sku="lab", version="latest", exact_version="1.0.0",
                    disk="/g/disk.vhd", disk_format="vpc", kernel="/g/vmlinuz", initrd="/g/initrd.img",
                    cmdline="console=ttyS0", boot_marker="ready")


def assign(api: Api, node: str, vm_id: str, vni: int) -> Assignment:
    nic = VmNic(key=f"/nic/{vm_id}", id=f"/nic/{vm_id}", mac=f"52:54:00:00:00:{vni % 256:02x}", ip=f"10.{vni % 256}.0.4",
                vnet=f"RG/net-{vni}", vni=vni, prefix=f"10.{vni % 256}.0.0/24", gateway=f"10.{vni % 256}.0.1",
                dns_suffix="internal")
    a = Assignment(vm_id=vm_id, resource_group="RG", name=vm_id, node=node, power=PowerState.RUNNING, generation=0,
                   cores=1, memory_mb=64, resource_disk_mb=1, image=IMAGE, os_disk=DiskRef("localpath"),
                   operation_id=f"op-{vm_id}", nics=[nic])
    api.store.put(keys.assignment(node, vm_id), a)
    return a


def node_stub(api: Api, node: str) -> rpc.NodeAgentsStub:
    return rpc.NodeAgentsStub(api.join(node).channel())


def refused(call: Callable[..., Any], *args: object) -> str:
    with pytest.raises(grpc.RpcError) as e:
        call(*args, timeout=10)
    assert e.value.code() == grpc.StatusCode.PERMISSION_DENIED, e.value.details()
    return e.value.details() or ""


@pytest.fixture
def two(api: Api) -> Api:
    assign(api, "node-1", "vm-a", 9101)
    assign(api, "node-2", "vm-b", 9102)
    return api


def test_a_node_registers_and_heartbeats_only_itself(two: Api) -> None:
    n1 = node_stub(two, "node-1")
    mine = NodeRecord(name="node-1", fault_domain=0, hypervisor="qemu", cores=1, memory_mb=64, local_disk_mb=1)
    lease = n1.Register(pb.RegisterNodeRequest(record=mine.to_json().encode()), timeout=10)
    assert lease.ttl_s > 0 and two.store.get(keys.node("node-1"), NodeRecord) is not None
    other = mine.replace(name="node-2")
    assert "node node-1 may not register node node-2" in refused(
        n1.Register, pb.RegisterNodeRequest(record=other.to_json().encode()))
    assert two.store.get(keys.node("node-2"), NodeRecord) is None
    n2 = node_stub(two, "node-2")
    n2_lease = n2.Register(pb.RegisterNodeRequest(record=other.to_json().encode()), timeout=10)
    assert "is not the lease of node node-1" in refused(n1.Heartbeat, pb.LeaseRef(lease_id=n2_lease.lease_id))
    assert n1.Heartbeat(pb.LeaseRef(lease_id=lease.lease_id), timeout=10).ttl_s > 0


def test_a_node_sees_only_its_own_assignments(two: Api) -> None:
    stream = node_stub(two, "node-1").WatchAssignments(pb.WatchAssignmentsRequest(), timeout=10)
    snap = next(stream)
    stream.cancel()
    assert [Assignment.from_json(raw).vm_id for raw in snap.assignments] == ["vm-a"]


def test_a_node_reads_only_the_networks_of_its_vms(two: Api) -> None:
    n1 = node_stub(two, "node-1")
    assert [n.vni for n in n1.GetNetworkView(pb.NetworkViewRequest(vnis=[9101]), timeout=10).networks] == [9101]
    assert "runs no VM in network(s) [9102]" in refused(n1.GetNetworkView, pb.NetworkViewRequest(vnis=[9102]))


def test_a_node_reports_only_on_its_vms_and_steps_only_into_their_operations(two: Api) -> None:
    n1 = node_stub(two, "node-1")
    theirs = Observed(vm_id="vm-b", node="node-1", power=PowerState.STOPPED)
    assert "VM vm-b is not assigned to node node-1" in refused(
        n1.ReportObserved, pb.ReportRequest(observed=theirs.to_json().encode()))
    as_other = Observed(vm_id="vm-a", node="node-2", power=PowerState.STOPPED)
    assert "may not report for node node-2" in refused(
        n1.ReportObserved, pb.ReportRequest(observed=as_other.to_json().encode()))
    assert two.store.list(keys.OBSERVED, Observed) == []
    assert "operation op-vm-b is not carried out by a VM of node node-1" in refused(
        n1.RecordStep, pb.StepRequest(operation_id="op-vm-b", name="x", message="forged"))
    assert two.store.list(keys.trace_of("op-vm-b"), TraceRecord) == []
    n1.RecordStep(pb.StepRequest(operation_id="op-vm-a", name="domain-defined", message="ok"), timeout=10)
    assert [t.value.source for t in two.store.list(keys.trace_of("op-vm-a"), TraceRecord)] == ["node-1"]


def test_a_node_has_no_access_to_the_resource_api_nor_an_admin_to_the_node_api(two: Api) -> None:
    two.groups.Create(fpb.CreateResourceGroupRequest(name="RG", location="local"))
    two.storage.create_account("RG", "secrets1")
    node_accounts = srpc.StorageAccountsStub(
        two.join("node-1").channel())
    assert "may not call /fabric.v1.StorageAccounts/ListKeys" in refused(
        node_accounts.ListKeys, spb.StorageAccountRef(name="secrets1"))
    admin = rpc.NodeAgentsStub(two.pki.channel(two.address))
    assert "admin (admins) may not call /fabric.v1.NodeAgents/GetFabric" in refused(admin.GetFabric, pb.NodeEmpty())


def test_a_controller_serves_at_most_its_share_of_streams_and_says_so(two: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(node_server, "MAX_NODE_STREAMS", 1)
    n1, n2 = node_stub(two, "node-1"), node_stub(two, "node-2")
    first = n1.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=20)
    next(first)
    with pytest.raises(grpc.RpcError) as e:
        next(n2.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=20))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "add a controller" in (e.value.details() or "")
    again = n1.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=20)     # the same node: its newer stream
    next(again)
    again.cancel()


def test_a_node_holds_one_assignment_stream_and_sends_only_checked_records(two: Api) -> None:
    n1 = node_stub(two, "node-1")
    first = n1.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=20)
    next(first)
    second = n1.WatchAssignments(pb.WatchAssignmentsRequest(), timeout=20)
    next(second)
    with pytest.raises(StopIteration):              # the newer stream ended the older one
        next(first)
    second.cancel()
    bad = NodeRecord(name="node-1", fault_domain=0, hypervisor="qemu", cores=1, memory_mb=64, local_disk_mb=1,
                     diagnostics_url="http://metadata.internal/serial")
    with pytest.raises(grpc.RpcError) as e:
        n1.Register(pb.RegisterNodeRequest(record=bad.to_json().encode()), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "diagnostics_url" in (e.value.details() or "")
    with pytest.raises(grpc.RpcError) as e:
        n1.GetNetworkView(pb.NetworkViewRequest(vnis=[]), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
