"""The networks of the VMs assigned to this node: port security on each NIC, and per network its bridge,
service namespace, dnsmasq (DHCP and DNS), VXLAN peers and the documents IMDS and the wireserver answer.

A network's resources exist on a node while a VM of that network is assigned here (`netsvc.networks`);
every change is a step of the operation of each VM of that network.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import Any

from fabric.model import Assignment, BlobService, GoalExtension, NodeRecord, PowerState, VmNic
from fabric.network import naming
from fabric.network.model import NicRecord
from fabric.storage.model import StorageAccountRecord
from fabric.store import Store, keys
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.networks import NetSpec, Networks
from nodeagent.netsvc.portsec import Port
from nodeagent.tracing import Trace

log = logging.getLogger("nodeagent")


def instance_document(a: Assignment, nic: VmNic, fault_domain: int) -> dict[str, Any]:
    """What IMDS and the wireserver answer this VM: its compute section (plus this node's fault domain),
    its network section, and the goal state's incarnation (changes with restarts and disk changes)."""
    net = ipaddress.IPv4Network(nic.prefix)
    return {"incarnation": 1 + a.generation + a.disk_generation + a.extension_generation,
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


def _local(a: Assignment) -> bool:
    return a.power not in (PowerState.DELETED, PowerState.DEALLOCATED)


class NetworkConverger:
    def __init__(self, store: Store, networks: Networks, trace: Trace, fault_domain: int) -> None:
        self.store = store
        self.networks = networks
        self.trace = trace
        self.fault_domain = fault_domain

    def converge(self, assigned: dict[str, Assignment]) -> None:
        """Each network with a VM placed here gets its bridge, service namespace and dnsmasq; others go."""
        self._secure_ports(assigned)
        local = [a for a in assigned.values() if _local(a)]
        vnis = {n.vni: n for a in local for n in a.nics}
        if not vnis:
            self.networks.converge({})
            return
        attached = [n for n in (v.value for v in self.store.list(keys.NICS, NicRecord)) if n.vm_id]
        peers = self._peers(set(vnis))
        blob = self.store.get(keys.BLOB_SERVICE, BlobService)
        accounts = sorted(a.key.rsplit("/", 1)[1] for a in self.store.list(keys.STORAGE_ACCOUNTS, StorageAccountRecord))
        blob_names = tuple(naming.blob_host(a, blob.value.domain) for a in accounts) if blob else ()
        specs = {}
        for vni, n in vnis.items():
            dhcp = tuple(Reservation(x.mac, x.ip, a.name) for a in local for x in a.nics if x.vni == vni)
            dns = tuple(Reservation(x.mac, x.private_ip, x.vm_name) for x in attached if x.vnet == n.vnet)
            docs = {x.ip: instance_document(a, x, self.fault_domain) for a in local for x in a.nics
                    if x.vni == vni}
            specs[vni] = NetSpec(vni=vni, prefix=n.prefix, gateway=n.gateway, domain=n.dns_suffix,
                                 dhcp_hosts=dhcp, dns_hosts=dns, metadata=docs,
                                 peers=frozenset(peers.get(vni, set())), blob_names=blob_names,
                                 blob_stamp=blob.value.stamp_host if blob else "")
        for vni, events in self.networks.converge(specs).items():
            for a in local:
                if any(x.vni == vni for x in a.nics):
                    for event in events:
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

    def _peers(self, vnis: set[int]) -> dict[int, set[str]]:
        """vni -> underlay addresses of the other nodes running VMs of that network."""
        underlay = {n.value.name: n.value.underlay_ip for n in self.store.list(keys.NODES, NodeRecord)}
        out: dict[int, set[str]] = {}
        for a in (v.value for v in self.store.list(keys.ASSIGNMENTS, Assignment)):
            ip = underlay.get(a.node, "")
            if a.node == self.trace.node or not ip or not _local(a):
                continue
            for n in a.nics:
                if n.vni in vnis:
                    out.setdefault(n.vni, set()).add(ip)
        return out
