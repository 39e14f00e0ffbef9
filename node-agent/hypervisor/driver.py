"""The compute driver: the seam between the node agent and a hypervisor.

The agent speaks in `VmSpec`s (cores, memory, how to boot, disks as storage
backends describe them, NICs, where the serial console goes) and in these
verbs: spawn, destroy, power on, power off, attach and detach a data disk,
list, screenshot. A driver turns a spec into its hypervisor's own form and is
the only code that knows that form: libvirt's domain XML lives in
`libvirt_driver` and `domain_xml` and nowhere else. A second hypervisor
(another virtual machine monitor, or one on a Windows host) is one more class
that satisfies `ComputeDriver`; the agent's reconcile does not change.

Ownership: a driver lists, changes and removes only the instances this node
of this fabric made (several labs and other users share one host). Errors are
`DriverError`s that say whether trying again later may succeed (`temporary`:
the daemon restarting, a lock held, a timeout) or not (a definition the
hypervisor refuses, an operation it does not support).
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Protocol

from nodeagent.faults import Fault
from nodeagent.storage_backends import Disk


class DriverError(Fault):
    """A hypervisor call failed; the message is the hypervisor's."""

    def __init__(self, message: str, temporary: bool = False) -> None:
        super().__init__(message, temporary)


@dataclasses.dataclass(frozen=True)
class DirectBoot:
    """Boot a kernel and initrd from files beside the disk, with this command line."""
    kernel: str
    initrd: str
    cmdline: str


@dataclasses.dataclass(frozen=True)
class FirmwareBoot:
    """Boot the OS disk's own bootloader through the VM's firmware (BIOS: SeaBIOS), as real images boot."""


@dataclasses.dataclass(frozen=True)
class Nic:
    mac: str
    bridge: str      # the node's bridge for the NIC's network
    tap: str         # the host-side interface name: port security filters exactly this name


@dataclasses.dataclass(frozen=True)
class VmSpec:
    uuid: str
    name: str                 # the hypervisor's name for the instance (unique on the host)
    resource_group: str       # labels the instance with the resource it is
    vm_name: str
    cores: int
    memory_mb: int
    boot: DirectBoot | FirmwareBoot
    os_disk: Disk
    resource_disk: Disk       # the node-local temporary disk
    console_log: str          # the serial console is appended to this file
    nics: tuple[Nic, ...] = ()
    data_disks: tuple[tuple[int, Disk], ...] = ()   # (lun, disk) when first made; then attach and detach
    provisioning_cd: Disk | None = None   # the provisioning media (ovf-env.xml), until provisioning ends


@dataclasses.dataclass(frozen=True)
class Instance:
    uuid: str
    name: str
    active: bool


class Spawned(enum.Enum):
    UNCHANGED = "unchanged"   # defined as the spec says already
    DEFINED = "defined"       # made
    REDEFINED = "redefined"   # its definition changed: the running instance takes it at its next start


@dataclasses.dataclass(frozen=True)
class SpawnResult:
    outcome: Spawned
    definition: str = ""      # the hypervisor's form of the spec, for the trace


class ComputeDriver(Protocol):
    node: str
    hypervisor: str           # what runs guests here ("kvm", "qemu" for TCG, "test")
    on_change: Callable[[str], None]   # told the uuid of an instance that changed by itself ("": maybe any)

    def instances(self) -> dict[str, Instance]:
        """uuid -> instance, for every instance this node of this fabric owns."""
        ...

    def instance(self, uuid: str) -> Instance | None:
        """This node's instance with this uuid, None when it has none."""
        ...

    def holder(self, uuid: str) -> str:
        """Who else holds an instance with this uuid on this host; "" when nobody (or we) do."""
        ...

    def spawn(self, spec: VmSpec) -> SpawnResult:
        """Make the instance exist as the spec says (not started). An instance that exists keeps its data
        disks: they change only by attach and detach, which also reach a running instance."""
        ...

    def destroy(self, uuid: str) -> bool:
        """Power the instance off and remove it; whether there was one."""
        ...

    def power_on(self, uuid: str) -> None: ...

    def power_off(self, uuid: str) -> bool:
        """Stop it at once (pulling the plug); whether it was running."""
        ...

    def data_disks(self, uuid: str) -> dict[int, str]:
        """lun -> identity of each data disk the instance's definition has."""
        ...

    def attach_disk(self, uuid: str, lun: int, disk: Disk) -> None:
        """To the definition, and to the running instance (hot-plug)."""
        ...

    def detach_disk(self, uuid: str, lun: int) -> None: ...

    def screenshot(self, uuid: str) -> tuple[str, bytes]:
        """(MIME type, image) of the instance's screen."""
        ...

    def close(self) -> None: ...
