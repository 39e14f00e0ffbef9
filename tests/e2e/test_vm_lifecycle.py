"""Real VMs under libvirt (TCG here, KVM where it works), driven only through the CLI."""
from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from tests.e2e.conftest import LabHandle

MARKER = "fabriclab-guest: reached user space"


def domains() -> dict[str, str]:
    """uuid -> state of every domain on qemu:///system."""
    out = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--all", "--uuid"], capture_output=True,
                         text=True, check=True).stdout.split()
    states = {}
    for uuid in out:
        states[uuid] = subprocess.run(["virsh", "-c", "qemu:///system", "domstate", uuid], capture_output=True,
                                      text=True).stdout.strip()
    return states


def power(vm: dict[str, Any]) -> str:
    code: str = next(s["code"] for s in vm["properties"]["instanceView"]["statuses"]
                     if s["code"].startswith("PowerState"))
    return code


def serial(lab: LabHandle, name: str) -> str:
    return lab.fabric("vm", "get-serial-output", "-g", "E2E", "-n", name).stdout


def test_create_boots_the_guest_and_every_lifecycle_action_converges(lab: LabHandle) -> None:
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "life", "--image", "fabriclab:busybox:lab:latest",
                  "--size", "Lab_A0")
    vm_id = vm["properties"]["vmId"]
    assert vm["properties"]["provisioningState"] == "Succeeded"
    assert power(vm) == "PowerState/running"
    view = vm["properties"]["instanceView"]
    assert view["nodeName"] in ("node-1", "node-2") and view["hypervisor"] in ("kvm", "qemu")
    assert vm["properties"]["storageProfile"]["imageReference"]["exactVersion"].startswith("1.0.")
    assert MARKER in serial(lab, "life") and "hostname life" in serial(lab, "life")
    assert domains()[vm_id] == "running"
    disk = lab.os_disk_bodies(vm_id)[0]
    info = subprocess.run(["qemu-img", "info", "-U", str(disk)], capture_output=True, text=True).stdout
    assert "backing file format: vpc" in info and "disk.vhd" in info   # an overlay, not a copy

    lab.fabric("vm", "stop", "-g", "E2E", "-n", "life")
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "life", "--instance-view")
    assert power(vm) == "PowerState/stopped" and domains()[vm_id] == "shut off"

    lab.fabric("vm", "start", "-g", "E2E", "-n", "life")
    assert domains()[vm_id] == "running"
    lab.fabric("vm", "restart", "-g", "E2E", "-n", "life")
    assert serial(lab, "life").count(MARKER) >= 3          # create, start, restart: three boots

    node = view["nodeName"]
    resource_disk = lab.root / "nodes" / node / "resource-disks" / f"{vm_id}.raw"
    assert resource_disk.exists()
    lab.fabric("vm", "deallocate", "-g", "E2E", "-n", "life")
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "life", "--instance-view")
    assert power(vm) == "PowerState/deallocated" and vm["properties"]["instanceView"].get("nodeName", "") == ""
    assert vm_id not in domains() and disk.exists() and not resource_disk.exists()

    lab.fabric("vm", "start", "-g", "E2E", "-n", "life")
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "life", "--instance-view")
    assert power(vm) == "PowerState/running"
    assert MARKER in serial(lab, "life")

    lab.fabric("vm", "delete", "-g", "E2E", "-n", "life", "--yes")
    assert vm_id not in domains() and not disk.exists()
    store = lab.store()
    leftovers = [k for k, v in store.raw_items("/fabriclab/")
                 if vm_id in k or vm_id.encode() in v and "/traces/" not in k and "/operations/" not in k]
    store.close()
    assert leftovers == []
    assert lab.fabric("vm", "show", "-g", "E2E", "-n", "life", check=False).returncode == 1


