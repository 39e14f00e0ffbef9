"""Data disks: empty or existing disk blobs attached to a VM as SCSI LUNs, leased in the VM's name.

Limits and rules, refused before anything is written:
  - at most the size's maxDataDiskCount (OperationNotAllowed),
  - a new disk is 1-1023 GB (the reference's data disk size),
  - an existing disk must be an unleased page blob of the VM's storage account.
An attach or detach is one transaction (VM record with a new disk generation,
disk blob lease, node assignment, operation); the node hot-plugs the LUN and
reports the generation it reached, which completes the operation.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from fabric import operations
from fabric.core.errors import ArmError, invalid
from fabric.compute.sizes import find_size
from fabric.model import OperationRecord, PowerState, ProvisioningState, VmDisk, VmRecord
from fabric.storage.disk_blobs import (DISK_CONTAINER, discard, disk_ref, lease_existing_disk, lease_id_of,
                                  prepare_data_disk, release_ops)
from fabric.store import Delete, Put, Unchanged, Versioned, keys
from fabric.store.client import Compare

if TYPE_CHECKING:
    from fabric.compute.vms import ComputeProvider

MAX_DATA_DISK_GB = 1023
_DISK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
SOURCE = "controller"
STORAGE_SOURCE = "storage"


def _check_name(name: str) -> None:
    if not _DISK_NAME.match(name or "") or name.endswith("."):
        raise invalid("name", "a disk name is 1-80 letters, digits, '_', '-' or '.', starting with a letter or "
                              "digit and not ending with '.'")


def _idle_vm(p: ComputeProvider, rg: str, vm_name: str) -> Versioned[VmRecord]:
    cur = p.get(rg, vm_name)
    if cur.value.provisioning_state == ProvisioningState.DELETING:
        raise ArmError("OperationNotAllowed", f"VM '{vm_name}' is being deleted.", "vmName")
    p.check_idle(cur.value)
    if cur.value.power_state not in (PowerState.RUNNING, PowerState.STOPPED, PowerState.DEALLOCATED):
        raise ArmError("OperationNotAllowed", f"VM '{vm_name}' is {cur.value.power_state}; try again when it is "
                                              f"running, stopped or deallocated.", "vmName")
    return cur


def attach(p: ComputeProvider, rg: str, vm_name: str, disk: str, size_gb: int, new: bool) -> OperationRecord:
    _check_name(disk)
    if new and not 1 <= size_gb <= MAX_DATA_DISK_GB:
        raise invalid("sizeGb", f"a new data disk is 1-{MAX_DATA_DISK_GB} GB")
    cur = _idle_vm(p, rg, vm_name)
    vm = cur.value
    size = find_size(vm.location, vm.size)
    if len(vm.data_disks) >= size.max_data_disk_count:
        raise ArmError("OperationNotAllowed",
                       f"The maximum number of data disks allowed to be attached to a VM of size {size.name} is "
                       f"{size.max_data_disk_count}.", "storageProfile.dataDisks")
    if any(d.name.lower() == disk.lower() for d in vm.data_disks):
        raise ArmError("Conflict", f"A disk named '{disk}' is already attached to VM '{vm_name}'.", "name")
    lun = min(set(range(size.max_data_disk_count)) - {d.lun for d in vm.data_disks})
    account, blob = (vm.os_disk.account if vm.os_disk else ""), f"{disk}.qcow2"
    op = operations.new_operation("write", p.resource_id(vm))
    body = None
    if new:
        prepared = prepare_data_disk(p.storage, account, blob, size_gb * 1024 ** 3, vm.vm_id, p.resource_id(vm))
        rec, compares, disk_ops, body = prepared.record, prepared.compares, list(prepared.ops), prepared.path
        made = f"empty {size_gb} GB page blob created, leased in the VM's name"
        create_option = "Empty"
    else:
        rec, compares, disk_ops = lease_existing_disk(p.storage, account, blob, vm.vm_id, p.resource_id(vm))
        made = "existing page blob leased in the VM's name"
        create_option = "Attach"
    entry = VmDisk(account=account, container=DISK_CONTAINER, blob=blob,
                   uri=p.storage.url(account, DISK_CONTAINER, blob), ref=disk_ref(p.storage, rec),
                   lease_id=rec.lease_value().id, size_bytes=rec.size, name=disk, lun=lun, create_option=create_option)
    new_vm = vm.replace(data_disks=sorted([*vm.data_disks, entry], key=lambda d: d.lun))
    steps = [operations.step(op.id, STORAGE_SOURCE, "data-disk-leased", f"{entry.uri}: {made}"),
             operations.step(op.id, SOURCE, "accepted", f"attach disk {disk} as LUN {lun}")]
    try:
        return _commit(p, cur, new_vm, op, compares, [*disk_ops, *steps])
    except BaseException:
        if body is not None:
            discard(body)
        raise


def detach(p: ComputeProvider, rg: str, vm_name: str, disk: str) -> OperationRecord:
    cur = _idle_vm(p, rg, vm_name)
    vm = cur.value
    entry = next((d for d in vm.data_disks if d.name.lower() == disk.lower()), None)
    if entry is None:
        raise ArmError("NotFound", f"No disk named '{disk}' is attached to VM '{vm_name}'.", "name")
    op = operations.new_operation("write", p.resource_id(vm))
    compares, disk_ops, _ = release_ops(p.storage, entry.account, entry.blob, lease_id_of(entry, vm.vm_id),
                                        delete=False)
    new_vm = vm.replace(data_disks=[d for d in vm.data_disks if d is not entry])
    steps = [operations.step(op.id, SOURCE, "accepted", f"detach disk {entry.name} (LUN {entry.lun})"),
             operations.step(op.id, STORAGE_SOURCE, "data-disk-released",
                             f"{entry.uri}: lease released; the blob is kept")]
    return _commit(p, cur, new_vm, op, compares, [*disk_ops, *steps])


def _commit(p: ComputeProvider, cur: Versioned[VmRecord], new_vm: VmRecord, op: OperationRecord,
            compares: list[Compare], ops: list[Put | Delete]) -> OperationRecord:
    """One transaction; a VM no node holds (deallocated) is updated at once and the operation ends."""
    vm = cur.value
    new_vm = new_vm.replace(disk_generation=vm.disk_generation + 1, operation_id=op.id, error=None)
    if vm.node:
        new_vm = new_vm.replace(provisioning_state=ProvisioningState.UPDATING)
        size = find_size(vm.location, vm.size)
        ops = [*ops, Put(keys.assignment(vm.node, vm.vm_id), p.assignment(new_vm, size, op.id, vm.power_state))]
    else:
        op = operations.finished(op)
    if not p.store.commit([Unchanged(cur.key, cur.mod_revision), *compares],
                          [Put(cur.key, new_vm), Put(keys.operation(op.id), op), *ops]):
        raise ArmError("Conflict", f"VM '{vm.name}' or the disk changed during the request; try again.", "name")
    return op
