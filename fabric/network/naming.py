"""Names of a network's pieces on a node, shared by the node agent (which makes them) and the API (which shows them).

Linux interface names are at most 15 characters; a node's `tag` (4 hex digits
of its fabric id and name) keeps two lab nodes on one host apart.
"""
from __future__ import annotations

import hashlib


def node_tag(fabric_id: str, node: str) -> str:
    return hashlib.sha256(f"{fabric_id}/{node}".encode()).hexdigest()[:4]


def bridge(tag: str, vni: int) -> str:
    return f"flb{tag}{vni}"


def host_veth(tag: str, vni: int) -> str:
    return f"flv{tag}{vni}"


def tap_prefix(tag: str) -> str:
    """What every VM tap of one node starts with."""
    return f"flt{tag}"


def tap(tag: str, mac: str) -> str:
    """A VM port's tap device, named before libvirt creates it so that its port security is in place first."""
    return tap_prefix(tag) + mac.replace(":", "").lower()[-6:]


def service_ns(tag: str, vni: int) -> str:
    return f"fabriclab-{tag}-{vni}"


def vxlan(tag: str, vni: int) -> str:
    return f"flx{tag}{vni}"


SERVICE_IFACE = "svc0"     # the service namespace's end of the veth
VXLAN_PORT = 4789
VXLAN_MTU = 1450           # 1500 on the underlay less the VXLAN/UDP/IP/Ethernet headers; given to guests by DHCP


def blob_host(account: str, domain: str) -> str:
    """A storage account's blob endpoint as guests name it."""
    return f"{account}.blob.{domain}"


def blob_stamp_host(location: str, domain: str) -> str:
    """The canonical name every account's blob endpoint is a CNAME of (the storage stamp)."""
    return f"blob.{location.lower()}-stamp1.store.{domain}"
