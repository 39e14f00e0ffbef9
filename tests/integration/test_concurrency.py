"""Compare-and-swap placement: parallel creates never overfill a node."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from fabric.model import NodeAllocation
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node


def create(api: Api, name: str) -> str:
    """Create a Lab_A0 VM; "ok" or the gRPC status name."""
    try:
        api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name=name,
                                                      image="fabriclab:busybox:lab:latest", size="Lab_A0"))
        return "ok"
    except grpc.RpcError as exc:
        return str(exc.code().name)


def test_parallel_creates_fill_capacity_exactly(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", cores=1, memory_mb=100000)   # 1 core x 4 = 4 single-core VMs
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: create(api, f"vm{i}"), range(10)))
    assert results.count("ok") == 4
    assert results.count("RESOURCE_EXHAUSTED") == 6
    alloc = api.store.get(keys.allocation("node-1"), NodeAllocation)
    assert alloc is not None and alloc.value.totals()[0] == 4
    assert len(api.vms.List(pb.ListVirtualMachinesRequest(resource_group="RG")).value) == 4


def test_parallel_creates_of_one_name_make_one_vm(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: create(api, "same"), range(8)))
    assert results.count("ok") == 1 and results.count("ALREADY_EXISTS") == 7
    alloc = api.store.get(keys.allocation("node-1"), NodeAllocation)
    assert alloc is not None and alloc.value.count() == 1
