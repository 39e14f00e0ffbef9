"""The networks of the VMs assigned to this node: port security on each NIC, and per network its bridge,
service namespace, dnsmasq (DHCP and DNS), VXLAN peers and the documents IMDS and the wireserver answer.
What other nodes hold (the network's other NICs for DNS, the nodes to tunnel to, the storage account names)
comes from the node API's view of the networks of this node's VMs.

A network's resources exist on a node while a VM of that network is assigned here (`netsvc.networks`);
every change is a step of the operation of each VM of that network.
"""
from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

from fabric.model import Assignment, GoalExtension, VmNic
from fabric.v1 import node_pb2 as pb
from nodeagent.control import ControlPlane, ControlPlaneRefused
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.networks import RESERVATION_EVENT, NetSpec, Networks
from nodeagent.netsvc.portsec import Port
from nodeagent.netsvc.wireserver import container_of
from nodeagent.tracing import Trace

log = logging.getLogger("nodeagent")

VIEW_REFRESH_S = 5.0      # how stale other nodes' VMs (DNS names, VXLAN peers) may be on this node


def instance_document(a: Assignment, nic: VmNic, fault_domain: int) -> dict[str, Any]:
    """What IMDS and the wireserver answer this VM: its compute section (plus this node's fault domain),
    its network section, and the goal state's incarnation (changes with restarts and disk changes)."""
    net = ipaddress.IPv4Network(nic.prefix)
    container = container_of(a)
    return {"incarnation": 1 + a.generation + a.disk_generation + a.extension_generation,
            "containerId": container, "instanceId": f"{container}._{a.name}",
            "extensions": [goal_document(e) for e in a.extensions],
            "compute": {**a.instance_metadata, "platformFaultDomain": str(fault_domain)},
            "network": {"interface": [{
                "macAddress": nic.mac.replace(":", "").upper(),
                "ipv4": {"ipAddress": [{"privateIpAddress": nic.ip, "publicIpAddress": ""}],
                         "subnet": [{"address": str(net.network_address), "prefix": str(net.prefixlen)}]},
                "ipv6": {"ipAddress": []}}]}}


def goal_document(e: GoalExtension) -> dict[str, Any]:
    """An extension as the metadata process serves it in the wireserver's extensions config."""
    return {"name": e.name, "handler": e.handler, "version": e.version, "seq": e.seq, "settings": e.settings,
            "protectedSettings": e.protected_settings, "timeoutSeconds": e.timeout_seconds}


def concerned(vni: int, events: list[str], members: list[Assignment],
              new: frozenset[str]) -> list[tuple[Assignment | None, str]]:
    """Whose operation each event of a network is a step of: a DHCP reservation its VM's; the rest those of the
    VMs that joined the network on this node in this pass (the change was made for them). An event that concerns
    no operation (a repair, another node's VM) is for the log (None)."""
    by_mac = {x.mac: a for a in members for x in a.nics if x.vni == vni}
    out: list[tuple[Assignment | None, str]] = []
    for event in events:
        mac = event.split(": ", 1)[1].split(",", 1)[0] if event.startswith(RESERVATION_EVENT) else ""
        told: list[Assignment | None] = [by_mac[mac]] if mac in by_mac else [a for a in members if a.vm_id in new]
        out += [(a, event) for a in told or [None]]
    return out


class NetworkConverger:
    """`clock` (monotonic seconds) paces how often the network view is asked for: injected by tests."""

    def __init__(self, plane: ControlPlane, networks: Networks, trace: Trace, fault_domain: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plane = plane
        self.networks = networks
        self.trace = trace
        self.fault_domain = fault_domain
        self.clock = clock
        self._local: dict[int, frozenset[str]] = {}     # vni -> ids of this node's VMs in it, as last converged
        self._view: tuple[tuple[int, ...], pb.NetworkView] | None = None   # (vnis asked, the answer)
        self._view_at = -VIEW_REFRESH_S

    def due(self) -> float:
        """Seconds until the network view should be asked for again (inf without networks here)."""
        return max(0.0, self._view_at + VIEW_REFRESH_S - self.clock()) if self._local else float("inf")

    def converge(self, assigned: dict[str, Assignment], changed: bool) -> None:
        """Each network with a VM placed here gets its bridge, service namespace and dnsmasq; others go. The
        network view (other nodes' VMs, the storage accounts) is asked for when this node's VMs `changed` or
        every VIEW_REFRESH_S; a network's resources are touched only when its spec changed or its periodic
        check is due (`Networks.converge`)."""
        self._secure_ports(assigned)
        local = [a for a in assigned.values() if a.on_node]
        vnis = {n.vni: n for a in local for n in a.nics}
        if not vnis:
            self._local = {}
            self.networks.converge({})
            return
        asked = tuple(sorted(vnis))
        if changed or self._view is None or self._view[0] != asked or self.due() == 0:
            try:
                self._view = (asked, self.plane.network_view(list(asked)))
                self._view_at = self.clock()
            except ControlPlaneRefused as exc:   # this pass's assignments are older than the control plane's
                log.warning("networks not converged this pass: %s", exc)
                return
        view = self._view[1]
        shared = {v.vni: v for v in view.networks}
        specs = {}
        for vni, n in vnis.items():
            dhcp = tuple(Reservation(x.mac, x.ip, a.name) for a in local for x in a.nics if x.vni == vni)
            dns = tuple(Reservation(h.mac, h.ip, h.name) for h in shared[vni].dns_hosts) if vni in shared else ()
            docs = {x.ip: instance_document(a, x, self.fault_domain) for a in local for x in a.nics
                    if x.vni == vni}
            specs[vni] = NetSpec(vni=vni, prefix=n.prefix, gateway=n.gateway, domain=n.dns_suffix,
                                 dhcp_hosts=dhcp, dns_hosts=dns, metadata=docs,
                                 peers=frozenset(shared[vni].peers) if vni in shared else frozenset(),
                                 blob_names=tuple(view.blob_names), blob_stamp=view.blob_stamp)
        members = {vni: frozenset(a.vm_id for a in local if any(x.vni == vni for x in a.nics)) for vni in vnis}
        for vni, events in self.networks.converge(specs).items():
            self._tell(vni, events, [a for a in local if a.vm_id in members.get(vni, frozenset())],
                       members.get(vni, frozenset()) - self._local.get(vni, frozenset()))
        self._local = members

    def _tell(self, vni: int, events: list[str], members: list[Assignment], new: frozenset[str]) -> None:
        for a, event in concerned(vni, events, members, new):
            if a is None:
                log.info("network %d: %s", vni, event)
            else:
                self.trace.step(a.operation_id, "network", event)

    def _secure_ports(self, assigned: dict[str, Assignment]) -> None:
        """Port security on every NIC of the VMs assigned here, before any of them starts; a port goes with its
        assignment (after its domain). Each change is a step of its VM's operation."""
        nics = {self.networks.tap(n.mac): (a, n) for a in assigned.values() for n in a.nics}
        for tap, events in self.networks.secure([Port(t, n.mac, n.ip) for t, (_, n) in nics.items()]).items():
            for event in events:
                if tap in nics:
                    self.trace.step(nics[tap][0].operation_id, "port-security", event)
                else:
                    log.warning("%s", event)
