"""Network records kept in etcd."""
from __future__ import annotations

import dataclasses
from typing import Any

from fabric.model import Record


@dataclasses.dataclass(frozen=True, slots=True)
class VnetRecord(Record):
    name: str
    resource_group: str
    location: str
    address_prefixes: list[str]
    subnets: list[dict[str, Any]]      # [{"name", "prefix"}]
    vni: int                           # VXLAN network identifier, unique in the fabric
    dns_suffix: str                    # <hash>.internal.<fabric domain>
    created: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class NicRecord(Record):
    name: str
    resource_group: str
    location: str
    vnet: str                          # the vnet's resource group/name key, "rg/name" lower-case
    subnet: str
    mac: str
    private_ip: str
    allocation: str                    # "Dynamic" or "Static"
    vm_id: str = ""                    # the VM using it ("" when free)
    vm_name: str = ""
    created: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class IpClaim(Record):
    """One private address of a subnet, held by one NIC (the key's existence is the claim)."""
    nic: str                           # "rg/name" lower-case


@dataclasses.dataclass(frozen=True, slots=True)
class MacClaim(Record):
    """One MAC address, held by one NIC in the whole fabric: a node names a VM's tap after it (port security)."""
    nic: str                           # "rg/name" lower-case


@dataclasses.dataclass(frozen=True, slots=True)
class VniClaim(Record):
    vnet: str
