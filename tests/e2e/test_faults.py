"""Faults: SIGKILL of a node agent or the controller mid-provisioning, orphan domains, lost heartbeats."""
from __future__ import annotations

import time
import uuid
from pathlib import Path

from fabric.model import NodeRecord
from fabric.store import keys
from nodeagent.hypervisor import DirectBoot, LibvirtDriver, VmSpec
from nodeagent.storage_backends import Disk
from tests.e2e.conftest import LabHandle
from tests.e2e.test_vm_lifecycle import domains, power

IMAGE = "fabriclab:busybox:lab:latest"


def create_no_wait(lab: LabHandle, name: str) -> tuple[str, str]:
    op = lab.json("vm", "create", "-g", "E2E", "-n", name, "--image", IMAGE, "--size", "Lab_A0", "--no-wait")
    vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
    return op["id"], vm["properties"]["vmId"]


def wait_ok(lab: LabHandle, op_id: str) -> None:
    r = lab.fabric("operation", "wait", op_id, check=False)
    assert r.returncode == 0, lab.fabric("operation", "show", op_id, "--trace").stdout


def assert_one_running_domain_and_clean_delete(lab: LabHandle, name: str, vm_id: str) -> None:
    vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
    assert vm["properties"]["provisioningState"] == "Succeeded" and power(vm) == "PowerState/running"
    assert domains().get(vm_id) == "running"
    assert len(lab.json("vm", "list", "-g", "E2E")) == len({v["name"] for v in lab.json("vm", "list", "-g", "E2E")})
    lab.fabric("vm", "delete", "-g", "E2E", "-n", name, "--yes")
    assert vm_id not in domains()
    assert list(lab.os_disk_bodies(vm_id)) == []


def test_node_agent_killed_mid_provisioning_converges(lab: LabHandle) -> None:
    op_id, vm_id = create_no_wait(lab, "kill-agent")
    node = lab.json("vm", "show", "-g", "E2E", "-n", "kill-agent", "--instance-view")[
        "properties"]["instanceView"]["nodeName"]
    lab.lab.procs.kill(node)
    lab.up()                       # lab up is idempotent: it starts only what is missing
    wait_ok(lab, op_id)
    assert_one_running_domain_and_clean_delete(lab, "kill-agent", vm_id)


def test_controller_killed_mid_provisioning_converges(lab: LabHandle) -> None:
    op_id, vm_id = create_no_wait(lab, "kill-ctl")
    lab.lab.procs.kill("controller")          # the node keeps what it was told; the new controller tells the rest
    lab.up()
    wait_ok(lab, op_id)
    assert_one_running_domain_and_clean_delete(lab, "kill-ctl", vm_id)


def _spec(vm_uuid: str, lab: LabHandle) -> VmSpec:
    return VmSpec(uuid=vm_uuid, name=f"fl-orphan-{vm_uuid[:8]}", resource_group="E2E", vm_name="orphan", cores=1,
                  memory_mb=64, boot=DirectBoot("/nonexistent/vmlinuz", "/nonexistent/initrd", ""),
                  os_disk=Disk("file", "/nonexistent/a"), resource_disk=Disk("file", "/nonexistent/b", "raw"),
                  console_log=str(lab.root / "nodes" / "node-1" / "console" / "orphan.log"))


AWAY_S = 4.0       # a controller restart: longer than a heartbeat, shorter than a node's lease (NODE_LEASE_TTL_S;
                   # an outage longer than that and the fabric counts the nodes as gone until they return)


def test_vms_keep_running_while_the_control_plane_is_away(lab: LabHandle) -> None:
    """Nodes keep their VMs while the controller is gone (they cannot reach the node API, so they change
    nothing and fence nothing) and report again when it is back."""
    op_id, vm_id = create_no_wait(lab, "away")
    wait_ok(lab, op_id)
    lab.lab.procs.kill("controller")
    deadline = time.monotonic() + AWAY_S
    while time.monotonic() < deadline:
        assert domains().get(vm_id) == "running", "a node stopped a VM while the control plane was away"
        time.sleep(1.0)
    lab.up()
    assert [n["name"] for n in lab.json("node", "list")] == ["node-1", "node-2"]
    assert_one_running_domain_and_clean_delete(lab, "away", vm_id)


def test_orphan_domains_are_fenced_and_foreign_ones_left_alone(lab: LabHandle) -> None:
    fabric_id = lab.lab.config()["fabric_id"]
    orphan, foreign = str(uuid.uuid4()), str(uuid.uuid4())
    host = LibvirtDriver("qemu:///system", "node-1", fabric_id)
    other = LibvirtDriver("qemu:///system", "node-1", "another-fabric")
    try:
        host.spawn(_spec(orphan, lab))
        other.spawn(_spec(foreign, lab))
        deadline = time.monotonic() + 20
        while orphan in domains() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert orphan not in domains(), "the agent did not fence a domain no assignment names"
        assert foreign in domains(), "the agent touched a domain of another fabric"
    finally:
        other.destroy(foreign)
        host.destroy(orphan)


