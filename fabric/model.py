"""Records kept in etcd: frozen values with the reference's state words.

Every record is serialised as JSON by `to_json` / `from_json`; unknown keys in
stored JSON are ignored so that newer writers do not break older readers.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import types
import typing
from enum import Enum, StrEnum
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


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m[1].lower(), key)


def _decode(tp: Any, value: Any) -> Any:
    """A JSON value as the annotated type: nested records, enums, lists, tuples, dicts, optionals."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if value is None or (value == {} and len(inner) == 1 and isinstance(inner[0], type)
                             and issubclass(inner[0], Record)):
            return None
        return _decode(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        return [_decode(args[0], v) for v in value]
    if origin is tuple:
        return tuple(_decode(args[0], v) for v in value)
    if origin is dict:
        return {k: _decode(args[1], v) for k, v in value.items()}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if isinstance(tp, type) and issubclass(tp, Record) and isinstance(value, dict):
        return tp.from_dict(value)
    return value


_FIELDS: dict[type, dict[str, Any]] = {}


def _fields(cls: type) -> dict[str, Any]:
    """name -> annotated type of a record's fields (read once per class)."""
    found = _FIELDS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = _FIELDS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return found


class Record:
    """Mixin for frozen dataclasses stored as JSON. Fields are typed all the way down: a nested record, an
    enum, a list of records is decoded as its annotation says; a key written in camelCase (records kept
    before their nested parts were typed) is read as its snake_case field. Records are slotted (no __dict__
    per instance): the controller's views hold tens of thousands of them."""

    __slots__ = ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        fields = _fields(cls)
        out = {}
        for k, v in data.items():
            name = k if k in fields else _snake(k)
            if name in fields and name not in out:
                out[name] = _decode(fields[name], v)
        return cls(**out)

    @classmethod
    def from_json(cls, raw: bytes | str) -> Self:
        return cls.from_dict(json.loads(raw))

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceGroupRecord(Record):
    name: str
    location: str
    created: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
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
    kernel_sha256: str = ""    # what a node checks the files it fetches against ("": published without one)
    initrd_sha256: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class DiskRef(Record):
    """How a node's storage backend reaches a disk blob (the local-path backend: a file it can open)."""
    backend: str
    uri: str = ""              # the blob's URL, for what the node tells
    path: str = ""             # localpath: the body's file
    format: str = "qcow2"


@dataclasses.dataclass(frozen=True, slots=True)
class VmDisk(Record):
    """A disk blob a VM uses, leased in the VM's name: its OS disk, or a data disk on a LUN."""
    account: str
    container: str
    blob: str
    uri: str
    ref: DiskRef
    lease_id: str = ""         # the lease's secret id ("": a record from before they were secret; the vm id)
    size_bytes: int = 0
    delete_option: str = "Delete"   # the OS disk's deleteOption: Delete, or Detach to keep the blob
    name: str = ""             # a data disk's name
    lun: int = 0               # a data disk's LUN
    create_option: str = ""    # a data disk's: Empty (made by the attach) or Attach (an existing blob)


@dataclasses.dataclass(frozen=True, slots=True)
class AttachedDisk(Record):
    """A data disk as a node attaches it."""
    lun: int
    ref: DiskRef


@dataclasses.dataclass(frozen=True, slots=True)
class VmNic(Record):
    """A NIC of a VM as a node plugs it in: its addresses and its network."""
    key: str                   # the NIC resource's etcd key
    id: str                    # its resource id
    mac: str
    ip: str
    vnet: str
    vni: int
    prefix: str
    gateway: str
    dns_suffix: str
    made: bool = False         # made by vm create: deleted with the VM


@dataclasses.dataclass(frozen=True, slots=True)
class VmExtension(Record):
    """A child resource Microsoft.Compute/virtualMachines/extensions of a VM."""
    name: str
    publisher: str
    type: str
    type_handler_version: str          # as asked ("2.1")
    handler_version: str               # what it resolved to ("2.1.3")
    auto_upgrade_minor_version: bool
    settings: dict[str, Any]           # the user's JSON, as given
    protected_settings: dict[str, Any]
    force_update_tag: str = ""
    seq: int = 0                       # the sequence number the guest agent runs it under
    provisioning_state: ProvisioningState = ProvisioningState.CREATING
    operation_id: str = ""
    error: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class GoalExtension(Record):
    """An extension as the guest agent gets it in the goal state (an assignment's)."""
    name: str
    handler: str                       # Publisher.Type
    version: str
    seq: int
    settings: dict[str, Any]
    protected_settings: dict[str, Any]
    timeout_seconds: int
    operation_id: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class SubStatus(Record):
    name: str
    status: str
    message: str


@dataclasses.dataclass(frozen=True, slots=True)
class ExtensionStatus(Record):
    """What the guest agent last posted for an extension, as the node read it (the guest is not trusted:
    every text is capped, anything malformed is empty)."""
    seq: int                           # -1: the guest sent none
    status: str                        # transitioning | success | error
    handler: str = ""
    version: str = ""
    code: int | None = None
    message: str = ""
    time: str = ""
    substatuses: list[SubStatus] = dataclasses.field(default_factory=list)
    operation: str = ""
    log: str = ""                      # the tail of the handler's log

    @property
    def final(self) -> bool:
        return self.status in ("success", "error")


@dataclasses.dataclass(frozen=True, slots=True)
class AgentHealth(Record):
    """The guest agent as the wireserver last heard from it."""
    status: str = "Not Ready"          # Ready | Not Ready
    version: str = ""
    time: str = ""                     # when it last reported ("" never)
    resource_disk: str = ""            # formatted | kept, as it reported in this boot
    provisioning: str = ""             # what its last health report of this boot said: Provisioning | Ready |
                                       # ProvisioningFailed ("" none)
    message: str = ""                  # that report's description


@dataclasses.dataclass(frozen=True, slots=True)
class SshKey(Record):
    path: str
    key_data: str


@dataclasses.dataclass(frozen=True, slots=True)
class OsProfile(Record):
    """osProfile: the computer name, and the admin user the guest's provisioning agent makes with its SSH keys
    (read from IMDS) and, with password authentication, its password (read once from the provisioning media:
    kept in ProvisioningMedia, never here)."""
    computer_name: str
    admin_username: str = ""
    ssh_keys: list[SshKey] = dataclasses.field(default_factory=list)
    password_authentication: bool = False    # linuxConfiguration.disablePasswordAuthentication, negated


@dataclasses.dataclass(frozen=True, slots=True)
class ProvisioningMedia(Record):
    """What a new VM's guest reads once from its provisioning media (ovf-env.xml on a CD), as in the reference:
    the admin password and the custom data. Kept only until the VM's provisioning ends; never shown."""
    admin_password: str = ""
    custom_data: str = ""          # base64, as given


@dataclasses.dataclass(frozen=True, slots=True)
class VmRecord(Record):
    """Desired state of a VM, owned by the controller."""
    resource_group: str
    name: str
    vm_id: str
    location: str
    size: str
    image: ImageRecord
    provisioning_state: ProvisioningState
    power_state: PowerState    # the state the controller drives towards / last reached
    node: str = ""
    operation_id: str = ""
    error: dict[str, Any] | None = None
    restart_generation: int = 0
    created: str = ""
    os_disk: VmDisk | None = None
    data_disks: list[VmDisk] = dataclasses.field(default_factory=list)   # ordered by LUN
    disk_generation: int = 0      # bumped by every attach and detach
    nics: list[VmNic] = dataclasses.field(default_factory=list)
    user_data: str = ""           # base64, served to the guest by IMDS (compute.userData)
    extensions: list[VmExtension] = dataclasses.field(default_factory=list)   # ordered by name
    extension_generation: int = 0   # bumped by every extension change: a new goal state incarnation
    provision_vm_agent: bool = True   # osProfile.linuxConfiguration.provisionVMAgent: the guest agent runs
    os_profile: OsProfile | None = None   # None: made before osProfiles were kept (computer name = VM name)
    provisioning_media: ProvisioningMedia | None = None   # until provisioning ends


@dataclasses.dataclass(frozen=True, slots=True)
class Assignment(Record):
    """What one node must converge one VM to. Written by the controller only."""
    vm_id: str
    resource_group: str
    name: str
    node: str
    power: PowerState          # running | stopped | deallocated | deleted
    generation: int            # bumped by restart
    cores: int
    memory_mb: int
    resource_disk_mb: int
    image: ImageRecord
    os_disk: DiskRef
    operation_id: str = ""
    data_disks: list[AttachedDisk] = dataclasses.field(default_factory=list)
    disk_generation: int = 0
    nics: list[VmNic] = dataclasses.field(default_factory=list)
    instance_metadata: dict[str, Any] = dataclasses.field(default_factory=dict)   # IMDS "compute", from the VM
    extensions: list[GoalExtension] = dataclasses.field(default_factory=list)   # what the guest agent runs
    extension_generation: int = 0
    vm_agent: bool = True      # start the guest agent (the VM's provisionVMAgent)
    provisioning_media: ProvisioningMedia | None = None   # the guest's provisioning CD, until provisioned

    @property
    def on_node(self) -> bool:
        """Whether the VM has anything on its node: not deallocated, not deleted (its network too)."""
        return self.power not in (PowerState.DELETED, PowerState.DEALLOCATED)


@dataclasses.dataclass(frozen=True, slots=True)
class Observed(Record):
    """What a node saw of one VM. Written by that node's agent only."""
    vm_id: str
    node: str
    power: PowerState
    generation: int = 0
    booted: bool = False       # the guest printed its boot marker in this generation
    domain: str = ""
    hypervisor: str = ""
    console: str = ""
    error: dict[str, Any] | None = None
    operation_id: str = ""     # the operation the node was carrying out when it saw this
    disk_generation: int = 0   # the assignment's data disks are attached as of this generation
    agent: AgentHealth | None = None   # a running VM's guest agent
    extensions: dict[str, ExtensionStatus] = dataclasses.field(default_factory=dict)   # by extension name
    time: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
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


@dataclasses.dataclass(frozen=True, slots=True)
class JoinTokenRecord(Record):
    """A join token as the controller keeps it: the sha256 of its secret, never the secret."""
    id: str
    secret_sha256: str
    expires: str                # ISO time
    created: str
    description: str = ""
    used_by: str = ""           # the node it enrolled (a token enrolls one)
    used: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class EnrollmentRecord(Record):
    """A node admitted to the cluster: the one certificate (by serial) the node API accepts for it."""
    node: str
    serial: str                 # hex
    enrolled: str
    not_after: str
    token_id: str = ""          # "" when issued by the lab or `fabric cluster init` directly
    nbd_serials: list[str] = dataclasses.field(default_factory=list)   # its qemu's NBD client certificates


@dataclasses.dataclass(frozen=True, slots=True)
class RevokedRecord(Record):
    """A certificate revoked (its node removed): in the revocation list the storage host's NBD servers load."""
    serial: str
    node: str
    revoked: str


@dataclasses.dataclass(frozen=True, slots=True)
class NodeAllocation(Record):
    """Resources the scheduler has granted on one node, as running totals: the record keeps one size however
    many VMs the node holds (a VM's share is its size, which its record names). Records written by earlier
    versions listed each VM in `vms` ({vm_id: [cores, memory_mb, disk_mb]}): those still count, and a VM
    listed there is released from the list."""
    node: str
    cores: int = 0
    memory_mb: int = 0
    disk_mb: int = 0
    vm_count: int = 0
    vms: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    def totals(self) -> tuple[int, int, int]:
        return (self.cores + sum(v[0] for v in self.vms.values()),
                self.memory_mb + sum(v[1] for v in self.vms.values()),
                self.disk_mb + sum(v[2] for v in self.vms.values()))

    def count(self) -> int:
        return self.vm_count + len(self.vms)

    def plus(self, cores: int, memory_mb: int, disk_mb: int) -> NodeAllocation:
        return self.replace(cores=self.cores + cores, memory_mb=self.memory_mb + memory_mb,
                            disk_mb=self.disk_mb + disk_mb, vm_count=self.vm_count + 1)

    def minus(self, vm_id: str, cores: int, memory_mb: int, disk_mb: int) -> NodeAllocation:
        if vm_id in self.vms:
            return self.replace(vms={k: v for k, v in self.vms.items() if k != vm_id})
        return self.replace(cores=max(0, self.cores - cores), memory_mb=max(0, self.memory_mb - memory_mb),
                            disk_mb=max(0, self.disk_mb - disk_mb), vm_count=max(0, self.vm_count - 1))


@dataclasses.dataclass(frozen=True, slots=True)
class OperationRecord(Record):
    id: str
    name: str
    target: str
    status: OperationStatus
    start_time: str
    end_time: str = ""
    error: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class TraceRecord(Record):
    time: str
    source: str
    step: str
    message: str
    detail: str = ""
    placement: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    placement_summary: dict[str, Any] = dataclasses.field(default_factory=dict)   # nodes, considered, ...


@dataclasses.dataclass(frozen=True, slots=True)
class BlobService(Record):
    """Where nodes relay guests' blob requests, and the names guests use for them."""
    endpoint: str          # the controller's data plane, e.g. http://127.0.0.1:7451
    domain: str            # accounts are {account}.blob.{domain}
    stamp_host: str        # ... a CNAME of this name, which resolves to each network's gateway
