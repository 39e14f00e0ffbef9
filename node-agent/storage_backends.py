"""How a node reaches a disk blob: the storage backend interface.

The controller hands the node a disk reference (`fabric.model.DiskRef`: the blob's URL and its body's path
on the storage host); the node's backend describes the disk it names (`Disk`: a file, a block device or a
network volume, and its format). Which backend a node uses is the node's (`--disk-access`):

    path   the body opened by its path: the node shares the storage host's folder (the one-machine lab)
    nbd    the body exported to this node alone by the storage host over NBD with TLS (`OpenDisk` on the
           node API, which checks the VM is assigned here); qemu presents this node's certificate (the files
           in the folder qemu.conf's nbd_tls_x509_cert_dir names, written by the agent at start)

What the hypervisor makes of that description is the compute driver's business (`nodeagent.hypervisor`): a
Ceph RBD backend is one more class here and one more branch of the driver's disk form, and nothing in the
agent's reconcile changes.
"""
from __future__ import annotations

import dataclasses
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fabric.files import SHARED, ensure_dir, write_atomic
from fabric.model import DiskRef
from fabric.pki import Credential

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
    tls: bool = False               # "network" only: the connection is TLS (qemu's client certificate)

    @property
    def identity(self) -> str:
        """What tells two disks apart: the hypervisor reports this back for each attached disk."""
        return self.path


class StorageBackend(Protocol):
    def describe(self, vm_id: str, ref: DiskRef) -> Disk: ...


class LocalPathBackend:
    """Disk bodies on a path this node can open: one host, or a shared file system mounted on every host."""

    def describe(self, vm_id: str, ref: DiskRef) -> Disk:
        if not os.path.exists(ref.path):
            raise BackendError(f"disk {ref.uri} is not reachable from this node: {ref.path} does not exist")
        return Disk("file", ref.path, ref.format)


class NbdBackend:
    """Disk bodies exported by the storage host to this node over NBD with TLS."""

    def __init__(self, open_disk: Callable[[str, str], tuple[str, int, str]]) -> None:
        self.open_disk = open_disk      # (vm id, blob URL) -> (host, port, export): the node API's OpenDisk

    def describe(self, vm_id: str, ref: DiskRef) -> Disk:
        host, port, name = self.open_disk(vm_id, ref.uri)
        return Disk("network", name, "raw", "nbd", (f"{host}:{port}",), tls=True)


def write_nbd_tls(folder: Path, credential: Credential, qemu_user: str = "libvirt-qemu") -> None:
    """This node's certificate where qemu reads it for NBD's TLS (ca-cert.pem, client-cert.pem,
    client-key.pem): the key readable by root and qemu's group only."""
    ensure_dir(folder, 0o750)
    write_atomic(folder / "ca-cert.pem", credential.ca, SHARED)
    write_atomic(folder / "client-cert.pem", credential.certificate, SHARED)
    write_atomic(folder / "client-key.pem", credential.key, 0o640)
    try:
        gid = pwd.getpwnam(qemu_user).pw_gid
    except KeyError:
        return                          # qemu runs as root here
    for f in (folder, folder / "client-key.pem"):
        os.chown(f, 0, gid)


def backend(access: str, open_disk: Callable[[str, str], tuple[str, int, str]]) -> StorageBackend:
    if access == "path":
        return LocalPathBackend()
    if access == "nbd":
        return NbdBackend(open_disk)
    raise BackendError(f"no disk access '{access}' on this node (path or nbd)", temporary=False)
