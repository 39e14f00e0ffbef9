"""Two controllers: both answer the API, one leads the background work, elected on an etcd lease. A leader
killed with SIGKILL is replaced within the lease's TTL; a stalled one can write nothing once replaced; an
operation in flight when the leader died is completed by the next one, and by it alone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.controller.leader import Election, LeaderRecord, leader
from fabric.enrollment import Enrollment
from fabric.files import ensure_dir
from fabric.hostinfo import free_port
from fabric.join import join
from fabric.lab.etcd import Etcd
from fabric.model import NodeRecord, Observed, OperationRecord, OperationStatus, PowerState, ResourceGroupRecord, VmRecord
from fabric.operations import trace
from fabric.store import Fenced, Store, keys
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc
from nodeagent.control import ControlPlane, ControlPlaneUnavailable
from tests.integration.conftest import Pki, publish_image, register_node

TTL_S = 2
WAIT_S = 30.0


def wait_for(what: str, ok: object, timeout_s: float = WAIT_S) -> float:
    start = time.monotonic()
    while not ok():  # type: ignore[operator]
        assert time.monotonic() - start < timeout_s, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.1)
    return time.monotonic() - start


def group(name: str) -> ResourceGroupRecord:
    return ResourceGroupRecord(name=name, location="local")


def test_one_leads_and_a_stalled_leader_writes_nothing_once_replaced(store: Store) -> None:
    a, b = Election(store, "a", TTL_S), Election(store, "b", TTL_S)
    fence = a.campaign()
    assert fence is not None and b.campaign() is None
    fenced = store.fenced(fence)
    fenced.put(keys.resource_group("by-a"), group("by-a"))
    # a stalls: it renews no more; its lease runs out and b wins
    took = wait_for("b elected", lambda: b.campaign() is not None, TTL_S + 5)
    assert took <= TTL_S + 2
    leading = leader(store)
    assert leading is not None and leading.name == "b"
    with pytest.raises(Fenced):
        fenced.put(keys.resource_group("late"), group("late"))
    assert not fenced.commit([], [])
    assert store.get(keys.resource_group("late"), ResourceGroupRecord) is None
    assert not a.renew()


def test_a_leader_that_resigns_hands_over_at_once(store: Store) -> None:
    a, b = Election(store, "a", 30), Election(store, "b", 30)
    assert a.campaign() is not None
    a.resign()
    assert b.campaign() is not None


class Controller:
    def __init__(self, root: Path, name: str, etcd: str, pki: Pki) -> None:
        base = free_port(3)         # three ports free at once: two picked apart could be the same one
        self.address, self.join_address, blob = (f"127.0.0.1:{base + i}" for i in range(3))
        self.log = root / f"controller-{name}.log"
        cred = root / f"controller-{name}.json"
        pki.controller.save(cred)
        pki.ca.save(ensure_dir(root / "ca"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fabric.controller.main", "--name", name, "--etcd", etcd, "--credential", str(cred),
             "--listen", self.address, "--blob-listen", blob, "--gallery", str(root / "gallery"),
             "--state-dir", str(root / f"state-{name}"), "--log-file", str(self.log), "--ca-dir", str(root / "ca"),
             "--join-listen", self.join_address])
        self.api = rpc.VirtualMachinesStub(pki.channel(self.address))
        self.groups = rpc.ResourceGroupsStub(pki.channel(self.address))

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


@pytest.fixture
def two(etcd_server: Etcd, store: Store, tmp_path: Path, pki: Pki) -> Iterator[tuple[Controller, Controller]]:
    publish_image(tmp_path / "gallery")
    first = Controller(tmp_path, "first", etcd_server.url, pki)
    try:
        wait_for("the first controller leads", lambda: (leader(store) or LeaderRecord("", "")).name == "first")
        second = Controller(tmp_path, "second", etcd_server.url, pki)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def test_the_leader_killed_the_other_takes_over_and_completes_the_operation_in_flight(
        two: tuple[Controller, Controller], store: Store, pki: Pki) -> None:
    first, second = two
    second.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"), timeout=20,
                         wait_for_ready=True)          # started a moment ago
    register_node(store, "node-1")
    token, _ = Enrollment(store, pki.ca).create_token(600)
    node = ControlPlane(join(first.join_address, token, "node-9"), f"{first.address},{second.address}")
    lease = node.register(NodeRecord(name="node-9", fault_domain=0, hypervisor="qemu", cores=1, memory_mb=64,
                                     local_disk_mb=1))
    op = second.api.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="vm1",
                                                          image="fabriclab:busybox:lab:latest", size="Lab_A0"),
                           timeout=20)
    first.kill()
    took = wait_for("the second controller leads", lambda: (leader(store) or LeaderRecord("", "")).name == "second")
    assert took <= 6 + 2, f"took {took:.1f} s for a lease TTL of 6 s"
    vm = store.get(keys.vm("RG", "vm1"), VmRecord)
    assert vm is not None
    store.put(keys.observed("node-1", vm.value.vm_id),
              Observed(vm_id=vm.value.vm_id, node="node-1", power=PowerState.RUNNING, booted=True))

    def done() -> bool:
        rec = store.get(keys.operation(op.id), OperationRecord)
        return rec is not None and rec.value.status == OperationStatus.SUCCEEDED
    wait_for("the operation in flight completes", done)
    completions = [s.source for s in trace(store, op.id) if s.step == "completed"]
    assert completions == ["controller/second"]
    assert second.groups.Get(pb.GetResourceGroupRequest(name="RG"), timeout=10).name == "RG"
    # a node that named both controllers goes on through the second; so does the CLI
    with pytest.raises(ControlPlaneUnavailable):
        node.heartbeat(lease)
    assert node.heartbeat(lease) > 0 and node.address == second.address
    cli = subprocess.run([sys.executable, "-m", "fabric.cli.main", "--controller", f"{first.address},{second.address}",
                          "group", "list"], capture_output=True, text=True, timeout=60, check=False)
    assert cli.returncode == 0 and '"name": "RG"' in cli.stdout, cli.stderr
