"""Typed etcd keys. Every key fabriclab writes is built here.

Names in ARM are case-insensitive, so keys use the lower-cased name while the
records keep the casing the user gave.
"""
from __future__ import annotations

ROOT = "/fabriclab/v1/"

SUBSCRIPTION = ROOT + "config/subscription"
FABRIC_ID = ROOT + "config/fabric-id"
LEADER = ROOT + "config/leader"           # the controller that runs the background work (fabric.controller.leader)
BLOB_SERVICE = ROOT + "config/blob-service"   # tells this fabric's domains from another's on a shared host
RESOURCE_GROUPS = ROOT + "resourcegroups/"
VMS = ROOT + "vms/"
NODES = ROOT + "nodes/"
ALLOCATIONS = ROOT + "allocations/"
ASSIGNMENTS = ROOT + "assignments/"
OBSERVED = ROOT + "observed/"
OPERATIONS = ROOT + "operations/"
TRACES = ROOT + "traces/"
DEPLOYMENTS = ROOT + "deployments/"
JOIN_TOKENS = ROOT + "join-tokens/"
ENROLLMENTS = ROOT + "enrollments/"
REVOKED = ROOT + "revoked-certificates/"


def resource_group(name: str) -> str:
    return RESOURCE_GROUPS + name.lower()


def vm(resource_group: str, name: str) -> str:
    return f"{VMS}{resource_group.lower()}/{name.lower()}"


def vms_in(resource_group: str) -> str:
    """The prefix of a group's VMs; of every VM for ""."""
    return f"{VMS}{resource_group.lower()}/" if resource_group else VMS


def node(name: str) -> str:
    return NODES + name


def join_token(token_id: str) -> str:
    return JOIN_TOKENS + token_id


def enrollment(node: str) -> str:
    return ENROLLMENTS + node


def revoked(serial: str) -> str:
    return REVOKED + serial


def allocation(node: str) -> str:
    return ALLOCATIONS + node


def assignments_of(node: str) -> str:
    return f"{ASSIGNMENTS}{node}/"


def assignment(node: str, vm_id: str) -> str:
    return f"{ASSIGNMENTS}{node}/{vm_id}"


def observed_of(node: str) -> str:
    return f"{OBSERVED}{node}/"


def observed(node: str, vm_id: str) -> str:
    return f"{OBSERVED}{node}/{vm_id}"


def operation(op_id: str) -> str:
    return OPERATIONS + op_id


def trace_of(op_id: str) -> str:
    return f"{TRACES}{op_id}/"


def trace_step(op_id: str, time_ns: int, source: str) -> str:
    return f"{TRACES}{op_id}/{time_ns:020d}-{source}"


# ----- storage provider -----

STORAGE_ACCOUNTS = ROOT + "storage/accounts/"
CONTAINERS = ROOT + "storage/containers/"
BLOBS = ROOT + "storage/blobs/"


def storage_account(name: str) -> str:
    return STORAGE_ACCOUNTS + name


def containers_of(account: str) -> str:
    return f"{CONTAINERS}{account}/"


def container(account: str, name: str) -> str:
    return f"{CONTAINERS}{account}/{name}"


def blobs_of(account: str, container: str) -> str:
    return f"{BLOBS}{account}/{container}/"


def blob(account: str, container: str, name: str) -> str:
    """Blob names may hold '/': etcd takes them as they are, under the container's prefix."""
    return f"{BLOBS}{account}/{container}/{name}"


# ----- network provider -----

VNETS = ROOT + "network/vnets/"
NICS = ROOT + "network/nics/"
IPS = ROOT + "network/ips/"
MACS = ROOT + "network/macs/"
VNIS = ROOT + "network/vnis/"


def vnet(resource_group: str, name: str) -> str:
    return f"{VNETS}{resource_group.lower()}/{name.lower()}"


def nic(resource_group: str, name: str) -> str:
    return f"{NICS}{resource_group.lower()}/{name.lower()}"


def vnets_in(resource_group: str) -> str:
    """The prefix of a group's virtual networks; of every one for ""."""
    return f"{VNETS}{resource_group.lower()}/" if resource_group else VNETS


def nics_in(resource_group: str) -> str:
    """The prefix of a group's NICs; of every NIC for ""."""
    return f"{NICS}{resource_group.lower()}/" if resource_group else NICS


def ips_of(vnet_key: str, subnet: str) -> str:
    return f"{IPS}{vnet_key}/{subnet.lower()}/"


def ip_claim(vnet_key: str, subnet: str, ip: str) -> str:
    return f"{IPS}{vnet_key}/{subnet.lower()}/{ip}"


def mac_claim(mac: str) -> str:
    return f"{MACS}{mac.lower()}"


def vni(number: int) -> str:
    return f"{VNIS}{number}"


def deployment(resource_group: str, name: str) -> str:
    return f"{DEPLOYMENTS}{resource_group.lower()}/{name.lower()}"


def deployments_in(resource_group: str) -> str:
    return f"{DEPLOYMENTS}{resource_group.lower()}/"
