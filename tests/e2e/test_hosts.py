"""A cluster on three simulated hosts (fabric.lab.hosts): the control plane on one, set up with `fabric
cluster init`; node agents on the two others, enrolled with real join tokens over the test network, each
with its own libvirtd. Nothing is shared between the hosts but the kernel."""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.lab.hosts import SimulatedHost, SimulatedHosts
from tests.conftest import require
from tests.e2e.conftest import E2E_ROOT

NODES = ("hb", "hc")
READY_S = 60.0


class Cluster:
    def __init__(self, hosts: SimulatedHosts) -> None:
        self.hosts = hosts
        self.ctl = hosts["ctl"]
        self.admin = self.ctl.root / "admin.json"

    def fabric(self, *args: str) -> str:
        """The CLI, on the control-plane host (a workstation of the test network)."""
        r = self.ctl.run([sys.executable, "-m", "fabric.cli.main", *args],
                         env={"FABRIC_CREDENTIALS": str(self.admin)})
        assert r.returncode == 0, f"fabric {' '.join(args)}: {r.stderr}"
        return r.stdout

    def nodes(self) -> dict[str, dict[str, object]]:
        return {n["name"]: n for n in json.loads(self.fabric("node", "list"))}

    def start_agent(self, h: SimulatedHost) -> None:
        # qemu: the KVM probe (8 s; nested KVM hangs here) is the lab's to test, not this one's
        h.spawn("agent", [sys.executable, "-m", "nodeagent.main", "--credential", str(h.root / "node.json"),
                          "--state-dir", str(h.root / "state"), "--power-off-on-exit", "--hypervisor", "qemu",
                          "--nbd-tls-dir", str(h.nbd_tls)])


def join_args(out: str) -> list[str]:
    line = out.strip().splitlines()[-1].split()
    assert line[:3] == ["sudo", "fabric-node-agent", "join"], out
    return line[3:]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    require(shutil.which("etcd") is not None, "etcd (Debian etcd-server)")
    require(shutil.which("nsenter") is not None and shutil.which("unshare") is not None, "util-linux nsenter")
    hosts = SimulatedHosts(E2E_ROOT / f"hosts-{os.getpid()}", ["ctl", *NODES], f"{os.getpid() % 100000}")
    try:
        hosts.up()
        c = Cluster(hosts)
        init = c.ctl.run([sys.executable, "-m", "fabric.cli.main", "cluster", "init", "--address", c.ctl.address,
                          "--dir", str(c.ctl.root / "cp"), "--admin-credential", str(c.admin), "--name", "ctl"])
        assert init.returncode == 0, init.stderr
        tokens = [join_args(init.stdout)[-1], join_args(c.fabric("node", "join-token", "create", "-o", "table"))[-1]]
        address = join_args(init.stdout)[0]
        for name, token in zip(NODES, tokens):
            h = hosts[name]
            joined = h.run([sys.executable, "-m", "nodeagent.main", "join", address, "--token", token, "--name", name,
                            "--credential", str(h.root / "node.json"), "--no-start"])
            assert joined.returncode == 0, joined.stderr
            c.start_agent(h)
        yield c
    finally:
        hosts.stop_all("agent")
        hosts["ctl"].run([sys.executable, "-m", "fabric.cli.main", "cluster", "stop", "--dir",
                          str(hosts["ctl"].root / "cp")])
        hosts.down()
        if not os.environ.get("FABRIC_KEEP_HOSTS"):
            shutil.rmtree(hosts.root, ignore_errors=True)


def wait_for(what: str, ok: object, timeout_s: float = READY_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.5)


def test_nodes_on_other_hosts_join_and_are_ready_with_their_addresses(cluster: Cluster) -> None:
    wait_for("both nodes Ready", lambda: all(cluster.nodes().get(n, {}).get("state") == "Ready" for n in NODES))
    nodes = cluster.nodes()
    assert {n: nodes[n]["address"] for n in NODES} == {n: cluster.hosts[n].address for n in NODES}
    for n in NODES:     # each host's libvirtd is its own: the machine's and the others' domains are not in it
        assert cluster.hosts[n].run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"]).stdout.strip() == ""


def test_vms_boot_on_both_node_hosts_from_images_over_https_and_disks_over_nbd(cluster: Cluster) -> None:
    cluster.fabric("group", "create", "-n", "RG", "-l", "local")
    made = {}
    for name in ("vm-b", "vm-c"):
        made[name] = json.loads(cluster.fabric("vm", "create", "-g", "RG", "-n", name, "--image",
                                               "fabriclab:busybox:lab:latest", "--size", "Lab_A0"))
    placed = {made[n]["properties"]["instanceView"]["nodeName"] for n in made}
    assert placed == set(NODES), placed                   # spread over the two node hosts
    for name, vm in made.items():
        assert vm["properties"]["provisioningState"] == "Succeeded"
        node = cluster.hosts[vm["properties"]["instanceView"]["nodeName"]]
        xml = node.run(["virsh", "-c", "qemu:///system", "dumpxml", vm["properties"]["vmId"]]).stdout
        assert "protocol='nbd'" in xml and "tls='yes'" in xml and cluster.ctl.address in xml
        assert str(node.root / "state" / "images") in xml          # the kernel fetched and checked
        serial = cluster.fabric("vm", "get-serial-output", "-g", "RG", "-n", name)
        assert "fabriclab-guest: reached user space" in serial
    for name in made:
        cluster.fabric("vm", "delete", "-g", "RG", "-n", name, "--yes")
    for n in NODES:
        wait_for(f"{n}'s images evicted", lambda: not any((cluster.hosts[n].root / "state" / "images").glob("*")))