def test_a_node_whose_agent_dies_leaves_placement_and_comes_back(lab: LabHandle) -> None:
    store = lab.store()
    try:
        lab.lab.procs.kill("node-2")
        deadline = time.monotonic() + 30
        while store.get(keys.node("node-2"), NodeRecord) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert store.get(keys.node("node-2"), NodeRecord) is None, "the heartbeat lease did not expire"
        states = {n["name"]: n["state"] for n in lab.json("node", "list")}
        assert states == {"node-1": "Ready", "node-2": "NotReady"}          # enrolled still, not placed on
        lab.up()
        assert {n["name"]: n["state"] for n in lab.json("node", "list")} == {"node-1": "Ready", "node-2": "Ready"}
    finally:
        store.close()


def test_delete_while_the_node_is_down_then_the_node_fences_on_return(lab: LabHandle) -> None:
    op_id, vm_id = create_no_wait(lab, "node-down")
    wait_ok(lab, op_id)
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "node-down", "--instance-view")
    node = vm["properties"]["instanceView"]["nodeName"]
    resource_disk = lab.root / "nodes" / node / "resource-disks" / f"{vm_id}.raw"
    assert resource_disk.exists()
    store = lab.store()
    try:
        lab.lab.procs.kill(node)                     # the domain keeps running under libvirtd
        deadline = time.monotonic() + 30
        while store.get(keys.node(node), NodeRecord) and time.monotonic() < deadline:
            time.sleep(0.5)
        vm = lab.json("vm", "show", "-g", "E2E", "-n", "node-down", "--instance-view")
        assert power(vm) == "PowerState/unknown"
        lab.fabric("vm", "delete", "-g", "E2E", "-n", "node-down", "--yes")
        assert list(lab.os_disk_bodies(vm_id)) == []
        assert domains().get(vm_id) == "running"     # nobody could stop it yet
        lab.up()                                     # the node returns and fences what it no longer owns
        deadline = time.monotonic() + 20
        while vm_id in domains() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert vm_id not in domains() and not resource_disk.exists()
    finally:
        store.close()


def test_a_node_error_fails_the_operation_with_its_message(lab: LabHandle) -> None:
    import json
    gallery = lab.root / "gallery" / "fabriclab" / "busybox" / "lab"
    good = next(d for d in gallery.iterdir() if d.name.startswith("1.0."))
    for version, disk, kernel in (("0.0.1", "missing.vhd", "vmlinuz"), ("0.0.2", str(good / "disk.vhd"),
                                                                          "missing-vmlinuz")):
        (gallery / version).mkdir()
        (gallery / version / "image.json").write_text(json.dumps({
            "disk": disk, "diskFormat": "vpc", "kernel": kernel, "initrd": "initrd.img",
            "cmdline": "console=ttyS0", "bootMarker": "never"}))
    # the storage service cannot make the OS disk: refused at once, nothing created
    r = lab.fabric("vm", "create", "-g", "E2E", "-n", "broken", "--image", "fabriclab:busybox:lab:0.0.1",
                   "--size", "Lab_A0", check=False)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["code"] == "DiskCreationFailed"
    assert lab.fabric("vm", "show", "-g", "E2E", "-n", "broken", check=False).returncode == 1
    # the node cannot start the domain: the operation fails with the node's message
    r = lab.fabric("vm", "create", "-g", "E2E", "-n", "broken", "--image", "fabriclab:busybox:lab:0.0.2",
                   "--size", "Lab_A0", check=False)
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "NodeOperationFailed" and "missing-vmlinuz" in err["message"]
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "broken")
    assert vm["properties"]["provisioningState"] == "Failed"
    assert vm["properties"]["error"]["code"] == "NodeOperationFailed"
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "broken", "--yes")
    assert lab.fabric("vm", "show", "-g", "E2E", "-n", "broken", check=False).returncode == 1


def test_controller_killed_mid_deployment_resumes_it(lab: LabHandle, tmp_path: Path) -> None:
    """The deployment engine is level-based: a new controller finds the deployment Running and carries it on,
    adopting what the old one had started, so each resource is made once."""
    from pathlib import Path
    script = tmp_path / "ok.sh"
    script.write_text("echo resumed\n")
    url = lab.fabric("storage", "blob", "upload", "--file", str(script), "--sas-hours", "1", "--guest-uri").stdout.strip()
    template = str(Path(__file__).resolve().parents[2] / "examples" / "blog-vm.json")
    op = lab.json("deployment", "create", "-g", "E2E", "-n", "resume", "--template-file", template, "--parameters",
                  f"scriptUri={url}", "vmName=resumevm", "command=sh ok.sh", "--no-wait")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:     # kill it once the VM is being made
        ops = lab.json("deployment", "operation", "list", "-g", "E2E", "-n", "resume")
        if ops:
            break
        time.sleep(0.2)
    lab.lab.procs.kill("controller")        # returns once it is dead
    lab.up()
    wait_ok(lab, op["id"])
    ops = lab.json("deployment", "operation", "list", "-g", "E2E", "-n", "resume")
    assert [o["properties"]["provisioningState"] for o in ops] == ["Succeeded", "Succeeded"]
    assert [v["name"] for v in lab.json("vm", "list", "-g", "E2E")].count("resumevm") == 1
    ext = lab.json("vm", "extension", "show", "-g", "E2E", "--vm-name", "resumevm", "-n", "CustomScriptExtension",
                   "--instance-view")
    assert ext["properties"]["sequenceNumber"] == 0
    assert ext["properties"]["instanceView"]["substatuses"][0]["message"] == "resumed"
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "resumevm", "--yes")
