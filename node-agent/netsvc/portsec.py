"""Port security: a VM's port carries only that NIC's MAC and IP (Neutron's port security, in nftables).

Every frame a guest sends enters its network's bridge through the VM's tap,
whose name the agent chooses (`naming.tap`, set as the interface's target in
the domain XML; a tap of this node that has no chain carries nothing). One bridge-family table per node agent, `fabriclab-<tag>`,
holds a chain per port and a base chain on the bridge's prerouting hook that
sends each tap's frames to its chain through a verdict map. A port's chain
accepts:
    - frames from the NIC's own MAC only;
    - ARP whose sender is that MAC and that IP (or 0.0.0.0, an address probe):
      no gratuitous ARP for an address the port does not own;
    - IPv4 from the NIC's IP, or a DHCP request from 0.0.0.0 to the broadcast;
and drops DHCP server replies (UDP source port 67: no rogue DHCP server) and
every other ethertype (IPv6, VLAN tags, ...). The drops count packets, so
`nft list table bridge fabriclab-<tag>` shows what a port tried.

The kernel filters; nothing here sees traffic. The table is replaced whole in
one nft transaction (`nft -f`), so a port is never half-filtered, and rules
name taps before libvirt creates them: a guest's first frame is already
filtered. `converge` is idempotent and repairs a table someone flushed or
edited (it compares the kernel's listing with the one it made); the table
goes when the node has no VM port left, and only this table is ever touched.

Why the wireserver and IMDS may name a VM by its source address: with these
rules the bridge delivers to the service namespace only frames whose IP and
MAC are the sending port's own, the service veth and the VXLAN device are
isolated ports (another node's VMs never reach this node's services), and the
controller gives each address to one NIC. What would break it: a VM port
without its chain (someone deleting the table between two passes: the next
check, within about 10 s (Networks.secure), restores it), a host process writing frames
onto the bridge, or an address given to two NICs.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterable
from pathlib import Path

from fabric.files import write_atomic
from fabric.network import naming

from nodeagent.netsvc.iproute import NetError

NFT_TIMEOUT_S = 10
DHCP_SERVER_PORT = 67
DHCP_CLIENT_PORT = 68
CHADDR_BITS = 28 * 8      # where a BOOTP message's client hardware address starts


@dataclasses.dataclass(frozen=True, order=True)
class Port:
    tap: str      # the tap device's name on the bridge
    mac: str
    ip: str




def port_rules(p: Port) -> list[str]:
    """The rules of one port's chain, in order (the first verdict wins)."""
    mac = p.mac.replace(":", "").lower()
    return [f"ether saddr != {p.mac} counter drop",
            f"arp saddr ether != {p.mac} counter drop",
            f"arp saddr ip != {{ 0.0.0.0, {p.ip} }} counter drop",
            # a DHCP server's answer, from any port: clients only look at where it goes
            f"udp sport {DHCP_SERVER_PORT} counter drop",
            f"udp dport {DHCP_CLIENT_PORT} counter drop",
            # a DHCP request speaks for the hardware address inside it (chaddr, at byte 28 of BOOTP): its own
            f"udp dport {DHCP_SERVER_PORT} @ih,{CHADDR_BITS},48 != 0x{mac} counter drop",
            f"ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport {DHCP_CLIENT_PORT} udp dport {DHCP_SERVER_PORT}"
            " accept",
            f"ip saddr != {p.ip} counter drop",
            "ether type { ip, arp } accept",
            "counter drop"]


