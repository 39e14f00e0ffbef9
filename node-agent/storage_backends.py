"""How a node reaches a disk blob: the storage backend interface.

The controller hands the node a disk reference (`fabric.model.DiskRef`, naming its backend); the
backend describes the disk it names (`Disk`: a file, a block device or a
network volume, and its format). What the hypervisor makes of that description
is the compute driver's business (`nodeagent.hypervisor`): a Ceph RBD backend
is one more class here and one more branch of the driver's disk form, and
nothing in the agent's reconcile changes.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Protocol

from fabric.model import DiskRef

from nodeagent.faults import Fault


class BackendError(Fault):
    """The disk is not reachable from this node: temporary unless the reference cannot be served here at all."""

    def __init__(self, message: str, temporary: bool = True) -> None:
        super().__init__(message, temporary)


@dataclasses.dataclass(frozen=True)
class Disk:
    """A disk as any hypervisor can be told about it."""
    kind: str                       # "file", "block" or "network"
    path: str                       # the file or device; for "network", the volume's name (pool/image)
    format: str = "qcow2"           # "qcow2" or "raw"
    protocol: str = ""              # "network" only: "rbd", "nbd", ...
    hosts: tuple[str, ...] = ()     # "network" only: host:port of the storage service

    @property
    def identity(self) -> str:
        """What tells two disks apart: the hypervisor reports this back for each attached disk."""
        return self.path


class StorageBackend(Protocol):
    def describe(self, ref: DiskRef) -> Disk: ...
    def check(self, ref: DiskRef) -> None: ...


class LocalPathBackend:
    """Disk bodies on a path this node can open: one host, or a shared file system mounted on every host."""

    def describe(self, ref: DiskRef) -> Disk:
        return Disk("file", ref.path, ref.format)

    def check(self, ref: DiskRef) -> None:
        if not os.path.exists(ref.path):
            raise BackendError(f"disk {ref.uri} is not reachable from this node: {ref.path} does not exist")


BACKENDS: dict[str, StorageBackend] = {"localpath": LocalPathBackend()}


def backend_for(ref: DiskRef) -> StorageBackend:
    if ref.backend not in BACKENDS:
        raise BackendError(f"no storage backend '{ref.backend}' on this node (has: {', '.join(BACKENDS)})",
                           temporary=False)
    return BACKENDS[ref.backend]


def resolve(ref: DiskRef) -> Disk:
    """The disk a reference names, checked reachable from this node."""
    backend = backend_for(ref)
    backend.check(ref)
    return backend.describe(ref)
