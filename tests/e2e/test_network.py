"""VMs on a virtual network: the reserved DIP, hostname and DNS suffix over DHCP, DNS, and a clean teardown."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import LabHandle
from tests.e2e.test_vm_lifecycle import serial

AGENT = Path(__file__).resolve().parents[2] / "images" / "busybox-lab" / "rootfs" / "usr" / "sbin" / "fabriclab-agent"


def _agent_version() -> str:
    m = re.search(r"^VERSION=(\S+)$", AGENT.read_text(), re.M)
    assert m is not None, AGENT
    return m[1]


AGENT_VERSION = _agent_version()


def netns() -> set[str]:
    return set(subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split())


def test_two_vms_get_their_reservations_and_resolve_by_name(lab: LabHandle) -> None:
    lab.fabric("network", "vnet", "create", "-g", "E2E", "-n", "blog-vnet", "--address-prefix", "10.9.0.0/16",
               "--subnet-name", "default", "--subnet-prefix", "10.9.0.0/24")
    vnet = lab.json("network", "vnet", "show", "-g", "E2E", "-n", "blog-vnet")
    suffix, vni = vnet["properties"]["dnsSuffix"], vnet["properties"]["vni"]
    names = ["netvm-a", "netvm-b"]
    for name in names:
        lab.fabric("vm", "create", "-g", "E2E", "-n", name, "--image", "fabriclab:busybox:lab:latest",
                   "--size", "Lab_A0", "--vnet-name", "blog-vnet", "--subnet", "default", "--no-wait")
    nodes = {}
    for name in names:
        op = lab.json("vm", "show", "-g", "E2E", "-n", name)["properties"]["lastOperationId"]
        assert lab.fabric("operation", "wait", op, check=False).returncode == 0
        vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
        nic_name = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].rsplit("/", 1)[1]
        nic = lab.json("network", "nic", "show", "-g", "E2E", "-n", nic_name)
        ip = nic["properties"]["ipConfigurations"][0]["properties"]["privateIpAddress"]
        node = vm["properties"]["instanceView"]["nodeName"]
        nodes[name] = node
        assert nic["properties"]["node"] == node and nic["properties"]["bridge"].endswith(str(vni))
        out = serial(lab, name)
        lease = re.search(r"fabriclab-guest: dhcp eth0 (\S+) router (\S+) dns (\S+) domain (\S+) hostname (\S+) "
                          r"lease (\S+) wireserver (\S+)", out)
        assert lease is not None, out
        assert lease.groups() == (f"{ip}/24", "10.9.0.1", "10.9.0.1", suffix, name, "4294967295s", "10.9.0.1")
        assert f"fabriclab-guest: dns {name}.{suffix} -> {ip}" in out
    assert set(nodes.values()) == {"node-1", "node-2"}          # spread: one network on two nodes
    trace = lab.fabric("operation", "show", lab.json("vm", "show", "-g", "E2E", "-n", "netvm-b")["properties"][
        "lastOperationId"], "--trace").stdout
    assert "nic-claimed" in trace and "DHCP reservation written: " in trace and "dnsmasq" in trace
    for name in names:
        lab.fabric("vm", "delete", "-g", "E2E", "-n", name, "--yes")
    assert not any(ns.endswith(f"-{vni}") and ns.startswith("fabriclab-") for ns in netns())
    assert lab.json("network", "nic", "list", "-g", "E2E") == []
    lab.fabric("network", "vnet", "delete", "-g", "E2E", "-n", "blog-vnet")


def test_guest_agent_imds_user_data_and_resolving_the_other_vm(lab: LabHandle, tmp_path: Path) -> None:
    names = ["agent-a", "agent-b"]
    for me, other in (names, names[::-1]):
        script = tmp_path / f"{me}.sh"
        script.write_text(f"for i in $(seq 1 30); do\n"
                          f"  a=$(nslookup {other} 2>/dev/null | sed -n 's/^Address: *\\([0-9.]*\\)$/\\1/p' | tail -n 1)\n"
                          f"  [ -n \"$a\" ] && break; sleep 1\ndone\necho \"{other} is at $a\"\n"
                          f"for i in $(seq 1 30); do ping -c 1 -W 1 {other} >/dev/null 2>&1 && break; done\n"
                          f"ping -c 3 -W 2 {other} | grep 'packets transmitted'\n")
        lab.fabric("vm", "create", "-g", "E2E", "-n", me, "--image", "fabriclab:busybox:lab:latest",
                   "--size", "Lab_A0", "--user-data", str(script), "--no-wait")
    ips, placed = {}, set()
    for name in names:
        op = lab.json("vm", "show", "-g", "E2E", "-n", name)["properties"]["lastOperationId"]
        assert lab.fabric("operation", "wait", op, check=False).returncode == 0
        vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
        placed.add(vm["properties"]["instanceView"]["nodeName"])
        nic = vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].rsplit("/", 1)[1]
        ips[name] = lab.json("network", "nic", "show", "-g", "E2E", "-n", nic)[
            "properties"]["ipConfigurations"][0]["properties"]["privateIpAddress"]
    assert placed == {"node-1", "node-2"}
    for me, other in (names, names[::-1]):
        vm = lab.json("vm", "show", "-g", "E2E", "-n", me, "--instance-view")
        deadline = time.monotonic() + 60
        while "user data exited" not in serial(lab, me) and time.monotonic() < deadline:
            time.sleep(1)
        out = serial(lab, me)
        assert f"fabriclab-agent: IMDS: vmId {vm['properties']['vmId']}" in out   # its own id, no other
        assert f"user-data: {other} is at {ips[other]}" in out
        assert "user-data: 3 packets transmitted, 3 packets received" in out     # across nodes, over VXLAN
        assert "fabriclab-agent: reported Ready" in out
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            agent = lab.json("vm", "show", "-g", "E2E", "-n", me, "--instance-view")["properties"][
                "instanceView"].get("vmAgent") or {}
            if agent.get("statuses", [{}])[0].get("displayStatus") == "Ready":
                break
            time.sleep(1)
        assert agent["vmAgentVersion"] == AGENT_VERSION and agent["statuses"][0]["code"] == "ProvisioningState/succeeded"
    for name in names:
        lab.fabric("vm", "delete", "-g", "E2E", "-n", name, "--yes")


def test_a_guest_resolves_its_storage_account_and_reads_a_blob_by_sas(lab: LabHandle, tmp_path: Path) -> None:
    lab.fabric("storage", "account", "create", "-n", "e2escripts", "-g", "E2E")
    lab.fabric("storage", "container", "create", "-n", "scripts", "--account-name", "e2escripts")
    (tmp_path / "simple.sh").write_text("echo hello from a blob\n")
    lab.fabric("storage", "blob", "upload", "--account-name", "e2escripts", "-c", "scripts",
               "-f", str(tmp_path / "simple.sh"))
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    url = json.loads(lab.fabric("storage", "blob", "generate-sas", "--account-name", "e2escripts", "-c", "scripts",
                                "-n", "simple.sh", "--permissions", "r", "--expiry", expiry, "--guest-uri").stdout)
    assert url.startswith("http://e2escripts.blob.fabriclab.test/scripts/simple.sh?")
    script = tmp_path / "ud.sh"
    script.write_text(f"nslookup e2escripts.blob.fabriclab.test | grep 'canonical name'\n"
                      f"wget -q -O - '{url}'\n"
                      f"wget -q -O - '{url.split('sig=')[0]}sig=AAAA' || echo 'tampered SAS refused'\n")
    lab.fabric("vm", "create", "-g", "E2E", "-n", "blobreader", "--image", "fabriclab:busybox:lab:latest",
               "--size", "Lab_A0", "--user-data", str(script))
    deadline = time.monotonic() + 60
    while "user data exited" not in serial(lab, "blobreader") and time.monotonic() < deadline:
        time.sleep(1)
    out = serial(lab, "blobreader")
    assert re.search(r"user-data: e2escripts\.blob\.fabriclab\.test\s+canonical name = "
                     r"blob\.local-stamp1\.store\.fabriclab\.test", out), out
    assert "user-data: echo hello from a blob" in out          # the blob's content, printed by wget
    assert "user-data: tampered SAS refused" in out
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "blobreader", "--yes")
