"""Disk blobs: VM disks as page blobs held under an infinite lease in the VM's name.

The lease's id is a random secret (uuid4), never the vmId that `vm show` and IMDS publish: the VM record keeps
it (`leaseId` of its osDisk and dataDisks entries) for the fabric's own release, and no answer shows it. Records
made when the lease id was the vmId have none (data disks) or the vmId: release with `lease_id_of`.

An OS disk is made in two steps so that it lands in the same etcd transaction
as the VM that uses it:
  1. `prepare_os_disk` creates the body (a qcow2 overlay over the gallery VHD)
     under a fresh file name and returns the blob record, already leased, with
     the compare and put to commit;
  2. the caller commits them with the VM; if that fails it calls `discard`.
A crash between 1 and 2 leaves a body without a record, which
`fabric storage check` reports and removes.

`release_ops` gives the transaction ops that end the VM's use of a disk:
release the lease (keep the blob) or delete the blob; the body goes after the
commit (`discard`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from fabric.files import private_opener
from fabric.model import DiskRef, VmDisk, now
from fabric.storage import leases, names
from fabric.storage.model import BlobRecord
from fabric.storage.provider import StorageProvider
from fabric.storage.qemu_img import (QemuImgError, chain_info, create_empty, create_overlay,
                                     extents as map_extents)
from fabric.core.errors import ArmError
from fabric.store import Absent, Delete, Put, Unchanged, keys
from fabric.store.client import Compare

DISK_CONTAINER = "vhds"
DELETE_OPTIONS = ("Delete", "Detach")
DISK_READ_CHUNK = 1024 * 1024      # bytes read from a layer file (or of zeros) at a time


def default_account_name(subscription: str, resource_group: str) -> str:
    """The resource group's own disk account, named like the reference's `blogrgdisks562`."""
    stem = re.sub(r"[^a-z0-9]", "", resource_group.lower())[:16] or "rg"
    digits = int(hashlib.sha256(f"{subscription}/{resource_group.lower()}".encode()).hexdigest(), 16) % 1000
    return f"{stem}disks{digits:03d}"


@dataclasses.dataclass(frozen=True)
class PreparedDisk:
    record: BlobRecord
    compares: list[Compare]
    ops: list[Put]
    path: Path
    chain: str          # what qemu-img said it made ("Formatting '...', fmt=qcow2 ... backing_file=...")


def disk_ref(provider: StorageProvider, rec: BlobRecord) -> DiskRef:
    """What a node's storage backend needs to attach the disk (the local-path backend: a file)."""
    return DiskRef(backend="localpath", uri=provider.url(rec.account, rec.container, rec.name),
                   path=str(provider.body_path(rec)), format="qcow2")


def ensure_vm_storage(provider: StorageProvider, subscription: str, resource_group: str, account: str) -> str:
    """The account a VM's disks go to (named, or the group's default, made on first use), with its vhds container."""
    if account:
        provider.account(account)
    else:
        account = default_account_name(subscription, resource_group)
        try:
            made = provider.account(account)        # made once: after that, read from memory
        except ArmError as e:
            if e.code != "StorageAccountNotFound":
                raise
            made = provider.create_account(resource_group, account)
        if made.resource_group.lower() != resource_group.lower():
            raise ArmError("StorageAccountAlreadyTaken", f"The storage account named {account} is already taken.",
                           "storageProfile.osDisk")
    try:
        provider.container(account, DISK_CONTAINER)
    except ArmError as e:
        if e.code != "ContainerNotFound":
            raise
        try:
            provider.create_container(account, DISK_CONTAINER)
        except ArmError as e:
            if e.code != "ContainerAlreadyExists":
                raise
    return account


def prepare_os_disk(provider: StorageProvider, account: str, blob: str, backing: str, backing_format: str,
                    vm_id: str, vm_resource_id: str) -> PreparedDisk:
    return _prepare(provider, account, blob, vm_id, vm_resource_id, "osDisk", "storageProfile.osDisk",
                    lambda path: create_overlay(path, backing, backing_format), named_for_the_vm=True)


