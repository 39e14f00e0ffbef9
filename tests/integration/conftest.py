from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from fabric.arm import join_server
from fabric.compute.vms import ComputeConfig, ComputeProvider
from fabric.controller.main import build_server
from fabric.enrollment import Enrollment
from fabric.gallery import Gallery, publish_blank
from fabric.hostinfo import free_port
from fabric.join import join
from fabric.model import NodeRecord
from fabric.pki import ADMINS, CONTROLLERS, Authority, Credential, Identity
from fabric.store import Store, keys
from fabric.network.provider import NetworkConfig, NetworkProvider
from fabric.storage import dataplane
from fabric.storage.nbd import NbdExports
from fabric.storage.provider import StorageConfig, StorageProvider
from fabric.v1 import deployment_pb2_grpc as drpc
from fabric.v1 import fabric_pb2_grpc as rpc
from fabric.v1 import network_pb2_grpc as nrpc
from fabric.v1 import storage_pb2_grpc as srpc
from tests.conftest import require


def publish_image(root: Path, version: str = "1.0.0") -> None:
    """A gallery version with a real (empty) VHD that OS disk overlays can be made over."""
    require(shutil.which("qemu-img") is not None, "qemu-img (Debian qemu-utils)")
    publish_blank(root, version)


def register_node(store: Store, name: str, cores: int = 2, memory_mb: int = 4096, disk_mb: int = 100000,
                  fd: int = 0) -> None:
    store.put(keys.node(name), NodeRecord(name=name, fault_domain=fd, hypervisor="qemu", cores=cores,
                                          memory_mb=memory_mb, local_disk_mb=disk_mb))


class Pki:
    """The test cluster's CA, the controller's credential and an admin's (its file is what the CLI uses)."""

    def __init__(self, root: Path) -> None:
        self.ca = Authority.create("tests")
        self.controller = self.ca.credential(Identity("controller:tests", CONTROLLERS), "", ("127.0.0.1",))
        self.admin = self.ca.credential(Identity("admin", ADMINS), "")
        self.admin_file = root / "admin.json"
        self.admin.save(self.admin_file)

    def channel(self, address: str, cred: Credential | None = None) -> grpc.Channel:
        return (cred or self.admin).channel(address)


@pytest.fixture(scope="session", autouse=True)
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """One CA for the session; the CLI run by a test finds the admin credential through FABRIC_CREDENTIALS."""
    p = Pki(tmp_path_factory.mktemp("pki"))
    before = os.environ.get("FABRIC_CREDENTIALS")
    os.environ["FABRIC_CREDENTIALS"] = str(p.admin_file)
    yield p
    if before is None:
        os.environ.pop("FABRIC_CREDENTIALS", None)
    else:
        os.environ["FABRIC_CREDENTIALS"] = before


class Api:
    def __init__(self, address: str, store: Store, compute: ComputeProvider, storage: StorageProvider,
                 pki: Pki, join_address: str) -> None:
        self.address = address
        self.join_address = join_address
        self.enrollment = Enrollment(store, pki.ca)
        self.joined: dict[str, Credential] = {}
        self.store = store
        self.compute = compute
        self.storage = storage
        self.pki = pki
        channel = pki.channel(address)
        self.accounts = srpc.StorageAccountsStub(channel)
        self.containers = srpc.ContainersStub(channel)
        self.blobs = srpc.BlobsStub(channel)
        self.checks = srpc.StorageChecksStub(channel)
        self.vnets = nrpc.VirtualNetworksStub(channel)
        self.nics = nrpc.NetworkInterfacesStub(channel)
        self.images = rpc.ImagesStub(channel)
        self.groups = rpc.ResourceGroupsStub(channel)
        self.vms = rpc.VirtualMachinesStub(channel)
        self.extensions = rpc.VirtualMachineExtensionsStub(channel)
        self.deployments = drpc.DeploymentsStub(channel)
        self.ops = rpc.OperationsStub(channel)
        self.nodes = rpc.NodesStub(channel)

    def join(self, node: str) -> Credential:
        """A node's credential, as a real node gets it: a one-time token, then joining over HTTPS (once per
        node and test)."""
        if node not in self.joined:
            token, _ = self.enrollment.create_token(600, f"test node {node}")
            self.joined[node] = join(self.join_address, token, node)
        return self.joined[node]


@pytest.fixture
def api(store: Store, tmp_path: Path, pki: Pki) -> Iterator[Api]:
    """The controller's gRPC API in-process, over the real etcd."""
    publish_image(tmp_path / "gallery")
    base = free_port(3)             # three ports free at once: two picked apart could be the same one
    address, blob_listen, join_address = (f"127.0.0.1:{base + i}" for i in range(3))
    storage = StorageProvider(store, StorageConfig(tmp_path / "blobs", "local", f"http://{blob_listen}"))
    sub = "00000000-0000-0000-0000-000000000001"
    network = NetworkProvider(store, NetworkConfig(sub, "local"))
    compute = ComputeProvider(store, Gallery(tmp_path / "gallery"), storage, network, ComputeConfig(sub, "local"))
    blob_srv = dataplane.serve(blob_listen, storage)
    enrollment = Enrollment(store, pki.ca)
    join_srv = join_server.serve(join_address, enrollment, pki.controller, address, compute.gallery)
    exports = NbdExports(tmp_path / "nbd", "127.0.0.1", pki.controller)
    srv = build_server(store, compute, address, pki.controller, enrollment, join_address, exports)
    srv.start()
    yield Api(address, store, compute, storage, pki, join_address)
    srv.stop(grace=0)
    exports.keep_only(dict)
    join_srv.shutdown()
    blob_srv.shutdown()
