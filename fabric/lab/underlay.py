"""The lab's underlay: what the hosts' own network is in a real lab, made of namespaces on one machine.

A switch namespace holds a bridge; each lab node gets an underlay namespace of
its own joined to that switch, with an address from UNDERLAY_PREFIX. A node
agent makes its VXLAN devices in its underlay namespace, so that the code path
is the one a real multi-host lab takes. Nothing here touches the root
namespace's addresses.
"""
from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

from nodeagent.netsvc import iproute

UNDERLAY_PREFIX = ipaddress.IPv4Network("192.168.254.0/24")


def lab_tag(root: Path) -> str:
    return hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:6]


def switch_ns(root: Path) -> str:
    return f"fabriclab-ul-{lab_tag(root)}"


def node_ns(root: Path, node: str) -> str:
    return f"fabriclab-ul-{lab_tag(root)}-{node}"


def node_ip(index: int) -> str:
    return str(UNDERLAY_PREFIX.network_address + index + 1)


def ensure(root: Path, nodes: list[str]) -> dict[str, tuple[str, str]]:
    """node -> (underlay namespace, underlay address); idempotent."""
    sw = switch_ns(root)
    if iproute.ensure_netns(sw):
        iproute.run("ip", "link", "add", "sw0", "type", "bridge", ns=sw)
        iproute.run("ip", "link", "set", "sw0", "up", ns=sw)
    out = {}
    for i, node in enumerate(nodes):
        ns, ip = node_ns(root, node), node_ip(i)
        if iproute.ensure_netns(ns):
            iproute.run("ip", "link", "add", "ul0", "type", "veth", "peer", "name", f"port{i}", ns=ns)
            iproute.run("ip", "link", "set", f"port{i}", "netns", sw, ns=ns)
            iproute.run("ip", "link", "set", f"port{i}", "master", "sw0", ns=sw)
            iproute.run("ip", "link", "set", f"port{i}", "up", ns=sw)
            iproute.run("ip", "addr", "add", f"{ip}/{UNDERLAY_PREFIX.prefixlen}", "dev", "ul0", ns=ns)
            iproute.run("ip", "link", "set", "ul0", "up", ns=ns)
        out[node] = (ns, ip)
    return out


def remove(root: Path, nodes: list[str]) -> None:
    for node in nodes:
        iproute.delete_netns(node_ns(root, node))
    iproute.delete_netns(switch_ns(root))
