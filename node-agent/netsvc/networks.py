"""All networks of one node: converge bridges, service namespaces and dnsmasq to the VMs assigned here.

A network's resources exist on a node while a VM of that network is assigned
to it. What the agent made is recorded by a folder per network
(`{state}/networks/{vni}`): only those are ever torn down, by their exact
names, so other bridges and namespaces on the host are never touched.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import shutil
from pathlib import Path

from fabric.network import naming
from nodeagent.netsvc import iproute
from nodeagent.netsvc.dnsmasq import Dnsmasq, DnsmasqSpec, Reservation


@dataclasses.dataclass(frozen=True)
class NetSpec:
    vni: int
    prefix: str
    gateway: str
    domain: str
    dhcp_hosts: tuple[Reservation, ...]
    dns_hosts: tuple[Reservation, ...]


class Networks:
    def __init__(self, state_dir: Path, tag: str) -> None:
        self.root = state_dir / "networks"
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)        # dnsmasq reads its files here after dropping root
        self.tag = tag

    def bridge(self, vni: int) -> str:
        return naming.bridge(self.tag, vni)

    def _dnsmasq(self, vni: int) -> Dnsmasq:
        return Dnsmasq(self.root / str(vni))

    def converge(self, specs: dict[int, NetSpec]) -> dict[int, list[str]]:
        """Make every network of `specs` present and current, remove the others this agent made.
        Returns, per network, what was done (for the trace)."""
        done: dict[int, list[str]] = {}
        for vni, spec in specs.items():
            done[vni] = self._ensure(spec)
        for folder in list(self.root.iterdir()):
            if folder.name.isdigit() and int(folder.name) not in specs:
                self.remove(int(folder.name))
                done[int(folder.name)] = ["removed"]
        return {k: v for k, v in done.items() if v}

    def _ensure(self, spec: NetSpec) -> list[str]:
        (self.root / str(spec.vni)).mkdir(mode=0o755, exist_ok=True)
        bridge, veth = self.bridge(spec.vni), naming.host_veth(self.tag, spec.vni)
        ns = naming.service_ns(self.tag, spec.vni)
        plen = ipaddress.IPv4Network(spec.prefix).prefixlen
        events = []
        if iproute.ensure_bridge(bridge):
            events.append(f"bridge {bridge} created (layer 2 only, no address)")
        if iproute.ensure_netns(ns):
            events.append(f"service namespace {ns} created")
        if iproute.ensure_veth(bridge, veth, ns, naming.SERVICE_IFACE, [f"{spec.gateway}/{plen}"]):
            events.append(f"veth {veth} <-> {ns}:{naming.SERVICE_IFACE} ({spec.gateway}/{plen})")
        action = self._dnsmasq(spec.vni).converge(DnsmasqSpec(
            ns=ns, interface=naming.SERVICE_IFACE, prefix=spec.prefix, gateway=spec.gateway, domain=spec.domain,
            dhcp_hosts=spec.dhcp_hosts, dns_hosts=spec.dns_hosts))
        if action:
            events.append(f"dnsmasq {action}: {len(spec.dhcp_hosts)} reservations, {len(spec.dns_hosts)} DNS names")
        return events

    def remove(self, vni: int) -> None:
        self._dnsmasq(vni).stop()
        iproute.delete_link(naming.host_veth(self.tag, vni))
        iproute.delete_netns(naming.service_ns(self.tag, vni))
        iproute.delete_link(self.bridge(vni))
        shutil.rmtree(self.root / str(vni), ignore_errors=True)
