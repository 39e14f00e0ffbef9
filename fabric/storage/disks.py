"""Disk blobs: VM disks as page blobs held under an infinite lease in the VM's name.

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
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fabric.model import now
from fabric.storage import leases, names
from fabric.storage.model import BlobRecord
from fabric.storage.provider import StorageProvider
from fabric.storage.qemu_img import QemuImgError, backing_chain, create_empty, create_overlay
from fabric.arm.errors import ArmError
from fabric.store import Absent, Delete, Put, Unchanged, keys
from fabric.store.client import Compare

DISK_CONTAINER = "vhds"
DELETE_OPTIONS = ("Delete", "Detach")


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
    chain: str


def disk_ref(provider: StorageProvider, rec: BlobRecord) -> dict[str, Any]:
    """What a node's storage backend needs to attach the disk (the local-path backend: a file)."""
    return {"backend": "localpath", "path": str(provider.body_path(rec)), "format": "qcow2",
            "uri": provider.url(rec.account, rec.container, rec.name)}


def ensure_vm_storage(provider: StorageProvider, subscription: str, resource_group: str, account: str) -> str:
    """The account a VM's disks go to (named, or the group's default, made on first use), with its vhds container."""
    if account:
        provider.account(account)
    else:
        account = default_account_name(subscription, resource_group)
        provider.create_account(resource_group, account)
    try:
        provider.create_container(account, DISK_CONTAINER)
    except ArmError as e:
        if e.code != "ContainerAlreadyExists":
            raise
    return account


def prepare_os_disk(provider: StorageProvider, account: str, blob: str, backing: str, backing_format: str,
                    vm_id: str, vm_resource_id: str) -> PreparedDisk:
    return _prepare(provider, account, blob, vm_id, vm_resource_id, "osDisk", "storageProfile.osDisk",
                    lambda path: create_overlay(path, backing, backing_format))


def prepare_data_disk(provider: StorageProvider, account: str, blob: str, size_bytes: int, vm_id: str,
                      vm_resource_id: str) -> PreparedDisk:
    return _prepare(provider, account, blob, vm_id, vm_resource_id, "dataDisk", "storageProfile.dataDisks",
                    lambda path: create_empty(path, size_bytes))


def _prepare(provider: StorageProvider, account: str, blob: str, vm_id: str, vm_resource_id: str, role: str,
             target: str, make: Callable[[Path], int]) -> PreparedDisk:
    """A new disk blob: its body made by `make` under a fresh file name, its record leased in the VM's name."""
    names.check_blob(blob)
    key = keys.blob(account, DISK_CONTAINER, blob)
    if provider.store.get(key, BlobRecord) is not None:
        raise ArmError("Conflict", f"The disk blob '{blob}' already exists in {account}/{DISK_CONTAINER}.", target)
    body = f"{names.body_name(blob)}.{uuid.uuid4().hex[:12]}"
    path = provider.config.blob_root / account / DISK_CONTAINER / body
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        size = make(path)
        chain = backing_chain(path)
    except QemuImgError as e:
        path.unlink(missing_ok=True)
        raise ArmError("DiskCreationFailed", f"The disk could not be created: {e}", target) from None
    lease = leases.acquire(leases.Lease(), leases.INFINITE, vm_id, provider.clock())
    rec = BlobRecord(account=account, container=DISK_CONTAINER, name=blob, blob_type="PageBlob", size=size,
                     content_type="application/octet-stream", content_md5="", etag=f"0x{uuid.uuid4().hex[:15].upper()}",
                     last_modified=now(), body=body, lease=dataclasses.asdict(lease),
                     metadata={"vmId": vm_id, "attachedTo": vm_resource_id, "role": role})
    return PreparedDisk(rec, [Absent(key)], [Put(key, rec)], path, chain)


def lease_existing_disk(provider: StorageProvider, account: str, blob: str, vm_id: str,
                        vm_resource_id: str) -> tuple[BlobRecord, list[Compare], list[Put]]:
    """Ops leasing an existing, unleased disk blob to a VM (attach without --new)."""
    names.check_blob(blob)
    found = provider.store.get(keys.blob(account, DISK_CONTAINER, blob), BlobRecord)
    if found is None:
        raise ArmError("BlobNotFound", f"No disk blob '{blob}' in {account}/{DISK_CONTAINER}; "
                                       f"use --new to create an empty one.", "name")
    if found.value.blob_type != "PageBlob":
        raise ArmError("OperationNotAllowed", f"'{blob}' is a {found.value.blob_type}, not a disk.", "name")
    try:
        lease = leases.acquire(found.value.lease_value(), leases.INFINITE, vm_id, provider.clock())
    except leases.LeaseError as e:
        if e.code == "LeaseAlreadyPresent":
            raise ArmError(e.code, f"The disk blob '{blob}' is leased (attached elsewhere).", "name",
                           http_status=e.status) from None
        raise
    rec = found.value.replace(lease=dataclasses.asdict(lease),
                              metadata={**found.value.metadata, "vmId": vm_id, "attachedTo": vm_resource_id,
                                        "role": "dataDisk"})
    return rec, [Unchanged(found.key, found.mod_revision)], [Put(found.key, rec)]


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