def ruleset(table: str, tap_prefix: str, ports: Iterable[Port], strays: Iterable[str] = ()) -> str:
    """The whole table as one nft transaction: (re)create it empty, delete it, define it anew. A tap of this
    node without a chain of its own (its NIC is not known here yet, or any more), and any other interface found
    on this node's bridges (`strays`: a tap libvirt named, of a VM defined before port security), carry
    nothing."""
    ports = sorted(ports)
    stray = "".join(f'    iifname "{name}" counter drop\n' for name in sorted(strays))
    chains = "".join(f"  chain port-{p.tap} {{\n" + "".join(f"    {r}\n" for r in port_rules(p)) + "  }\n"
                     for p in ports)
    vmap = ", ".join(f'"{p.tap}" : jump port-{p.tap}' for p in ports)
    return (f"table bridge {table}\ndelete table bridge {table}\n"
            f"table bridge {table} {{\n{chains}"
            "  chain ports {\n    type filter hook prerouting priority filter; policy accept;\n"
            f"    iifname vmap {{ {vmap} }}\n    iifname \"{tap_prefix}*\" counter drop\n{stray}  }}\n}}\n")


def _nft(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, timeout=NFT_TIMEOUT_S)
    if check and r.returncode != 0:
        raise NetError(f"nft {' '.join(args)}: {r.stderr.strip()}")
    return r


class PortSecurity:
    """The node agent's port filters: one nftables table it owns by name. What it last applied (the ports and
    the kernel's listing right after) is kept in `state_file`, so a restarted agent changes nothing that is
    still as it left it."""

    def __init__(self, tag: str, state_file: Path) -> None:
        self.table = f"fabriclab-{tag}"
        self.tap_prefix = naming.tap_prefix(tag)
        self.state_file = state_file
        self._ports, self._strays, self._listing = self._load()

    def _load(self) -> tuple[frozenset[Port], frozenset[str], str | None]:
        try:
            data = json.loads(self.state_file.read_text())
            return (frozenset(Port(**p) for p in data["ports"]), frozenset(data.get("strays", [])),
                    data["listing"])
        except (OSError, ValueError, KeyError, TypeError):
            return frozenset(), frozenset(), None

    def _save(self) -> None:
        write_atomic(self.state_file, json.dumps({"ports": [dataclasses.asdict(p) for p in sorted(self._ports)],
                                                  "strays": sorted(self._strays), "listing": self._listing}))

    def listing(self) -> str | None:
        """The table as the kernel has it (without counters), or None when it does not exist."""
        r = _nft("-s", "list", "table", "bridge", self.table, check=False)
        return r.stdout if r.returncode == 0 else None

    def converge(self, ports: Iterable[Port], strays: Iterable[str] = ()) -> dict[str, list[str]]:
        """Make the table filter exactly `ports` and shut `strays` (no port: no table). Returns what changed per
        tap ("" for the table), for the traces of the VMs concerned."""
        want = frozenset(ports)
        shut = frozenset(strays) if want else frozenset()
        have = self.listing()
        if want == self._ports and shut == self._strays and have == self._listing:
            return {}
        events: dict[str, list[str]] = {}
        if want:
            _nft("-f", "-", stdin=ruleset(self.table, self.tap_prefix, want, shut))
        elif have is not None:
            _nft("delete", "table", "bridge", self.table)
        for p in sorted(want - self._ports):
            events.setdefault(p.tap, []).append(
                f"port security on {p.tap}: only MAC {p.mac} and IP {p.ip} (ARP too), DHCP requests from 0.0.0.0 "
                f"for its own MAC, no DHCP server replies, nothing but IPv4 and ARP (nftables: table bridge "
                f"{self.table}, chain port-{p.tap})")
        for p in sorted(self._ports - want):
            events.setdefault(p.tap, []).append(f"port security on {p.tap} removed with its NIC")
        for name in sorted(shut - self._strays):
            events.setdefault("", []).append(f"{name} is on a bridge of this node without port security: it "
                                             f"carries nothing (table bridge {self.table})")
        if want and self._ports and have != self._listing:
            events.setdefault("", []).append(f"nftables table bridge {self.table} was missing or changed: restored")
        self._ports, self._strays, self._listing = want, shut, self.listing() if want else None
        self._save()
        return events
