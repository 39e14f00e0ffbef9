"""The node agent's reconcile below e2e: real etcd behind the controller's node API (in-process, mutual TLS with
a node certificate), libvirt's own `test:///default` driver behind the compute driver interface, no guest
booted. What a user would see is the Observed record, the operation's trace and the instances on the host."""
from __future__ import annotations

import dataclasses
import errno
import json
import shutil
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from fabric.model import (AgentHealth, AttachedDisk, Assignment, DiskRef, Observed, PowerState, ProvisioningMedia,
                          TraceRecord)
from fabric.store import keys
from nodeagent.agent import AgentConfig, NodeAgent, temporary
from nodeagent.control import ControlPlane
from nodeagent.hypervisor import DirectBoot, LibvirtDriver, Spawned, VmSpec
from nodeagent.hypervisor.domain_xml import domain_xml
from nodeagent.retries import RETRY_FOR_S
from nodeagent.storage_backends import Disk
from tests.conftest import require
from tests.integration.conftest import Api

TEST_URI = "test:///default"
MARKER = "fabriclab-guest: reached user space"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Node:
    def __init__(self, api: Api, root: Path) -> None:
        self.store = api.store
        self.root = root
        self.name = "node-r"
        self.fabric = f"reconcile-{uuid.uuid4().hex[:8]}"
        self.clock = Clock()
        self.driver = LibvirtDriver(TEST_URI, self.name, self.fabric)
        self.driver.choose_domain_type("auto")
        self.plane = ControlPlane(api.join(self.name))
        self.agent = NodeAgent(self.plane, self.driver, AgentConfig(
            node=self.name, fabric_id=self.fabric, fault_domain=0, state_dir=root / "state", cores=4,
            memory_mb=4096, local_disk_mb=10000, image_keep_s=0), clock=self.clock)
        self.agent.refresh_fabric()                     # where the gallery is
        self.image = api.compute.gallery.resolve("fabriclab:busybox:lab:latest")   # published by the fixture
        self.images = root / "state" / "images"

    def assign(self, vm_id: str, power: PowerState = PowerState.RUNNING, data_disks: tuple[Path, ...] = (),
               os_disk: Path | None = None, generation: int = 0, op: str = "",
               media: ProvisioningMedia | None = None) -> Assignment:
        disk = os_disk or self.root / "os.qcow2"
        if os_disk is None:
            disk.touch()
        a = Assignment(vm_id=vm_id, resource_group="RG", name="vm1", node=self.name, power=power,
                       generation=generation, cores=1, memory_mb=128, resource_disk_mb=1,
                       image=self.image, os_disk=DiskRef("localpath", "http://x/os.vhd", str(disk)),
                       operation_id=op or vm_id, disk_generation=len(data_disks),
                       data_disks=[AttachedDisk(i, DiskRef("localpath", f"http://x/data{i}.vhd", str(p), "raw"))
                                   for i, p in enumerate(data_disks)], provisioning_media=media,
                       instance_metadata={"name": "vm1", "osProfile": {"adminUsername": "azureuser",
                                                                       "computerName": "vm1",
                                                                       "disablePasswordAuthentication": "false"}})
        self.store.put(keys.assignment(self.name, vm_id), a)
        return a

    def observed(self, vm_id: str) -> Observed:
        found = self.store.get(keys.observed(self.name, vm_id), Observed)
        assert found is not None, "the node reported nothing"
        return found.value

    def steps(self, op: str) -> list[str]:
        return [t.value.step for t in self.store.list(keys.trace_of(op), TraceRecord)]

    def trace(self, op: str) -> list[TraceRecord]:
        return [t.value for t in self.store.list(keys.trace_of(op), TraceRecord)]


@pytest.fixture
def node(api: Api, tmp_path: Path) -> Iterator[Node]:
    require(subprocess.run(["nft", "--version"], capture_output=True).returncode == 0, "nftables (nft)")
    n = Node(api, tmp_path)
    yield n
    n.agent.power_off_all()
    n.driver.close()
    n.plane.close()