def test_two_vms_spread_over_both_nodes(lab: LabHandle) -> None:
    for name in ("spread-a", "spread-b"):
        lab.fabric("vm", "create", "-g", "E2E", "-n", name, "--image", "fabriclab:busybox:lab:latest",
                   "--size", "Lab_A0", "--no-wait")
    ops = [lab.json("vm", "show", "-g", "E2E", "-n", n)["properties"]["lastOperationId"]
           for n in ("spread-a", "spread-b")]
    nodes = set()
    for name in ("spread-a", "spread-b"):
        vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
        nodes.add(vm["properties"]["instanceView"]["nodeName"])
    assert nodes == {"node-1", "node-2"}
    for op in ops:
        trace = lab.fabric("operation", "show", op, "--trace").stdout
        assert "guest-ready" in trace or "InProgress" in trace
    for name in ("spread-a", "spread-b"):
        lab.fabric("vm", "delete", "-g", "E2E", "-n", name, "--yes")


def test_delete_of_a_deallocated_vm_removes_its_disk(lab: LabHandle) -> None:
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "dealloc-del", "--image", "fabriclab:busybox:lab:latest",
                  "--size", "Lab_A0")
    vm_id = vm["properties"]["vmId"]
    lab.fabric("vm", "deallocate", "-g", "E2E", "-n", "dealloc-del")
    disk = lab.os_disk_bodies(vm_id)[0]
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "dealloc-del", "--yes")
    assert not disk.exists() and vm_id not in domains()
    assert lab.fabric("vm", "show", "-g", "E2E", "-n", "dealloc-del", check=False).returncode == 1


def test_vm_boots_from_a_leased_os_disk_blob_released_on_delete(lab: LabHandle) -> None:
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "leased", "--image", "fabriclab:busybox:lab:latest",
                  "--size", "Lab_A0", "--os-disk-delete-option", "Detach")
    assert power(vm) == "PowerState/running" and MARKER in serial(lab, "leased")
    uri = vm["properties"]["storageProfile"]["osDisk"]["vhd"]["uri"]
    account, container, blob = uri.split("/")[3:6]
    ref = ["--account-name", account, "-c", container, "-n", blob]
    shown = lab.json("storage", "blob", "show", *ref)
    assert shown["properties"]["blobType"] == "PageBlob"
    assert shown["properties"]["lease"] == {"state": "leased", "status": "locked", "duration": "infinite"}
    r = lab.fabric("storage", "blob", "delete", *ref, check=False)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["code"] == "LeaseIdMissing"
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "leased", "--yes")
    kept = lab.json("storage", "blob", "show", *ref)          # Detach: the blob stays, unleased
    assert kept["properties"]["lease"]["state"] == "available"
    assert "attachedTo" not in kept["metadata"]
    lab.fabric("storage", "blob", "delete", *ref)
    assert lab.fabric("storage", "blob", "show", *ref, check=False).returncode == 1


def test_data_disks_hot_plug_into_a_running_guest_within_the_size_limit(lab: LabHandle) -> None:
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "disks", "--image", "fabriclab:busybox:lab:latest",
                  "--size", "Lab_A0")                                  # Lab_A0: maxDataDiskCount 1
    vm_id = vm["properties"]["vmId"]
    lab.fabric("vm", "disk", "attach", "-g", "E2E", "--vm-name", "disks", "--name", "data1", "--new",
               "--size-gb", "1")
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "disks", "--instance-view")
    data = vm["properties"]["storageProfile"]["dataDisks"]
    assert [(d["lun"], d["name"], d["createOption"], d["diskSizeGb"]) for d in data] == [(0, "data1", "Empty", 1)]
    assert vm["properties"]["provisioningState"] == "Succeeded"
    deadline = time.monotonic() + 30          # the guest's watcher looks once a second
    while "block device sda" not in serial(lab, "disks") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert "fabriclab-guest: block device sda (2097152 sectors)" in serial(lab, "disks")
    account, container, blob = data[0]["vhd"]["uri"].split("/")[3:6]
    leased = lab.json("storage", "blob", "show", "--account-name", account, "-c", container, "-n", blob)
    assert leased["properties"]["lease"]["state"] == "leased" and leased["metadata"]["role"] == "dataDisk"

    r = lab.fabric("vm", "disk", "attach", "-g", "E2E", "--vm-name", "disks", "--name", "data2", "--new",
                   "--size-gb", "1", check=False)
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "OperationNotAllowed" and "Lab_A0 is 1" in err["message"]

    lab.fabric("vm", "disk", "detach", "-g", "E2E", "--vm-name", "disks", "--name", "data1")
    assert lab.json("vm", "show", "-g", "E2E", "-n", "disks")["properties"]["storageProfile"]["dataDisks"] == []
    kept = lab.json("storage", "blob", "show", "--account-name", account, "-c", container, "-n", blob)
    assert kept["properties"]["lease"]["state"] == "available"
    # an existing unleased disk can be attached again (to a stopped VM: it is there at the next boot)
    lab.fabric("vm", "stop", "-g", "E2E", "-n", "disks")
    lab.fabric("vm", "disk", "attach", "-g", "E2E", "--vm-name", "disks", "--name", "data1")
    lab.fabric("vm", "start", "-g", "E2E", "-n", "disks")
    boots = serial(lab, "disks").split("fabriclab-guest: reached user space")
    assert "block device sda" in boots[-1]
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "disks", "--yes")
    assert vm_id not in domains()
    released = lab.json("storage", "blob", "show", "--account-name", account, "-c", container, "-n", blob)
    assert released["properties"]["lease"]["state"] == "available"       # data disks outlive the VM


