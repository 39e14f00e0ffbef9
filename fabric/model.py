"""Records kept in etcd: frozen values with the reference's state words.

Every record is serialised as JSON by `to_json` / `from_json`; unknown keys in
stored JSON are ignored so that newer writers do not break older readers.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from enum import StrEnum
from typing import Any, Self, TypeVar

T = TypeVar("T")


class ProvisioningState(StrEnum):
    CREATING = "Creating"
    UPDATING = "Updating"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETING = "Deleting"


class PowerState(StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    DEALLOCATING = "deallocating"
    DEALLOCATED = "deallocated"
    # not a reference word: the node has removed everything of the VM
    DELETED = "deleted"


class OperationStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def now() -> str:
    """The current UTC time, RFC 3339 with microseconds."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Record:
    """Mixin for frozen dataclasses stored as JSON."""

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        return cls.from_dict(json.loads(raw))

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True)
class ResourceGroupRecord(Record):
    name: str
    location: str
    created: str = ""


@dataclasses.dataclass(frozen=True)
class ImageRecord(Record):
    """An image version as resolved at create time, with the files a node boots."""
    publisher: str
    offer: str
    sku: str
    version: str          # as the user asked ("latest" or a version)
    exact_version: str    # what it resolved to
    disk: str             # absolute path of the gallery VHD
    disk_format: str
    kernel: str
    initrd: str
    cmdline: str
    boot_marker: str


@dataclasses.dataclass(frozen=True)
class VmRecord(Record):
    """Desired state of a VM, owned by the controller."""
    resource_group: str
    name: str
    vm_id: str
    location: str
    size: str
    image: dict[str, Any]
    provisioning_state: str
    power_state: str           # the state the controller drives towards / last reached
    node: str = ""
    operation_id: str = ""
    error: dict[str, Any] | None = None
    restart_generation: int = 0
    created: str = ""
    # {"account", "container", "blob", "uri", "deleteOption", "leaseId", "sizeBytes", "ref": disk reference}
    os_disk: dict[str, Any] = dataclasses.field(default_factory=dict)
    # [{"name", "lun", "account", "container", "blob", "uri", "sizeBytes", "leaseId", "ref"}], ordered by lun
    data_disks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    disk_generation: int = 0      # bumped by every attach and detach
    # [{"key", "id", "made" (by vm create: deleted with the VM), "mac", "ip", "vnet", "vni", "prefix",
    #   "gateway", "dnsSuffix"}]
    nics: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    user_data: str = ""           # base64, served to the guest by IMDS (compute.userData)
    # child resources Microsoft.Compute/virtualMachines/extensions, ordered by name:
    # [{"name", "publisher", "type", "typeHandlerVersion", "handlerVersion", "autoUpgradeMinorVersion",
    #   "settings", "protectedSettings", "forceUpdateTag", "seq", "provisioningState", "operationId", "error"}]
    extensions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extension_generation: int = 0   # bumped by every extension change: a new goal state incarnation
    provision_vm_agent: bool = True   # osProfile.linuxConfiguration.provisionVMAgent: the guest agent runs


@dataclasses.dataclass(frozen=True)
class Assignment(Record):
    """What one node must converge one VM to. Written by the controller only."""
    vm_id: str
    resource_group: str
    name: str
    node: str
    power: str                 # running | stopped | deallocated | deleted
    generation: int            # bumped by restart
    cores: int
    memory_mb: int
    resource_disk_mb: int
    image: dict[str, Any]
    os_disk: dict[str, Any]    # a disk reference for the node's storage backend
    operation_id: str = ""
    data_disks: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # [{"lun", "ref"}]
    disk_generation: int = 0
    nics: list[dict[str, Any]] = dataclasses.field(default_factory=list)   # as VmRecord.nics
    instance_metadata: dict[str, Any] = dataclasses.field(default_factory=dict)   # IMDS "compute", from the VM
    # what the guest agent runs: [{"name", "handler", "version", "seq", "settings", "protectedSettings",
    #   "timeoutSeconds"}]
    extensions: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    extension_generation: int = 0
    vm_agent: bool = True      # start the guest agent (the VM's provisionVMAgent)


@dataclasses.dataclass(frozen=True)
class Observed(Record):
    """What a node saw of one VM. Written by that node's agent only."""
    vm_id: str
    node: str
    power: str                 # PowerState value
    generation: int = 0
    booted: bool = False       # the guest printed its boot marker in this generation
    domain: str = ""
    hypervisor: str = ""
    console: str = ""
    error: dict[str, Any] | None = None
    operation_id: str = ""     # the operation the node was carrying out when it saw this
    disk_generation: int = 0   # the assignment's data disks are attached as of this generation
    agent: dict[str, str] = dataclasses.field(default_factory=dict)   # guest agent: status, version, time
    # extension name -> the guest agent's last status for it: {"seq", "handler", "version", "status",
    #   "code", "message", "substatuses": [{"name", "status", "message"}], "time", "log" (handler log tail)}
    extensions: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    time: str = ""


@dataclasses.dataclass(frozen=True)
class NodeRecord(Record):
    """A node agent's registration, kept under its heartbeat lease."""
    name: str
    fault_domain: int
    hypervisor: str
    cores: int
    memory_mb: int
    local_disk_mb: int
    diagnostics_url: str = ""   # the agent's HTTP endpoint for serial output
    net_tag: str = ""           # names this node's bridges and namespaces (fabric.network.naming)
    underlay_ip: str = ""       # where other nodes send this node's VXLAN traffic
    pid: int = 0
    registered: str = ""


@dataclasses.dataclass(frozen=True)
class NodeAllocation(Record):
    """Resources the scheduler has granted on one node: {vm_id: [cores, memory_mb, disk_mb]}."""
    node: str
    vms: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def totals(self) -> tuple[int, int, int]:
        cores = sum(v[0] for v in self.vms.values())
        mem = sum(v[1] for v in self.vms.values())
        disk = sum(v[2] for v in self.vms.values())
        return cores, mem, disk


@dataclasses.dataclass(frozen=True)
class OperationRecord(Record):
    id: str
    name: str
    target: str
    status: str
    start_time: str
    end_time: str = ""
    error: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class TraceRecord(Record):
    time: str
    source: str
    step: str
    message: str
    detail: str = ""
    placement: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class BlobService(Record):
    """Where nodes relay guests' blob requests, and the names guests use for them."""
    endpoint: str          # the controller's data plane, e.g. http://127.0.0.1:7451
    domain: str            # accounts are {account}.blob.{domain}
    stamp_host: str        # ... a CNAME of this name, which resolves to each network's gateway