def test_a_vm_is_defined_started_booted_stopped_and_removed(node: Node) -> None:
    vm = str(uuid.uuid4())
    node.assign(vm)
    node.agent.reconcile()
    inst = node.driver.instance(vm)
    assert inst is not None and inst.active and inst.name == f"fl-vm1-{vm[:8]}"
    obs = node.observed(vm)
    assert (obs.power, obs.booted, obs.hypervisor, obs.error) == (PowerState.RUNNING, False, "test", None)
    assert node.steps(vm)[:3] == ["resource-disk-created", "domain-defined", "domain-started"]
    # the guest prints its marker on the serial console: the next pass sees it boot
    with open(obs.console, "a") as f:
        f.write(f"{MARKER}\n")
    node.agent.reconcile()
    assert node.observed(vm).booted
    assert node.steps(vm)[-1] == "guest-ready"

    node.assign(vm, power=PowerState.STOPPED, op="stop")
    node.agent.reconcile()
    assert not node.driver.instances()[vm].active and node.steps("stop") == ["domain-stopped"]
    node.assign(vm, power=PowerState.DELETED, op="delete")
    node.agent.reconcile()
    assert node.driver.instance(vm) is None
    assert node.steps("delete") == ["domain-undefined", "resource-disk-removed"]
    assert not (node.root / "state" / "resource-disks" / f"{vm}.raw").exists()


def test_an_image_without_a_boot_marker_is_provisioned_when_its_guest_agent_says_so(node: Node) -> None:
    """The reference's images: no console marker; the guest agent's health report to the wireserver ends the
    provisioning, Ready or ProvisioningFailed. (What the guest says is set here: no guest boots under test://.)"""
    node.image = dataclasses.replace(node.image, boot_marker="")
    said: dict[str, AgentHealth] = {}
    node.agent.guests.agent = lambda a, boot_started: said.get(a.vm_id, AgentHealth())  # type: ignore[method-assign]
    ok, bad = str(uuid.uuid4()), str(uuid.uuid4())
    node.assign(ok)
    node.assign(bad, op="create-bad")
    node.agent.reconcile()
    assert not node.observed(ok).booted and "waiting for the guest agent to report Ready" in node.trace(ok)[-1].message
    with open(node.observed(ok).console, "a") as f:
        f.write(f"{MARKER}\n")                              # a console line proves nothing for such an image
    said[ok] = AgentHealth(status="Ready", version="2.7.3.0", provisioning="Ready")
    said[bad] = AgentHealth(provisioning="ProvisioningFailed", message="no SSH key for the admin user")
    node.clock.t += 1                                         # the guests' reports are read again
    node.agent.reconcile()
    obs = node.observed(ok)
    assert obs.booted and obs.error is None and node.steps(ok)[-1] == "guest-ready"
    failed = node.observed(bad)
    assert not failed.booted and failed.error is not None
    assert failed.error["code"] == "OSProvisioningClientError"
    assert "no SSH key for the admin user" in failed.error["message"]
    # a restart: the reference's agents do not provision again; the agent's status (Ready) says the guest is up
    said[ok] = AgentHealth()
    node.assign(ok, generation=1, op="restart")
    node.agent.reconcile()
    assert not node.observed(ok).booted
    said[ok] = AgentHealth(status="Ready", version="2.7.3.0")
    node.clock.t += 1
    node.agent.reconcile()
    assert node.observed(ok).booted and node.steps("restart")[-1] == "guest-ready"


def test_a_second_pass_changes_nothing_and_a_restart_generation_restarts(node: Node) -> None:
    vm = str(uuid.uuid4())
    a = node.assign(vm)
    node.agent.reconcile()
    before = node.steps(vm)
    node.agent.reconcile()
    assert node.steps(vm) == before
    assert node.driver.spawn(node.agent.vms.spec(a)).outcome == Spawned.UNCHANGED
    node.assign(vm, generation=1, op="restart")
    node.agent.reconcile()
    assert node.steps("restart") == ["domain-reset", "domain-started"]
    assert node.observed(vm).generation == 1