def prepare_data_disk(provider: StorageProvider, account: str, blob: str, size_bytes: int, vm_id: str,
                      vm_resource_id: str) -> PreparedDisk:
    return _prepare(provider, account, blob, vm_id, vm_resource_id, "dataDisk", "storageProfile.dataDisks",
                    lambda path: create_empty(path, size_bytes))


def _prepare(provider: StorageProvider, account: str, blob: str, vm_id: str, vm_resource_id: str, role: str,
             target: str, make: Callable[[Path], tuple[int, str]], named_for_the_vm: bool = False) -> PreparedDisk:
    """A new disk blob: its body made by `make` under a fresh file name, its record leased in the VM's name under a
    new random lease id (the record's `lease_value().id`). `named_for_the_vm`: the name holds the new VM's id, so
    no blob can have it yet (the transaction's Absent still says so)."""
    names.check_blob(blob)
    key = keys.blob(account, DISK_CONTAINER, blob)
    if not named_for_the_vm and provider.store.get(key, BlobRecord) is not None:
        raise ArmError("Conflict", f"The disk blob '{blob}' already exists in {account}/{DISK_CONTAINER}.", target)
    body = f"{names.body_name(blob)}.{uuid.uuid4().hex[:12]}"
    path = provider.body_folder(account, DISK_CONTAINER) / body
    open(path, "xb", opener=private_opener).close()        # 0600 before qemu-img writes it (it keeps the mode)
    try:
        size, chain = make(path)
    except QemuImgError as e:
        path.unlink(missing_ok=True)
        raise ArmError("DiskCreationFailed", f"The disk could not be created: {e}", target) from None
    lease = leases.acquire(leases.Lease(), leases.INFINITE, "", provider.clock())
    rec = BlobRecord(account=account, container=DISK_CONTAINER, name=blob, blob_type="PageBlob", size=size,
                     content_type="application/octet-stream", content_md5="", etag=f"0x{uuid.uuid4().hex[:15].upper()}",
                     last_modified=now(), body=body, lease=dataclasses.asdict(lease),
                     metadata={"vmId": vm_id, "attachedTo": vm_resource_id, "role": role})
    return PreparedDisk(rec, [Absent(key)], [Put(key, rec)], path, chain)


def lease_existing_disk(provider: StorageProvider, account: str, blob: str, vm_id: str,
                        vm_resource_id: str) -> tuple[BlobRecord, list[Compare], list[Put]]:
    """Ops leasing an existing, unleased disk blob to a VM (attach without --new), under a new random lease id."""
    names.check_blob(blob)
    found = provider.store.get(keys.blob(account, DISK_CONTAINER, blob), BlobRecord)
    if found is None:
        raise ArmError("BlobNotFound", f"No disk blob '{blob}' in {account}/{DISK_CONTAINER}; "
                                       f"use --new to create an empty one.", "name")
    if found.value.blob_type != "PageBlob":
        raise ArmError("OperationNotAllowed", f"'{blob}' is a {found.value.blob_type}, not a disk.", "name")
    try:
        lease = leases.acquire(found.value.lease_value(), leases.INFINITE, "", provider.clock())
    except leases.LeaseError as e:
        if e.code == "LeaseAlreadyPresent":
            raise ArmError(e.code, f"The disk blob '{blob}' is leased (attached elsewhere).", "name",
                           http_status=e.status) from None
        raise
    rec = found.value.replace(lease=dataclasses.asdict(lease),
                              metadata={**found.value.metadata, "vmId": vm_id, "attachedTo": vm_resource_id,
                                        "role": "dataDisk"})
    return rec, [Unchanged(found.key, found.mod_revision)], [Put(found.key, rec)]


