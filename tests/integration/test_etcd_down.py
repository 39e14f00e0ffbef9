"""etcd unavailable: the API answers UNAVAILABLE and nothing is written."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import grpc
import pytest

from fabric.compute.vms import ComputeConfig, ComputeProvider
from fabric.controller.main import build_server
from fabric.gallery import Gallery
from fabric.hostinfo import free_port
from fabric.lab.etcd import Etcd
from fabric.network.provider import NetworkConfig, NetworkProvider
from fabric.storage.provider import StorageConfig, StorageProvider
from fabric.store import Store
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc
from tests.conftest import require
from tests.integration.conftest import Pki, publish_image, register_node


def test_create_while_etcd_is_down_writes_nothing(pki: Pki) -> None:
    import shutil
    require(shutil.which("etcd") is not None, "etcd")
    with tempfile.TemporaryDirectory() as tmp:
        etcd = Etcd(Path(tmp))
        etcd.start()
        store = Store(etcd.url, timeout_s=1.0)
        publish_image(Path(tmp) / "gallery")
        addr = f"127.0.0.1:{free_port()}"
        storage = StorageProvider(store, StorageConfig(Path(tmp) / "blobs", "local", "http://127.0.0.1:1"))
        network = NetworkProvider(store, NetworkConfig("sub", "local"))
        compute = ComputeProvider(store, Gallery(Path(tmp) / "gallery"), storage, network,
                                  ComputeConfig("sub", "local"))
        srv = build_server(store, compute, addr, pki.controller)
        srv.start()
        try:
            vms = rpc.VirtualMachinesStub(pki.channel(addr))
            groups = rpc.ResourceGroupsStub(pki.channel(addr))
            groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
            register_node(store, "node-1")
            before = store.key_list("/fabriclab/")
            etcd.stop()
            with pytest.raises(grpc.RpcError) as e:
                vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="vm1",
                                                          image="fabriclab:busybox:lab:latest", size="Lab_A0"))
            assert e.value.code() == grpc.StatusCode.UNAVAILABLE
            body = json.loads(dict(e.value.trailing_metadata())["fabric-error"])
            assert body["code"] == "StoreUnavailable" and "nothing was written" in body["message"]
            etcd.start()
            after = store.key_list("/fabriclab/")
            assert after == before
        finally:
            srv.stop(grace=0)
            etcd.stop()