def test_an_orphan_is_fenced_and_other_owners_domains_are_left_alone(node: Node) -> None:
    orphan, foreign = str(uuid.uuid4()), str(uuid.uuid4())
    other = LibvirtDriver(TEST_URI, node.name, "another-fabric")
    spec = VmSpec(uuid=orphan, name=f"orphan-{orphan[:8]}", resource_group="RG", vm_name="orphan", cores=1,
                  memory_mb=64, boot=DirectBoot("/k", "", ""), os_disk=Disk("file", "/nonexistent"),
                  resource_disk=Disk("file", "/nonexistent-r", "raw"), console_log="/nonexistent.log")
    try:
        assert node.driver.spawn(spec).outcome == Spawned.DEFINED
        other.spawn(dataclasses.replace(spec, uuid=foreign, name=f"foreign-{foreign[:8]}"))
        node.agent.reconcile()
        assert node.driver.instance(orphan) is None, "a domain no assignment names was not fenced"
        assert other.instance(foreign) is not None, "a domain of another fabric was touched"
        assert "test" in {d.name() for d in node.driver.conn.listAllDomains()}, "the driver's own domain went"
    finally:
        other.destroy(foreign)
        other.close()


def test_with_its_assignments_watched_the_agent_is_woken_by_a_domain_stopped_behind_its_back(node: Node) -> None:
    """No pass is due (the clock stands still, nothing is assigned anew): only libvirt's event tells the agent, which
    converges that VM and no other."""
    vm, other = str(uuid.uuid4()), str(uuid.uuid4())
    watch = node.agent.watch = node.plane.watch_assignments(node.agent.changed.set)
    try:
        node.assign(vm)
        node.assign(other, op="other")
        wait_for(lambda: {a.vm_id for a in watch.latest or []} == {vm, other}, "the watch's snapshot")
        node.agent.reconcile()
        for v in (vm, other):
            with open(node.observed(v).console, "a") as f:
                f.write(f"{MARKER}\n")
        wait_for(lambda: node.agent.reconcile() and node.observed(vm).booted and node.observed(other).booted,
                 "both guests booted")
        before = node.steps(other)
        node.agent.changed.clear()
        outside = libvirt.open(TEST_URI)         # another program on the host pulls the plug
        try:
            outside.lookupByUUIDString(vm).destroy()
        finally:
            outside.close()
        assert node.agent.changed.wait(5), "the agent was not told that its domain stopped"
        node.agent.reconcile()
        inst = node.driver.instance(vm)
        assert inst is not None and inst.active, "the stopped domain was not started again"
        assert node.steps(vm)[-1] == "domain-started"
        assert node.steps(other) == before
    finally:
        watch.cancel()


def wait_for(ok: Callable[[], object], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.05)


def test_the_boot_files_are_fetched_checked_kept_by_digest_and_evicted(node: Node) -> None:
    vm = str(uuid.uuid4())
    node.assign(vm)
    node.agent.reconcile()
    kernel = node.images / node.image.kernel_sha256
    assert kernel.read_bytes() == Path(node.image.kernel).read_bytes()
    inst = node.driver.instance(vm)
    assert inst is not None and inst.active
    assert str(kernel) in node.driver.conn.lookupByUUIDString(vm).XMLDesc(0)   # booted from the checked copy
    assert oct(kernel.stat().st_mode)[-3:] == "644"
    node.assign(vm, power=PowerState.DELETED, op="delete")
    node.agent.reconcile()
    assert list(node.images.iterdir()) == []         # no VM of this node boots from them any more


