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
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.network import naming
from nodeagent.netsvc import iproute
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.networks import Networks
from nodeagent.netsvc.portsec import Port
from tests.conftest import require
from tests.integration.netsvc.test_networks import spec

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
def guests(networks: Networks) -> Iterator[tuple[Guest, Guest]]:
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


def test_legitimate_traffic_flows_dhcp_arp_neighbour_and_imds(networks: Networks,
                                                              guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    assert lease(a) == A.ip                                   # DHCP from 0.0.0.0 and dnsmasq's offer
    configure(a, A.ip)
    configure(b, B.ip)
    assert a.sh(f"busybox ping -c 2 -W 2 {B.ip}").returncode == 0          # ARP and IPv4 to a neighbour
    assert json.loads(a.imds())["compute"]["vmId"] == "vm-a-id"


def test_the_wireserver_address_is_offered_even_to_a_client_that_does_not_ask(networks: Networks,
                                                                             guests: tuple[Guest, Guest],
                                                                             tmp_path: Path) -> None:
    """Option 245 (the wireserver's address, which the reference's guest agents look for) in every DHCP answer:
    busybox's client, like many, does not list it among the options it requests."""
    a, _ = guests
    tmp_path.chmod(0o755)
    script, seen = tmp_path / "dhcp-script", tmp_path / "dhcp-env"
    script.write_text(f"#!/bin/sh\n[ \"$1\" = bound ] && env > {seen}\nexit 0\n")
    script.chmod(0o755)
    a.sh(f"busybox udhcpc -i eth0 -n -q -f -t 3 -T 1 -s {script} 2>&1", timeout=30)
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert env.get("ip") == A.ip
    assert env.get("opt245") == "0a4d0001", f"no option 245 (10.77.0.1) in the answer: {sorted(env)}"


def test_a_guest_cannot_take_its_neighbours_address(networks: Networks,
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


def test_a_guest_cannot_take_its_neighbours_mac(networks: Networks,
                                                guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    iproute.run("ip", "link", "set", "eth0", "down", ns=b.ns)
    a.sh(f"ip link set eth0 down; ip link set eth0 address {B.mac}; ip link set eth0 up")
    configure(a, B.ip)
    assert a.imds() == ""


def test_gratuitous_arp_for_the_gateway_does_not_reach_the_neighbour(networks: Networks,
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


def test_a_rogue_dhcp_server_answers_nobody(networks: Networks,
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


def test_filters_go_with_the_nic_and_a_flushed_table_comes_back(networks: Networks,
                                                                guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    table = networks.ports.table
    assert networks.secure([a.port(), b.port()]) == {}                  # unchanged, checked a moment ago
    iproute.run("nft", "delete", "table", "bridge", table)              # someone flushed the ruleset
    networks.port_recheck_s = 0                                         # the agent's next check
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


def test_a_restarted_agent_changes_nothing_that_is_in_place(networks: Networks,
                                                            guests: tuple[Guest, Guest]) -> None:
    again = Networks(networks.root.parent, networks.tag)
    assert again.secure([g.port() for g in guests]) == {}


# A DHCP server that answers from another source port than 67 (clients only look at the destination, 68)
ROGUE_FROM_1067 = r"""
import select, socket, struct, sys, time
me = sys.argv[1]
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
rx.bind(("0.0.0.0", 67))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tx.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
tx.bind((me, 1067))
print("ready", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    if not select.select([rx], [], [], 0.5)[0]:
        continue
    req = rx.recv(2048)
    if len(req) < 244 or req[0] != 1:
        continue
    kind = {1: 2, 3: 5}.get(req[242])          # DISCOVER -> OFFER, REQUEST -> ACK (option 53 comes first)
    if kind is None:
        continue
    ip = socket.inet_aton
    reply = (bytes([2, 1, 6, 0]) + req[4:8] + b"\0\0\x80\0" + bytes(4) + ip("10.77.0.100") + ip(me) + bytes(4)
             + req[28:44] + bytes(192) + b"\x63\x82\x53\x63" + bytes([53, 1, kind, 54, 4]) + ip(me)
             + bytes([51, 4]) + struct.pack("!I", 3600) + bytes([1, 4, 255, 255, 255, 0, 3, 4]) + ip(me) + b"\xff")
    tx.sendto(reply, ("255.255.255.255", 68))
"""

# A DHCPDECLINE sent for another VM: its MAC in chaddr, its address as the one declined
DECLINE_FOR = r"""
import os, socket, sys
me, mac, ip, server = sys.argv[1:5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, 68))
msg = (bytes([1, 1, 6, 0]) + os.urandom(4) + bytes(20) + bytes.fromhex(mac.replace(":", "")) + bytes(10 + 192)
       + b"\x63\x82\x53\x63" + bytes([53, 1, 4, 50, 4]) + socket.inet_aton(ip) + bytes([54, 4])
       + socket.inet_aton(server) + b"\xff")
s.sendto(msg, (server, 67))
"""


def test_a_dhcp_answer_from_any_port_reaches_nobody(networks: Networks,
                                                    guests: tuple[Guest, Guest]) -> None:
    a, _ = guests
    configure(a, A.ip)
    stranger = dataclasses.replace(B, mac="52:54:00:00:11:0d", ip="10.77.0.10")
    c = plug(networks, stranger, "d")
    rogue = subprocess.Popen(["ip", "netns", "exec", a.ns, "python3", "-c", ROGUE_FROM_1067, A.ip],
                             stdout=subprocess.PIPE, text=True)
    try:
        networks.secure([a.port(), guests[1].port(), c.port()])
        assert rogue.stdout is not None and rogue.stdout.readline().strip() == "ready"
        before = dropped(networks, a.tap, "udp dport 68")
        assert lease(c) == ""
        assert dropped(networks, a.tap, "udp dport 68") > before
    finally:
        rogue.kill()
        rogue.wait()
        iproute.delete_link(c.tap)
        iproute.delete_netns(c.ns)


def test_a_guest_cannot_decline_its_neighbours_address(networks: Networks,
                                                       guests: tuple[Guest, Guest]) -> None:
    a, b = guests
    configure(a, A.ip)
    before = dropped(networks, a.tap, "udp dport 67 @ih")
    subprocess.run(["ip", "netns", "exec", a.ns, "python3", "-c", DECLINE_FOR, A.ip, B.mac, B.ip, "10.77.0.1"],
                   check=True)
    assert dropped(networks, a.tap, "udp dport 67 @ih") == before + 1
    assert lease(b) == B.ip                                   # B's reservation still stands
    log = (networks.root / str(VNI) / "dnsmasq.log").read_text()
    assert "declined" not in log
    assert lease(a) == A.ip                                   # and A's own requests still pass
