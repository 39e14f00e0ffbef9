"""Compare-and-swap placement: parallel creates never overfill a node."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc

from fabric.model import NodeAllocation
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node


def test_parallel_creates_fill_capacity_exactly(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", cores=1, memory_mb=100000)   # 1 core x 4 = 4 single-core VMs

    def create(i: int) -> str:
        try:
            api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name=f"vm{i}",
                                                          image="fabriclab:busybox:lab:latest", size="Lab_A0"))
            return "ok"
        except grpc.RpcError as exc:
            return exc.code().name

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(create, range(10)))
    assert results.count("ok") == 4
    assert results.count("RESOURCE_EXHAUSTED") == 6
    alloc = api.store.get(keys.allocation("node-1"), NodeAllocation)
    assert alloc is not None and alloc.value.totals()[0] == 4
    assert len(api.vms.List(pb.ListVirtualMachinesRequest(resource_group="RG")).value) == 4


def test_parallel_creates_of_one_name_make_one_vm(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")

    def create(_: int) -> str:
        try:
            api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="same",
                                                          image="fabriclab:busybox:lab:latest", size="Lab_A0"))
            return "ok"
        except grpc.RpcError as exc:
            return exc.code().name

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create, range(8)))
    assert results.count("ok") == 1 and results.count("ALREADY_EXISTS") == 7
    alloc = api.store.get(keys.allocation("node-1"), NodeAllocation)
    assert alloc is not None and len(alloc.value.vms) == 1