def test_a_corrupted_boot_file_is_refused_and_retried_never_booted(node: Node) -> None:
    vm = str(uuid.uuid4())
    Path(node.image.initrd).write_bytes(b"not what was published")    # the gallery's copy went bad
    node.assign(vm)
    node.agent.reconcile()
    retry = node.trace(vm)[-1]
    assert retry.step == "node-retry" and "not kept" in retry.message, retry.message
    assert node.driver.instance(vm) is None
    assert sorted(f.name for f in node.images.iterdir()) == [node.image.kernel_sha256]


def test_a_temporary_error_is_retried_with_backoff_and_shown_in_the_trace(node: Node) -> None:
    vm = str(uuid.uuid4())
    later = node.root / "mounted-later.qcow2"
    node.assign(vm, os_disk=later)
    assert node.agent.reconcile() <= 1.0          # the retry is due in a second, not at the next resync
    assert node.store.get(keys.observed(node.name, vm), Observed) is None   # no failure reported yet
    retry = node.trace(vm)[-1]
    assert retry.step == "node-retry" and "does not exist" in retry.message and "attempt 1" in retry.message
    node.agent.reconcile()                        # not due yet: nothing tried, nothing traced
    assert len(node.trace(vm)) == 1
    node.clock.t += 1.0
    node.agent.reconcile()
    assert "attempt 2" in node.trace(vm)[-1].message and "in 2 s" in node.trace(vm)[-1].message
    later.touch()                                 # the storage comes back
    node.clock.t += 2.0
    node.agent.reconcile()
    obs = node.observed(vm)
    assert obs.error is None and obs.power == PowerState.RUNNING
    assert node.steps(vm)[-2:] == ["domain-defined", "domain-started"]


def test_a_temporary_error_that_lasts_fails_the_vm(node: Node) -> None:
    vm = str(uuid.uuid4())
    node.assign(vm, os_disk=node.root / "never.qcow2")
    node.agent.reconcile()
    while node.store.get(keys.observed(node.name, vm), Observed) is None:
        node.clock.t += 30.0
        node.agent.reconcile()
        assert node.clock.t < 1000 + RETRY_FOR_S + 60, "a temporary error was retried for ever"
    err = node.observed(vm).error
    assert err is not None and err["code"] == "NodeOperationFailed"
    assert "never.qcow2 does not exist" in err["message"] and "still failing after" in err["message"]
    assert node.steps(vm)[-1] == "node-error"


def test_a_terminal_error_fails_the_vm_at_once(node: Node) -> None:
    vm = str(uuid.uuid4())
    node.assign(vm)
    node.agent.reconcile()
    data = node.root / "data0.raw"
    data.touch()
    node.assign(vm, data_disks=(data,), op="attach")   # the test driver cannot hot-plug: it says so
    node.agent.reconcile()
    err = node.observed(vm).error
    assert err is not None and err["code"] == "NodeOperationFailed" and "not supported" in err["message"]
    assert "temporary" not in err["message"]
    assert node.steps("attach") == ["node-error"]


def test_the_driver_takes_a_screenshot(node: Node) -> None:
    vm = str(uuid.uuid4())
    node.assign(vm)
    node.agent.reconcile()
    mime, image = node.driver.screenshot(vm)
    assert mime == "image/png" and image.startswith(b"\x89PNG\r\n\x1a\n")


def _outdated(node: Node, a: Assignment) -> None:
    """The VM's domain as an agent before definition fingerprints defined it (its running form unchanged)."""
    spec = node.agent.vms.spec(a)
    node.driver.conn.defineXML(domain_xml(spec, node.driver.hypervisor, node.fabric, node.name, fingerprint=""))


def test_a_running_domain_of_an_older_agent_is_redefined_once_and_keeps_running(node: Node) -> None:
    vm = str(uuid.uuid4())
    a = node.assign(vm)
    node.agent.reconcile()
    _outdated(node, a)
    for _ in range(3):
        node.agent.reconcile()
    steps = node.steps(vm)
    assert steps.count("domain-redefined") == 1, steps
    assert "domain-reset" not in steps
    inst = node.driver.instance(vm)
    assert inst is not None and inst.active