def lease_id_of(disk: VmDisk, vm_id: str) -> str:
    """The lease id a VM record's disk entry holds its disk under; the vmId for entries made before lease ids
    were secret."""
    return disk.lease_id or vm_id


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def release_ops(provider: StorageProvider, account: str, blob: str, lease_id: str,
                delete: bool) -> tuple[list[Compare], list[Put | Delete], Path | None]:
    """(compares, ops, body to remove after the commit) ending a VM's use of its disk blob.

    A blob that is gone already gives no ops (idempotent)."""
    found = provider.store.get(keys.blob(account, DISK_CONTAINER, blob), BlobRecord)
    if found is None:
        return [], [], None
    rec = found.value
    compares: list[Compare] = [Unchanged(found.key, found.mod_revision)]
    if delete:
        return compares, [Delete(found.key)], provider.body_path(rec)
    lease = rec.lease_value()
    released = rec.lease if lease.id != lease_id else {}
    meta = {k: v for k, v in rec.metadata.items() if k not in ("attachedTo", "vmId")}
    return compares, [Put(found.key, rec.replace(lease=released, metadata=meta))], None


@dataclasses.dataclass(frozen=True)
class _Extent:
    length: int
    file: str          # "" reads as zeros
    offset: int        # where the extent's bytes start in `file`


def disk_content(provider: StorageProvider, rec: BlobRecord,
                 window: tuple[int, int] | None = None) -> tuple[int, Iterator[bytes]]:
    """A disk blob's raw content, what a page blob read returns: (its virtual size, the chunks of exactly that many
    bytes, or of the bytes first..last of `window`).

    `qemu-img map` says, for each extent of the disk, which layer (the qcow2 body or an image of its backing
    chain) holds it and where in that layer's file, or that it reads as zeros; the chunks are read from those
    files. Every qemu-img call uses force-share and the files are opened read-only, as the disk may be in use
    by a running VM: a read is the disk as it is while being read, not a consistent snapshot. QemuImgError
    before anything is read when a part of the disk has no place in a file (compressed or encrypted clusters,
    which this fabric never makes); OSError while reading when a layer file is shorter than its map."""
    top = provider.body_path(rec)
    chain = chain_info(top)
    files = [str(top.parent / c["filename"]) for c in chain]         # an absolute filename stays as it is
    size = int(chain[0]["virtual-size"])
    extents, pos = [], 0
    for e in map_extents(top):
        if e["start"] != pos:
            raise QemuImgError(f"qemu-img map of {top.name} skips from {pos} to {e['start']}")
        if e.get("data") and not e.get("zero"):
            if "offset" not in e:
                raise QemuImgError(f"bytes {pos}-{pos + e['length']} of {top.name} are not stored plainly in a file")
            extents.append(_Extent(e["length"], files[e["depth"]], e["offset"]))
        else:
            extents.append(_Extent(e["length"], "", 0))
        pos += e["length"]
    if pos != size:
        raise QemuImgError(f"qemu-img map of {top.name} covers {pos} of its {size} bytes")
    return size, _read_extents(extents if window is None else _within(extents, *window))


def _within(extents: list[_Extent], first: int, last: int) -> list[_Extent]:
    """The parts of `extents` (laid end to end from byte 0) that hold bytes first..last."""
    out, pos = [], 0
    for e in extents:
        lo, hi = max(first, pos), min(last + 1, pos + e.length)
        if lo < hi:
            out.append(_Extent(hi - lo, e.file, e.offset + (lo - pos) if e.file else 0))
        pos += e.length
    return out


def _read_extents(extents: list[_Extent]) -> Iterator[bytes]:
    zeros = bytes(DISK_READ_CHUNK)
    fds: dict[str, int] = {}
    try:
        for ext in extents:
            if ext.file and ext.file not in fds:
                fds[ext.file] = os.open(ext.file, os.O_RDONLY)
            done = 0
            while done < ext.length:
                n = min(DISK_READ_CHUNK, ext.length - done)
                if not ext.file:
                    yield zeros[:n]
                else:
                    chunk = os.pread(fds[ext.file], n, ext.offset + done)
                    if not chunk:
                        raise OSError(f"{ext.file} ends before offset {ext.offset + done} that its map names")
                    n = len(chunk)
                    yield chunk
                done += n
    finally:
        for fd in fds.values():
            os.close(fd)
