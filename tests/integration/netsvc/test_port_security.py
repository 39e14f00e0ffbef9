"""Port security on a real bridge: guests in namespaces behind taps the agent filters with nftables.

Each attack of the shared-lab finding, from a namespace that stands in for a guest on the network's bridge
(the e2e suite repeats them from real VMs): address spoofing, gratuitous ARP for another's address, a rogue
DHCP server; and the traffic a guest needs (DHCP, ARP, a neighbour, IMDS) still flows.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.network import naming
from nodeagent.netsvc import iproute
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.networks import Networks
from nodeagent.netsvc.portsec import Port
from tests.conftest import require
from tests.integration.netsvc.test_networks import networks, spec  # noqa: F401 - the fixture

VNI = 9011
A = Reservation("52:54:00:00:11:0a", "10.77.0.4", "vm-a")
B = Reservation("52:54:00:00:11:0b", "10.77.0.6", "vm-b")
IMDS = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"


@dataclasses.dataclass
class Guest:
    ns: str
    tap: str
    nic: Reservation

    def sh(self, cmd: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns, "busybox", "sh", "-c", cmd], capture_output=True,
                              text=True, timeout=timeout)

    def get(self, url: str, *headers: str) -> str:
        """The body answered to a GET from this guest ("" when nothing answers within 2 s)."""
        args = [a for h in headers for a in ("-H", h)]
        return subprocess.run(["ip", "netns", "exec", self.ns, "curl", "-s", "-m", "2", *args, url],
                              capture_output=True, text=True).stdout

    def imds(self) -> str:
        return self.get(IMDS, "Metadata: true")

    def port(self) -> Port:
        return Port(self.tap, self.nic.mac, self.nic.ip)


def plug(networks: Networks, nic: Reservation, name: str) -> Guest:
    """A namespace whose eth0 (the NIC's MAC) is the peer of a tap on the network's bridge, as a VM's is."""
    tap = naming.tap(networks.tag, nic.mac)
    ns = f"fabriclab-test-{name}-{networks.tag}"
    iproute.ensure_netns(ns)
    iproute.run("ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
    iproute.run("ip", "link", "set", tap, "master", networks.bridge(VNI), "up")
    iproute.run("ip", "link", "set", "eth0", "address", nic.mac, ns=ns)
    iproute.run("ip", "link", "set", "eth0", "up", ns=ns)
    return Guest(ns, tap, nic)


def configure(g: Guest, ip: str) -> None:
    g.sh(f"ip addr flush dev eth0; ip addr add {ip}/24 dev eth0; ip route add default via 10.77.0.1")


@pytest.fixture
def guests(networks: Networks) -> Iterator[tuple[Guest, Guest]]:  # noqa: F811 - the fixture
    require(shutil.which("nft") is not None, "nft (Debian nftables)")
    require(shutil.which("busybox") is not None and shutil.which("curl") is not None,
            "busybox (Debian busybox-static) and curl")
    docs = {n.ip: {"incarnation": 1, "compute": {"vmId": f"{n.name}-id", "name": n.name,
                                                   "userData": f"secret of {n.name}"}, "network": {}}
            for n in (A, B)}
    networks.converge({VNI: dataclasses.replace(spec(VNI, (A, B), (A, B)), metadata=docs)})
    made = [plug(networks, A, "a"), plug(networks, B, "b")]
    assert networks.secure([g.port() for g in made])
    yield made[0], made[1]
    for g in made:
        iproute.delete_link(g.tap)
        iproute.delete_netns(g.ns)


def lease(g: Guest) -> str:
    """The address a DHCP client on the guest is offered (empty when nobody answers)."""
    out = g.sh("busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s /bin/true 2>&1", timeout=30).stdout
    for line in out.splitlines():
        if "obtained" in line:
            return line.split("lease of ")[1].split()[0]
    return ""


def dropped(networks: Networks, tap: str, rule: str) -> int:
    """Packets the rule of the port's chain that starts with `rule` dropped so far."""
    out = iproute.run("nft", "list", "chain", "bridge", networks.ports.table, f"port-{tap}")
    line = next(x for x in out.splitlines() if x.strip().startswith(rule))
    return int(line.split("packets ")[1].split()[0])


def test_legitimate_traffic_flows_dhcp_arp_neighbour_and_imds(networks: Networks,  # noqa: F811
                                                              guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    assert lease(a) == A.ip                                   # DHCP from 0.0.0.0 and dnsmasq's offer
    configure(a, A.ip)
    configure(b, B.ip)
    assert a.sh(f"busybox ping -c 2 -W 2 {B.ip}").returncode == 0          # ARP and IPv4 to a neighbour
    assert json.loads(a.imds())["compute"]["vmId"] == "vm-a-id"


def test_a_guest_cannot_take_its_neighbours_address(networks: Networks,  # noqa: F811
                                                    guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    iproute.run("ip", "link", "set", "eth0", "down", ns=b.ns)     # the victim is quiet: only the filter decides
    configure(a, B.ip)                                            # a1: ip addr add <a3's address>
    before = dropped(networks, a.tap, "arp saddr ip") + dropped(networks, a.tap, "ip saddr !=")
    assert a.imds() == ""                                         # no IMDS document of B's, nothing at all
    assert a.get("http://10.77.0.1/machine?comp=goalstate", "x-ms-version: 2012-11-30") == ""
    assert dropped(networks, a.tap, "arp saddr ip") + dropped(networks, a.tap, "ip saddr !=") > before
    configure(a, A.ip)
    assert json.loads(a.imds())["compute"]["vmId"] == "vm-a-id"   # its own address still works


def test_a_guest_cannot_take_its_neighbours_mac(networks: Networks,  # noqa: F811
                                                guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    iproute.run("ip", "link", "set", "eth0", "down", ns=b.ns)
    a.sh(f"ip link set eth0 down; ip link set eth0 address {B.mac}; ip link set eth0 up")
    configure(a, B.ip)
    assert a.imds() == ""


def test_gratuitous_arp_for_the_gateway_does_not_reach_the_neighbour(networks: Networks,  # noqa: F811
                                                                     guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    configure(a, A.ip)
    configure(b, B.ip)
    assert b.sh("busybox ping -c 1 -W 2 10.77.0.1").returncode == 0      # B knows the gateway's MAC
    gateway_mac = iproute.run("ip", "-br", "link", "show", naming.SERVICE_IFACE,
                              ns=naming.service_ns(networks.tag, VNI)).split()[2]
    # a1: arping -U -s <gateway> (the address is put on its interface so that busybox may send from it)
    a.sh("ip addr add 10.77.0.1/32 dev eth0; busybox arping -U -c 3 -s 10.77.0.1 -I eth0 10.77.0.1")
    neigh = iproute.run("ip", "neigh", "show", "10.77.0.1", ns=b.ns)
    assert gateway_mac in neigh and A.mac not in neigh, neigh
    assert b.sh("busybox ping -c 1 -W 2 10.77.0.1").returncode == 0
    # and for the neighbour's address, towards the gateway (which then knows B's MAC from B's pings)
    a.sh(f"ip addr add {B.ip}/32 dev eth0; busybox arping -U -c 3 -s {B.ip} -I eth0 {B.ip}")
    neigh = iproute.run("ip", "neigh", "show", B.ip, ns=naming.service_ns(networks.tag, VNI))
    assert B.mac in neigh and A.mac not in neigh, neigh


def test_a_rogue_dhcp_server_answers_nobody(networks: Networks,  # noqa: F811
                                            guests: tuple[Guest, Guest], tmp_path: Path) -> None:
    a, b = guests
    configure(a, A.ip)
    # the fabric's dnsmasq has no reservation for this client: only a rogue server could answer it
    stranger = dataclasses.replace(B, mac="52:54:00:00:11:0c", ip="10.77.0.9")
    c = plug(networks, stranger, "c")
    try:
        networks.secure([a.port(), b.port(), c.port()])
        conf = tmp_path / "udhcpd.conf"
        (tmp_path / "leases").touch()
        conf.write_text(f"start 10.77.0.100\nend 10.77.0.110\ninterface eth0\nlease_file {tmp_path}/leases\n"
                        "opt router 10.77.0.4\nopt dns 10.77.0.4\n")
        rogue = subprocess.Popen(["ip", "netns", "exec", a.ns, "busybox", "udhcpd", "-f", str(conf)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            before = dropped(networks, a.tap, "udp sport 67")
            assert lease(c) == ""
            assert dropped(networks, a.tap, "udp sport 67") > before    # offers were sent, and dropped at a1's port
        finally:
            rogue.kill()
            rogue.wait()
    finally:
        iproute.delete_link(c.tap)
        iproute.delete_netns(c.ns)


def test_filters_go_with_the_nic_and_a_flushed_table_comes_back(networks: Networks,  # noqa: F811
                                                                guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    table = networks.ports.table
    iproute.run("nft", "delete", "table", "bridge", table)              # someone flushed the ruleset
    events = networks.secure([a.port(), b.port()])
    assert any("restored" in e for e in events[""])
    assert f"port-{a.tap}" in iproute.run("nft", "list", "table", "bridge", table)
    assert networks.secure([a.port(), b.port()]) == {}                  # idempotent
    assert "removed with its NIC" in networks.secure([a.port()])[b.tap][0]
    listing = iproute.run("nft", "list", "table", "bridge", table)
    assert f"port-{b.tap}" not in listing and f"port-{a.tap}" in listing
    # a tap of this node with no chain carries nothing
    configure(b, B.ip)
    assert b.sh("busybox ping -c 1 -W 1 10.77.0.1").returncode != 0
    networks.teardown()
    assert subprocess.run(["nft", "list", "table", "bridge", table], capture_output=True).returncode != 0


def test_a_restarted_agent_changes_nothing_that_is_in_place(networks: Networks,  # noqa: F811
                                                            guests: tuple[Guest, Guest]) -> None:
    again = Networks(networks.root.parent, networks.tag)
    assert again.secure([g.port() for g in guests]) == {}
