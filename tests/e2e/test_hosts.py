"""A cluster on three simulated hosts (fabric.lab.hosts): the control plane on one, set up with `fabric
cluster init`; node agents on the two others, enrolled with real join tokens over the test network, each
with its own libvirtd. Nothing is shared between the hosts but the kernel."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.lab.hosts import SimulatedHost, SimulatedHosts
from fabric.lab.processes import Processes
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
                          "--nbd-tls-dir", str(h.nbd_tls), "--image-keep", "0"])


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
        for h in hosts.hosts.values():
            h.run([sys.executable, "-m", "fabric.cli.main", "cluster", "stop", "--dir", str(h.root / "cp")])
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


def ping_script(path: Path, other: str) -> Path:
    """User data: resolve the other VM by name and ping it (on the other host: over VXLAN between the hosts)."""
    path.write_text(f"for i in $(seq 1 30); do ping -c 1 -W 1 {other} >/dev/null 2>&1 && break; done\n"
                    f"ping -c 3 -W 2 {other} | grep 'packets transmitted'\n")
    return path


def domstate(h: SimulatedHost, vm_id: str) -> str:
    return h.run(["virsh", "-c", "qemu:///system", "domstate", vm_id]).stdout.strip()


def test_vms_on_both_node_hosts_boot_over_the_network_reach_each_other_and_outlive_faults(cluster: Cluster) -> None:
    cluster.fabric("group", "create", "-n", "RG", "-l", "local")
    names = {"vm-1": "vm-2", "vm-2": "vm-1"}
    for me, other in names.items():
        cluster.fabric("vm", "create", "-g", "RG", "-n", me, "--image", "fabriclab:busybox:lab:latest",
                       "--size", "Lab_A0", "--no-wait", "--user-data",
                       str(ping_script(cluster.ctl.root / f"{me}.sh", other)))
    vms = {}
    for me in names:
        op = json.loads(cluster.fabric("vm", "show", "-g", "RG", "-n", me))["properties"]["lastOperationId"]
        cluster.fabric("operation", "wait", op)
        vms[me] = json.loads(cluster.fabric("vm", "show", "-g", "RG", "-n", me, "--instance-view"))["properties"]
    host_of = {me: cluster.hosts[p["instanceView"]["nodeName"]] for me, p in vms.items()}
    assert {h.name for h in host_of.values()} == set(NODES)        # one VM on each node host
    for me, p in vms.items():
        assert p["provisioningState"] == "Succeeded"
        xml = host_of[me].run(["virsh", "-c", "qemu:///system", "dumpxml", p["vmId"]]).stdout
        assert "protocol='nbd'" in xml and "tls='yes'" in xml and cluster.ctl.address in xml   # disk over NBD
        assert str(host_of[me].root / "state" / "images") in xml                            # kernel fetched
        trace = cluster.fabric("operation", "show", p["lastOperationId"], "--trace")
        assert "OS disk: nbd export d" in trace and f"on {cluster.ctl.address}:" in trace and "(TLS)" in trace
        wait_for(f"{me}'s user data", lambda: "user data exited" in cluster.fabric(
            "vm", "get-serial-output", "-g", "RG", "-n", me))
        assert "user-data: 3 packets transmitted, 3 packets received" in cluster.fabric(
            "vm", "get-serial-output", "-g", "RG", "-n", me)                               # across the hosts

    # a data disk attached to a running VM: exported to its node and hot-plugged over NBD too
    cluster.fabric("vm", "disk", "attach", "-g", "RG", "--vm-name", "vm-1", "-n", "data1", "--new", "--size-gb", "1")
    xml = host_of["vm-1"].run(["virsh", "-c", "qemu:///system", "dumpxml", vms["vm-1"]["vmId"]]).stdout
    assert xml.count("protocol='nbd'") == 2 and "<target dev='sda' bus='scsi'/>" in xml

    # a node agent killed: its VM runs on; restarted, it registers and reports again
    h = host_of["vm-1"]
    h.stop("agent", signal.SIGKILL)
    assert domstate(h, vms["vm-1"]["vmId"]) == "running"
    cluster.start_agent(h)
    wait_for("the node Ready again", lambda: cluster.nodes()[h.name]["state"] == "Ready")
    # the controller killed: the VMs run on; started again, it answers and the nodes report
    Processes(cluster.ctl.root / "cp").kill("controller")
    assert all(domstate(host_of[me], p["vmId"]) == "running" for me, p in vms.items())
    again = cluster.ctl.run([sys.executable, "-m", "fabric.cli.main", "cluster", "init", "--address",
                             cluster.ctl.address, "--dir", str(cluster.ctl.root / "cp"), "--admin-credential",
                             str(cluster.admin), "--name", "ctl"])
    assert again.returncode == 0, again.stderr
    wait_for("both nodes Ready", lambda: all(cluster.nodes()[n]["state"] == "Ready" for n in NODES))
    for me in names:
        view = json.loads(cluster.fabric("vm", "show", "-g", "RG", "-n", me, "--instance-view"))["properties"]
        assert view["provisioningState"] == "Succeeded" and view["instanceView"]["nodeName"] == host_of[me].name

    for me in names:
        cluster.fabric("vm", "delete", "-g", "RG", "-n", me, "--yes")
    for n in NODES:
        wait_for(f"{n}'s images evicted", lambda: not any((cluster.hosts[n].root / "state" / "images").glob("*")))


def test_a_control_plane_on_three_hosts_outlives_an_etcd_member_and_its_leader(cluster: Cluster) -> None:
    """Controllers and etcd members added on the node hosts with `fabric cluster add-controller` (on the
    first control-plane host) and `join-controller` (on the new one)."""
    for n in NODES:
        made = cluster.ctl.run([sys.executable, "-m", "fabric.cli.main", "cluster", "add-controller", "--address",
                                cluster.hosts[n].address, "--name", f"{n}-cp", "--out", str(cluster.ctl.root / f"{n}.bundle"),
                                "--dir", str(cluster.ctl.root / "cp")])
        assert made.returncode == 0, made.stderr
        bundle = cluster.hosts[n].root / "cp.bundle"                  # copied to the new host, as root
        shutil.copy(cluster.ctl.root / f"{n}.bundle", bundle)
        joined = cluster.hosts[n].run([sys.executable, "-m", "fabric.cli.main", "cluster", "join-controller",
                                       "--bundle", str(bundle), "--dir", str(cluster.hosts[n].root / "cp")])
        assert joined.returncode == 0, joined.stderr
    apis = {h: f"{cluster.hosts[h].address}:7450" for h in ("ctl", *NODES)}
    for api in apis.values():                                          # every controller answers
        cluster.fabric("--controller", api, "group", "list")
    Processes(cluster.hosts["hc"].root / "cp").kill("etcd")            # one member of three
    cluster.fabric("--controller", apis["hb"], "group", "create", "-n", "AfterEtcd", "-l", "local")
    assert "AfterEtcd" in cluster.fabric("--controller", apis["ctl"], "group", "list")
    Processes(cluster.ctl.root / "cp").kill("controller")             # the first controller, the leader so far
    wait_for("another controller leads", lambda: any(
        f"leading: {n}-cp runs the background work" in (cluster.hosts[n].root / "cp" / "logs" / "controller.log")
        .read_text() for n in NODES), timeout_s=30)
    cluster.fabric("--controller", apis["hb"], "group", "create", "-n", "AfterLeader", "-l", "local")