def _last_boot_resource_line(lab: LabHandle, name: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        last = serial(lab, name).split(MARKER)[-1]
        for line in last.splitlines():
            if "fabriclab-agent: resource disk" in line:
                return line
        time.sleep(1)
    raise AssertionError(serial(lab, name))


def _resource_disk_view(lab: LabHandle, name: str) -> str:
    """The instance view's word for the temporary disk, once the guest agent has reported it for this boot."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        view = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")["properties"]["instanceView"]
        if view.get("resourceDisk", {}).get("state"):
            return str(view["resourceDisk"]["state"])
        time.sleep(1)
    raise AssertionError(f"no resourceDisk in the instance view of {name}")


def test_the_temporary_disk_holds_swap_survives_restart_and_is_fresh_after_deallocate(lab: LabHandle) -> None:
    lab.fabric("vm", "create", "-g", "E2E", "-n", "tempdisk", "--image", "fabriclab:busybox:lab:latest",
               "--size", "Lab_A0")
    first = _last_boot_resource_line(lab, "tempdisk")
    assert "formatted now" in first and "DATALOSS_WARNING_README.txt" in first and "swapfile" in first
    assert "swap 65532 kB" in first
    assert _resource_disk_view(lab, "tempdisk") == "Fresh"
    lab.fabric("vm", "restart", "-g", "E2E", "-n", "tempdisk")
    assert "kept: it survived this restart" in _last_boot_resource_line(lab, "tempdisk")
    assert _resource_disk_view(lab, "tempdisk") == "Kept"
    lab.fabric("vm", "deallocate", "-g", "E2E", "-n", "tempdisk")
    lab.fabric("vm", "start", "-g", "E2E", "-n", "tempdisk")
    assert "formatted now: a fresh disk" in _last_boot_resource_line(lab, "tempdisk")
    assert _resource_disk_view(lab, "tempdisk") == "Fresh"
    # redeploy: to the other node, with a new temporary disk; the old node wipes its copy
    before = lab.json("vm", "show", "-g", "E2E", "-n", "tempdisk", "--instance-view")["properties"]
    old_node, vm_id = before["instanceView"]["nodeName"], before["vmId"]
    lab.fabric("vm", "restart", "-g", "E2E", "-n", "tempdisk")        # a kept disk first, to see it go
    assert _resource_disk_view(lab, "tempdisk") == "Kept"
    lab.fabric("vm", "redeploy", "-g", "E2E", "-n", "tempdisk")
    after = lab.json("vm", "show", "-g", "E2E", "-n", "tempdisk", "--instance-view")["properties"]
    assert after["instanceView"]["nodeName"] != old_node and after["provisioningState"] == "Succeeded"
    assert "formatted now: a fresh disk" in _last_boot_resource_line(lab, "tempdisk")
    assert _resource_disk_view(lab, "tempdisk") == "Fresh"
    assert not (lab.root / "nodes" / old_node / "resource-disks" / f"{vm_id}.raw").exists()
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "tempdisk", "--yes")