def test_a_redefinition_leaves_data_disks_to_attach_and_detach(node: Node) -> None:
    """A new data disk reaches the running domain by hot-plug (which the test driver refuses, and says so),
    not by slipping into the redefined definition while the guest never sees it."""
    vm = str(uuid.uuid4())
    a = node.assign(vm)
    node.agent.reconcile()
    _outdated(node, a)
    data = node.root / "data0.raw"
    data.touch()
    node.assign(vm, data_disks=(data,), op="attach")
    node.agent.reconcile()
    err = node.observed(vm).error
    assert err is not None and "not supported" in err["message"]
    assert node.driver.data_disks(vm) == {}


def test_file_errors_are_temporary_only_when_they_may_pass() -> None:
    assert temporary(OSError(errno.ENOSPC, "No space left on device"))
    assert not temporary(OSError(errno.EACCES, "Permission denied"))
    assert not temporary(KeyError("path"))


def test_the_provisioning_cd_is_there_until_provisioning_ends(node: Node) -> None:
    """The node makes the CD from the assignment's media (not a data disk: no LUN), and removes it when the
    assignment no longer has them; the running domain keeps running, and its next start has no CD."""
    require(shutil.which("genisoimage") is not None, "genisoimage (Debian genisoimage)")
    vm = str(uuid.uuid4())
    node.assign(vm, media=ProvisioningMedia(admin_password="Lab-Passw0rd-2026"))
    node.agent.reconcile()
    cd = node.root / "state" / "resource-disks" / f"{vm}.ovf-env.iso"
    assert cd.exists() and node.steps(vm)[:3] == ["resource-disk-created", "provisioning-cd-made", "domain-defined"]
    xml = ET.fromstring(node.driver.conn.lookupByUUIDString(vm).XMLDesc(0))
    cdroms = [d for d in xml.iter("disk") if d.get("device") == "cdrom"]
    assert [s.get("file") for d in cdroms if (s := d.find("source")) is not None] == [str(cd)]
    assert node.driver.data_disks(vm) == {}
    assert "Lab-Passw0rd-2026" not in json.dumps([t.to_json() for t in node.trace(vm)])

    node.assign(vm, op="provisioned")
    node.agent.reconcile()
    assert not cd.exists()
    assert node.steps("provisioned") == ["provisioning-cd-removed"]       # the redefinition is that step's
    assert "redefined without it" in node.trace("provisioned")[0].message
    inst = node.driver.instance(vm)
    assert inst is not None and inst.active
    inactive = ET.fromstring(node.driver.conn.lookupByUUIDString(vm).XMLDesc(2))    # VIR_DOMAIN_XML_INACTIVE
    assert not [d for d in inactive.iter("disk") if d.get("device") == "cdrom"]


def test_a_provisioning_cd_no_assignment_wants_is_swept(node: Node) -> None:
    """A CD left behind (its VM deleted while the node was down, before a domain was defined; an agent killed
    while staging one) is removed by the next full pass: no password stays on the node."""
    cds = node.root / "state" / "resource-disks"
    cds.mkdir(parents=True, exist_ok=True)
    orphan, staging = cds / f"{uuid.uuid4()}.ovf-env.iso", cds / f".staging-{uuid.uuid4()}.ovf-env.iso-x1"
    orphan.write_bytes(b"an old CD")
    vm = str(uuid.uuid4())
    node.assign(vm, media=ProvisioningMedia(custom_data="I2Nsb3VkLWNvbmZpZwo="))
    node.agent.reconcile()
    assert not orphan.exists() and (cds / f"{vm}.ovf-env.iso").exists()
    staging.mkdir()
    (staging / "ovf-env.xml").write_text("a half-made CD")
    node.assign(vm, op="provisioned")
    node.agent.reconcile()
    assert [p.name for p in cds.iterdir()] == [f"{vm}.raw"]
