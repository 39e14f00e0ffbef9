"""How a node reaches a disk blob: the storage backend interface.

The controller hands the node a disk reference (`fabric.model.DiskRef`: the blob's URL and its body's path
on the storage host); the node's backend describes the disk it names (`Disk`: a file, a block device or a
network volume, and its format). Which backend a node uses is the node's (`--disk-access`):

    path   the body opened by its path: the node shares the storage host's folder (the one-machine lab)
    nbd    the body exported to this node alone by the storage host over NBD with TLS (`OpenDisk` on the
           node API, which checks the VM is assigned here); qemu presents this node's NBD certificate (nbd:NODE,
           issued through the node API: the files in the folder qemu.conf's nbd_tls_x509_cert_dir names)

What the hypervisor makes of that description is the compute driver's business (`nodeagent.hypervisor`): a
Ceph RBD backend is one more class here and one more branch of the driver's disk form, and nothing in the
agent's reconcile changes.
"""
from __future__ import annotations

import dataclasses
import os
import pwd
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from fabric.files import SHARED, ensure_dir, write_atomic
from fabric.model import DiskRef
from fabric.pki import Credential, PkiError, key_pem, nbd_identity, new_key, signing_request

from nodeagent.faults import Fault


RENEW_DAYS = 30


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

    def __str__(self) -> str:
        """How the disk is reached, for the trace: the backend and what it names."""
        if self.kind == "network":
            return (f"{self.protocol} export {self.path} on {', '.join(self.hosts)}"
                    f"{' (TLS)' if self.tls else ''}, {self.format}")
        return f"{self.kind} {self.path}, {self.format}"

    @property
    def identity(self) -> str:
        """What tells two disks apart: the hypervisor reports this back for each attached disk."""
        return self.path


class StorageBackend(Protocol):
    def describe(self, vm_id: str, ref: DiskRef) -> Disk: ...
    def forget(self, vm_id: str) -> None: ...


class LocalPathBackend:
    """Disk bodies on a path this node can open: one host, or a shared file system mounted on every host."""

    def describe(self, vm_id: str, ref: DiskRef) -> Disk:
        if not os.path.exists(ref.path):
            raise BackendError(f"disk {ref.uri} is not reachable from this node: {ref.path} does not exist")
        return Disk("file", ref.path, ref.format)

    def forget(self, vm_id: str) -> None:
        pass


class NbdBackend:
    """Disk bodies exported by the storage host to this node over NBD with TLS. An export is asked for once
    per VM and disk, not on every pass; `forget` drops a VM's (it left the node, or its converge failed: the
    next pass asks again, as the storage host may have restarted its server on another port)."""

    def __init__(self, open_disk: Callable[[str, str], tuple[str, int, str]]) -> None:
        self.open_disk = open_disk      # (vm id, blob URL) -> (host, port, export): the node API's OpenDisk
        self._opened: dict[tuple[str, str], Disk] = {}
        self._lock = threading.Lock()

    def describe(self, vm_id: str, ref: DiskRef) -> Disk:
        with self._lock:
            known = self._opened.get((vm_id, ref.uri))
        if known is not None:
            return known
        host, port, name = self.open_disk(vm_id, ref.uri)
        disk = Disk("network", name, "raw", "nbd", (f"{host}:{port}",), tls=True)
        with self._lock:
            self._opened[(vm_id, ref.uri)] = disk
        return disk

    def forget(self, vm_id: str) -> None:
        with self._lock:
            for key in [k for k in self._opened if k[0] == vm_id]:
                del self._opened[key]


def ensure_nbd_tls(folder: Path, node: str, ca_pem: str, issue: Callable[[str], str],
                   qemu_user: str = "libvirt-qemu") -> bool:
    """qemu's NBD client certificate where qemu reads it (ca-cert.pem, client-cert.pem, client-key.pem):
    nbd:NODE, which opens this node's disk exports and no API (so the key qemu's group can read is worth no
    more than that). Kept while it is of this CA and valid RENEW_DAYS more; else a new key is made here and
    `issue(csr)` (the node API) signs it. Whether a new one was made."""
    ensure_dir(folder, 0o750)
    try:
        current = Credential(controller="", ca=(folder / "ca-cert.pem").read_text(),
                             certificate=(folder / "client-cert.pem").read_text(),
                             key=(folder / "client-key.pem").read_text())
        fresh = current.ca == ca_pem and current.identity == nbd_identity(node) and current.valid_for(RENEW_DAYS)
    except (OSError, PkiError):
        fresh = False
    if fresh:
        return False
    key = new_key()
    cert = issue(signing_request(key, nbd_identity(node)).decode())
    write_atomic(folder / "ca-cert.pem", ca_pem, SHARED)
    write_atomic(folder / "client-key.pem", key_pem(key).decode(), 0o640)
    write_atomic(folder / "client-cert.pem", cert, SHARED)
    try:
        gid = pwd.getpwnam(qemu_user).pw_gid
    except KeyError:
        return True                     # qemu runs as root here
    for f in (folder, folder / "client-key.pem"):
        os.chown(f, 0, gid)
    return True


QEMU_CONF = Path("/etc/libvirt/qemu.conf")
_NBD_TLS_DIR = re.compile(r'^\s*nbd_tls_x509_cert_dir\s*=\s*"([^"]*)"', re.M)


def qemu_nbd_tls_dir(conf: Path = QEMU_CONF) -> str:
    """The folder this host's qemu.conf tells qemu to take its NBD client certificate from ("" when unset)."""
    try:
        m = _NBD_TLS_DIR.search(conf.read_text())
    except OSError:
        return ""
    return m[1] if m else ""


def backend(access: str, open_disk: Callable[[str, str], tuple[str, int, str]]) -> StorageBackend:
    if access == "path":
        return LocalPathBackend()
    if access == "nbd":
        return NbdBackend(open_disk)
    raise BackendError(f"no disk access '{access}' on this node (path or nbd)", temporary=False)
