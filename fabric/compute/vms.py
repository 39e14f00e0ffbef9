"""The compute provider: validates requests and writes desired VM state.

Contract: every public method either raises ArmError having written nothing
(bad input), or commits one etcd transaction (compare-and-swap) holding the VM
record, its OS disk blob (leased in the VM's name, under a secret random lease
id that only the VM record keeps), the node assignment, the node allocation,
the operation and its first trace steps, and returns the operation. The one
write before that transaction is the storage a create needs (the group's
default disk account and its `vhds` container, made once). The controller
never calls libvirt: node agents converge to the assignments.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import uuid
from collections.abc import Callable
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from fabric import operations
from fabric.core import ids
from fabric.core.errors import ArmError, check_location, invalid
from fabric.compute import extensions
from fabric.compute.os_profile import check_custom_data, check_os_profile, imds_os_profile
from fabric.compute.sizes import VmSize, find_size
from fabric.gallery import Gallery
from fabric.groups import require_group
from fabric.model import (AttachedDisk, Assignment, NodeAllocation, NodeRecord, OperationRecord, OsProfile,
                          PowerState, ProvisioningMedia, ProvisioningState, ResourceGroupRecord, SshKey, VmDisk, VmNic,
                          VmRecord, now)
from fabric.scheduler import Candidate, HostState, Placement, Request, explain, place
from fabric.network.addressing import gateway
from fabric.network.model import NicRecord
from fabric.network.provider import NetworkProvider
from fabric.storage.disk_blobs import (DELETE_OPTIONS, discard, disk_ref, ensure_vm_storage, lease_id_of, prepare_os_disk,
                                  release_ops)
from fabric.storage.provider import StorageProvider
from fabric.store import Absent, Delete, Put, Store, Unchanged, Versioned, keys
from fabric.store.client import Compare
from fabric.store.informer import Informer, informed, refresh_compared
from fabric.store.retry import CAS

Refresh = Callable[[VmRecord], tuple[VmRecord, list[Compare], list[Put | Delete]]]
SOURCE = "controller"
STORAGE_SOURCE = "storage"
NETWORK_SOURCE = "network"


@dataclasses.dataclass(frozen=True)
class ComputeConfig:
    subscription: str
    location: str
    extension_timeout_s: int = 300    # the guest agent kills a handler command after this long


def os_disk_name(name: str, vm_id: str) -> str:
    return f"{name}_OsDisk_1_{vm_id.replace('-', '')}"


class ComputeProvider:
    def __init__(self, store: Store, gallery: Gallery, storage: StorageProvider, network: NetworkProvider,
                 config: ComputeConfig) -> None:
        self.store = store
        self.gallery = gallery
        self.storage = storage
        self.network = network
        self.config = config
        self._known_hosts: dict[str, tuple[tuple[int, int], HostState]] = {}

    # ----- reads -----

    def resource_group(self, name: str) -> ResourceGroupRecord:
        return require_group(self.store, name)

    def get(self, rg: str, name: str) -> Versioned[VmRecord]:
        self.resource_group(rg)
        ids.check_vm_name(name)
        found = self.store.get(keys.vm(rg, name), VmRecord)
        if found is None:
            raise ArmError("ResourceNotFound",
                           f"The Resource '{ids.VM_TYPE}/{name}' under resource group '{rg}' was not found.",
                           "name")
        return found

    def list_vms(self, rg: str = "") -> list[Versioned[VmRecord]]:
        """Every VM (of a group), in key order, from the watch-fed view."""
        if rg:
            self.resource_group(rg)
        return informed(self.store, keys.VMS, VmRecord).under(keys.vms_in(rg))

    def resource_id(self, vm: VmRecord) -> str:
        return ids.vm_id(self.config.subscription, vm.resource_group, vm.name)

    # ----- create -----

    def create(self, rg: str, name: str, location: str, image_urn: str, size_name: str,
               storage_account: str = "", delete_option: str = "Delete", vnet: str = "", subnet: str = "",
               nic_names: list[str] | None = None, private_ip: str = "", user_data: str = "",
               provision_vm_agent: bool = True, admin_username: str = "", ssh_keys: list[SshKey] | None = None,
               computer_name: str = "", admin_password: str = "", custom_data: str = "",
               disable_password_authentication: bool | None = None) -> OperationRecord:
        group = self.resource_group(rg)
        ids.check_vm_name(name)
        profile = check_os_profile(name, admin_username, ssh_keys or [], computer_name, admin_password,
                                   disable_password_authentication)
        if custom_data:
            check_custom_data(custom_data)
        media = ProvisioningMedia(admin_password, custom_data) if admin_password or custom_data else None
        location = location or group.location
        check_location(location, self.config.location)
        size = find_size(location, size_name)
        image = self.gallery.resolve(image_urn)
        _check_user_data(user_data)
        if delete_option not in DELETE_OPTIONS:
            raise invalid("storageProfile.osDisk.deleteOption", f"one of {', '.join(DELETE_OPTIONS)}")
        if storage_account:
            self.storage.account(storage_account)
        key = keys.vm(rg, name)
        if informed(self.store, keys.VMS, VmRecord).get(key) is not None:   # else the commit's Absent decides
            raise ArmError("Conflict", f"A VM named '{name}' already exists in resource group '{group.name}'.", "name")
        early = self._place(share(size))      # refused before any disk is made; the first attempt commits on it
        if early[0].node is None:
            raise self._allocation_failed(size, early[0])
        vm_id = str(uuid.uuid4())
        vm = VmRecord(resource_group=group.name, name=name, vm_id=vm_id, location=location, size=size.name,
                      image=image, provisioning_state=ProvisioningState.CREATING,
                      power_state=PowerState.STARTING, created=now(), user_data=user_data,
                      provision_vm_agent=provision_vm_agent, os_profile=profile, provisioning_media=media)
        op = operations.new_operation("create", self.resource_id(vm))
        validated = operations.step(
            op.id, SOURCE, "validated",
            f"size {size.name} ({size.number_of_cores} cores, {size.memory_in_mb} MB); image "
            f"{image.publisher}:{image.offer}:{image.sku}:{image.version} resolved to {image.exact_version}",
            detail=f"gallery VHD {image.disk} (format {image.disk_format})")

        def claim_nics(vm: VmRecord) -> tuple[VmRecord, list[Compare], list[Put | Delete]]:
            """The VM's NICs claimed afresh (a concurrent create may have taken an address meanwhile)."""
            nics, nic_cmp, nic_ops = self.network.vm_nics(group.name, name, vm_id, vnet, subnet, nic_names or [],
                                                          private_ip)
            vm = vm.replace(nics=[self._nic_entry(n, not nic_names) for n in nics])
            claimed = [operations.step(op.id, NETWORK_SOURCE, "nic-claimed",
                                       f"NIC {n.id.rsplit('/', 1)[1]}: MAC {n.mac}, private IP {n.ip} in "
                                       f"{n.prefix}, DNS {name.lower()}.{n.dns_suffix}") for n in vm.nics]
            return vm, nic_cmp, [*nic_ops, *claimed]

        claim_nics(vm)          # bad network input is refused here, before any disk is made
        account = ensure_vm_storage(self.storage, self.config.subscription, group.name, storage_account)
        disk = prepare_os_disk(self.storage, account, f"{os_disk_name(name, vm_id)}.qcow2", image.disk,
                               image.disk_format, vm_id, self.resource_id(vm))
        rec = disk.record
        os_disk = VmDisk(account=account, container=rec.container, blob=rec.name,
                         uri=self.storage.url(account, rec.container, rec.name), ref=disk_ref(self.storage, rec),
                         lease_id=rec.lease_value().id, size_bytes=rec.size, delete_option=delete_option)
        vm = vm.replace(os_disk=os_disk)
        steps = [validated,
                 operations.step(op.id, STORAGE_SOURCE, "os-disk-created",
                                 f"page blob {os_disk.uri}: qcow2 overlay over the gallery VHD "
                                 f"(copy-on-write, {rec.size // (1024 * 1024)} MiB virtual)", detail=disk.chain),
                 operations.step(op.id, STORAGE_SOURCE, "lease-acquired",
                                 "infinite lease on the OS disk blob, held in the VM's name (its id is kept "
                                 "in the VM's record only)")]
        try:
            self._place_and_commit(vm, size, op, [Absent(key), *disk.compares], [*disk.ops, *steps],
                                   conflict_key=key, refresh=claim_nics, first=early)
        except BaseException:
            discard(disk.path)
            raise
        return op

    def _nic_entry(self, n: NicRecord, made: bool) -> VmNic:
        vrg, vname = n.vnet.split("/", 1)
        v = self.network.vnet(vrg, vname).value
        prefix = next(s["prefix"] for s in v.subnets if s["name"] == n.subnet)
        return VmNic(key=keys.nic(n.resource_group, n.name), id=self.network.nic_id(n), mac=n.mac, ip=n.private_ip,
                     vnet=n.vnet, vni=v.vni, prefix=prefix, gateway=str(gateway(IPv4Network(prefix))),
                     dns_suffix=v.dns_suffix, made=made)

    def release_all(self, vm: VmRecord, op_id: str) -> tuple[list[Compare], list[Put | Delete], Path | None,
                                                              list[Put]]:
        """A deleted VM's disks (leases released, OS disk blob deleted per its deleteOption) and NICs (made by
        vm create: deleted, freeing their addresses; named ones: detached)."""
        compares, ops, body, steps = disks_release(self.storage, vm, op_id)
        nic_cmp, nic_ops = self.network.vm_release_ops(vm.vm_id, [n.key for n in vm.nics],
                                                     [n.key for n in vm.nics if n.made])
        if vm.nics:
            steps.append(operations.step(op_id, NETWORK_SOURCE, "nics-released",
                                         "; ".join(f"{n.id.rsplit('/', 1)[1]} "
                                                   f"{'deleted, ' + n.ip + ' freed' if n.made else 'detached'}"
                                                   for n in vm.nics)))
        return compares + nic_cmp, ops + nic_ops, body, steps

    def _allocation_failed(self, size: VmSize, placement: Placement, leaving: str = "") -> ArmError:
        other = f"no node other than {leaving}" if leaving else "no node"
        return ArmError("AllocationFailed",
                        f"Allocation failed: {other} has room for size '{size.name}'. {placement.reason()}",
                        "hardwareProfile.vmSize")

    def _place_and_commit(self, vm: VmRecord, size: VmSize, op: OperationRecord,
                          compares: list[Compare], steps: list[Put | Delete], conflict_key: str,
                          refresh: Refresh | None = None, leaving: str = "",
                          first: tuple[Placement, dict[str, Versioned[NodeAllocation]]] | None = None) -> None:
        """Choose a node and commit VM + assignment + allocation + operation in one transaction.

        The nodes and their allocations are read from the controller's watch-fed view (no etcd read); the
        transaction compares the chosen node's allocation, so a choice made on a stale view fails, and the
        keys it compared are read afresh before the next attempt. A refusal (nothing fits) is decided on a
        fresh read of the store, never on the view alone.

        `refresh`, when given, recomputes part of the VM and its extra compares and ops on every attempt.
        `leaving` (redeploy): the node the VM leaves, never chosen; its assignment and allocation go in the same
        transaction, and the node fences the domain and wipes the temporary disk. `first`: a placement the
        caller has just made (`_place`), taken by the first attempt instead of placing again."""
        req = share(size)
        base_vm, base_compares, base_steps = vm, compares, steps
        for _ in CAS.attempts():
            vm, compares, steps = base_vm, base_compares, base_steps
            if refresh is not None:
                vm, more_compares, more_ops = refresh(vm)
                compares, steps = [*compares, *more_compares], [*more_ops, *steps]
            placement, allocs = first or self._place(req, leaving)
            first = None
            if placement.node is None:
                raise self._allocation_failed(size, placement, leaving)
            node = placement.node
            moving_cmp: list[Compare] = []
            moving_ops: list[Put | Delete] = []
            if leaving:
                old = allocs.get(keys.allocation(leaving))
                moving_ops += [Delete(keys.assignment(leaving, vm.vm_id)), Delete(keys.observed(leaving, vm.vm_id))]
                if old is not None:
                    moving_cmp.append(Unchanged(old.key, old.mod_revision))
                    moving_ops.append(Put(old.key, old.value.minus(vm.vm_id, req.cores, req.memory_mb,
                                                                   req.resource_disk_mb)))
                else:               # the view has none: the commit holds only if the store has none either
                    moving_cmp.append(Unchanged(keys.allocation(leaving), 0))
            alloc = allocs.get(keys.allocation(node))
            new_alloc = (alloc.value if alloc else NodeAllocation(node=node)).plus(
                req.cores, req.memory_mb, req.resource_disk_mb)
            placed = vm.replace(node=node, operation_id=op.id, error=None)
            assignment = self.assignment(placed, size, op.id, PowerState.RUNNING)
            placed_step = operations.step(op.id, SOURCE, "placed", _placed_message(placement),
                                          placement=_placement_rows(placement),
                                          summary=placement_summary(placement, req))
            ok = self.store.commit(
                [*compares, *moving_cmp, Unchanged(keys.allocation(node), alloc.mod_revision if alloc else 0)],
                [*moving_ops, Put(keys.vm(vm.resource_group, vm.name), placed),
                 Put(keys.assignment(node, vm.vm_id), assignment),
                 Put(keys.allocation(node), new_alloc),
                 Put(keys.operation(op.id), op), *steps, placed_step])
            self.network.settled(steps)
            if ok:
                return
            if any(isinstance(c, Absent) for c in compares) and self.store.get(conflict_key, VmRecord):
                raise ArmError("Conflict", f"A VM named '{vm.name}' already exists.", "name")
            if any(isinstance(c, Unchanged) and c.key == conflict_key for c in compares):
                raise ArmError("Conflict", f"VM '{vm.name}' changed during the request; try again.", "name")
            refresh_compared(self.store, [*compares, *moving_cmp, Unchanged(keys.allocation(node), 0)])
        raise ArmError("Conflict", "Too many concurrent changes to the nodes' allocations; try again.")

    def _nodes(self) -> Informer[NodeRecord]:
        return informed(self.store, keys.NODES, NodeRecord)

    def _allocations(self) -> Informer[NodeAllocation]:
        return informed(self.store, keys.ALLOCATIONS, NodeAllocation)

    def _place(self, req: Request, leaving: str = "") -> tuple[Placement, dict[str, Versioned[NodeAllocation]]]:
        """A placement on the watch-fed view; when nothing fits there, again on a fresh read of the store (a
        node that registered a moment ago is not refused for the view's delay)."""
        allocs = self._allocations()
        placement = place(self._host_states(self._nodes().list(), allocs.get, leaving), req)
        if placement.node is not None:
            return placement, {k: a for k in {keys.allocation(placement.node), keys.allocation(leaving)}
                               if (a := allocs.get(k)) is not None}
        fresh = {a.key: a for a in self.store.list(keys.ALLOCATIONS, NodeAllocation)}
        return place(self._host_states(self.store.list(keys.NODES, NodeRecord), fresh.get, leaving), req), fresh

    def _host_states(self, nodes: list[Versioned[NodeRecord]],
                     alloc_of: Callable[[str], Versioned[NodeAllocation] | None], leaving: str = "") -> list[HostState]:
        """What the scheduler knows of each node, remembered per node and allocation revision (shared by the
        API's threads: plain dict reads and writes; only a whole-fabric call forgets nodes that left)."""
        hosts = []
        for n in nodes:
            if n.value.name == leaving:
                continue
            a = alloc_of(keys.allocation(n.value.name))
            version = (n.mod_revision, a.mod_revision if a else 0)
            known = self._known_hosts.get(n.value.name)
            if known is None or known[0] != version:
                used = a.value.totals() if a else (0, 0, 0)
                r = n.value
                known = self._known_hosts[r.name] = (version, HostState(
                    r.name, r.fault_domain, r.cores, r.memory_mb, r.local_disk_mb, *used,
                    vm_count=a.value.count() if a else 0))
            hosts.append(known[1])
        if len(nodes) > 1 and len(self._known_hosts) > 2 * len(nodes) + 64:     # forget nodes that left
            names = {n.value.name for n in nodes}
            self._known_hosts = {k: v for k, v in list(self._known_hosts.items()) if k in names}
        return hosts

    def explain_placement(self, node: str, req: Request) -> Candidate | None:
        """How `node` fares now for a VM of `req`'s size (None: no such node is registered)."""
        n = self._nodes().get(keys.node(node))
        if n is None:
            return None
        return explain(self._host_states([n], self._allocations().get)[0], req)

    def assignment(self, vm: VmRecord, size: VmSize, op_id: str, power: PowerState) -> Assignment:
        if vm.os_disk is None:
            raise ValueError(f"VM {vm.resource_group}/{vm.name} is assigned before its OS disk exists")
        return Assignment(vm_id=vm.vm_id, resource_group=vm.resource_group, name=vm.name, node=vm.node,
                          power=power, generation=vm.restart_generation, cores=size.number_of_cores,
                          memory_mb=size.memory_in_mb, resource_disk_mb=size.resource_disk_size_in_mb,
                          image=vm.image, os_disk=vm.os_disk.ref, operation_id=op_id,
                          data_disks=[AttachedDisk(d.lun, d.ref) for d in vm.data_disks],
                          disk_generation=vm.disk_generation, nics=vm.nics,
                          instance_metadata=self.instance_metadata(vm),
                          extensions=extensions.goal(vm, self.config.extension_timeout_s),
                          extension_generation=vm.extension_generation, vm_agent=vm.provision_vm_agent,
                          provisioning_media=vm.provisioning_media)

    def instance_metadata(self, vm: VmRecord) -> dict[str, Any]:
        """The IMDS `compute` section of a VM (the node adds what only it knows: platformFaultDomain)."""
        img = vm.image
        return {"name": vm.name, "vmId": vm.vm_id, "location": vm.location, "vmSize": vm.size,
                "resourceGroupName": vm.resource_group, "subscriptionId": self.config.subscription,
                "osType": "Linux", "platformUpdateDomain": "0", "tags": "", "userData": vm.user_data,
                "resourceId": self.resource_id(vm),
                "publisher": img.publisher, "offer": img.offer, "sku": img.sku, "version": img.exact_version,
                **imds_os_profile(vm.os_profile or OsProfile(computer_name=vm.name)),
                "storageProfile": {"imageReference": {"publisher": img.publisher, "offer": img.offer,
                                                      "sku": img.sku, "version": img.exact_version}}}

    # ----- lifecycle actions -----

    def action(self, kind: str, rg: str, name: str) -> OperationRecord:
        """start | powerOff | restart | deallocate | redeploy | delete, refused when not allowed in the current
        state."""
        for _ in CAS.attempts():
            cur = self.get(rg, name)
            vm = cur.value
            self._check_allowed(kind, vm)
            op = operations.new_operation(kind, self.resource_id(vm))
            superseded = self._superseded(vm, op)
            stopping_exts, preempted = (extensions.preempt(self, vm, op) if kind in ("powerOff", "deallocate", "delete")
                                        else (vm.extensions, []))
            superseded += preempted
            vm = vm.replace(extensions=stopping_exts)
            size = find_size(vm.location, vm.size)
            if kind == "start" and not vm.node:
                starting = vm.replace(provisioning_state=ProvisioningState.UPDATING, power_state=PowerState.STARTING)
                self._place_and_commit(starting, size, op, [Unchanged(cur.key, cur.mod_revision)],
                                       [*superseded, operations.step(op.id, SOURCE, "accepted",
                                                                     "start of a deallocated VM: placing it again")],
                                       conflict_key=cur.key)
                return op
            if kind == "redeploy":
                moving = vm.replace(provisioning_state=ProvisioningState.UPDATING, power_state=PowerState.STARTING)
                self._place_and_commit(moving, size, op, [Unchanged(cur.key, cur.mod_revision)],
                                       [*superseded, operations.step(
                                           op.id, SOURCE, "accepted", f"redeploy: leaving node {vm.node}; its "
                                                                      f"temporary disk stays behind and is wiped")],
                                       conflict_key=cur.key, leaving=vm.node)
                return op
            if kind == "delete" and not vm.node:
                done = self._delete_unplaced(cur, op, superseded)
                if done is not None:
                    return done
                continue
            new_vm, power = self._next(kind, vm)
            new_vm = new_vm.replace(operation_id=op.id, error=None)
            ops: list[Put | Delete] = [Put(cur.key, new_vm), Put(keys.operation(op.id), op), *superseded,
                                       operations.step(op.id, SOURCE, "accepted",
                                                       f"{kind}: desired power state '{power}'")]
            if vm.node:
                ops.append(Put(keys.assignment(vm.node, vm.vm_id), self.assignment(new_vm, size, op.id, power)))
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], ops):
                return op
        raise ArmError("Conflict", f"VM '{name}' is changing too often; try again.", "name")

    def _check_allowed(self, kind: str, vm: VmRecord) -> None:
        if vm.provisioning_state == ProvisioningState.DELETING:
            raise ArmError("OperationNotAllowed", f"VM '{vm.name}' is being deleted.", "name")
        if kind == "delete":
            return
        self.check_idle(vm)
        allowed = {
            "start": {PowerState.STOPPED, PowerState.DEALLOCATED, PowerState.RUNNING},
            "powerOff": {PowerState.RUNNING, PowerState.STOPPED},
            "restart": {PowerState.RUNNING},
            "deallocate": {PowerState.RUNNING, PowerState.STOPPED, PowerState.DEALLOCATED},
            "redeploy": {PowerState.RUNNING, PowerState.STOPPED},
        }[kind]
        if vm.power_state not in allowed and not (vm.provisioning_state == ProvisioningState.FAILED
                                                  and kind in ("start", "powerOff", "deallocate")):
            raise ArmError("OperationNotAllowed",
                           f"Cannot {kind} VM '{vm.name}' while its power state is '{vm.power_state}'.", "name")

    def check_idle(self, vm: VmRecord) -> None:
        """Conflict while another operation is in progress on the VM."""
        busy = self._in_progress(vm)
        if busy:
            raise ArmError("Conflict", f"Operation '{busy}' is in progress on VM '{vm.name}'; "
                                       f"wait for it (fabric operation show {busy}) or delete the VM.", "name")

    def _in_progress(self, vm: VmRecord) -> str:
        return vm.operation_id if operations.running(self.store, vm.operation_id) else ""

    def _superseded(self, vm: VmRecord, new_op: OperationRecord) -> list[Put]:
        """A delete preempts a running operation: that one ends Failed with OperationPreempted."""
        old = operations.running(self.store, vm.operation_id)
        if old is None:
            return []
        err = ArmError("OperationPreempted", f"Operation preempted by {new_op.name} ({new_op.id}).").body()
        return [Put(old.key, operations.finished(old.value, err)),
                operations.step(old.value.id, SOURCE, "preempted", f"preempted by operation {new_op.id}")]

    @staticmethod
    def _next(kind: str, vm: VmRecord) -> tuple[VmRecord, PowerState]:
        upd = ProvisioningState.UPDATING
        if kind == "start":
            return vm.replace(provisioning_state=upd, power_state=PowerState.STARTING), PowerState.RUNNING
        if kind == "powerOff":
            return vm.replace(provisioning_state=upd, power_state=PowerState.STOPPING), PowerState.STOPPED
        if kind == "restart":
            return (vm.replace(provisioning_state=upd, power_state=PowerState.STARTING,
                               restart_generation=vm.restart_generation + 1), PowerState.RUNNING)
        if kind == "deallocate":
            return vm.replace(provisioning_state=upd, power_state=PowerState.DEALLOCATING), PowerState.DEALLOCATED
        if kind == "delete":
            return vm.replace(provisioning_state=ProvisioningState.DELETING), PowerState.DELETED
        raise invalid("action", f"unknown action {kind}")

    def _delete_unplaced(self, cur: Versioned[VmRecord], op: OperationRecord,
                         superseded: list[Put]) -> OperationRecord | None:
        """Delete a VM no node holds (deallocated): the record goes and the OS disk's lease is released
        (and the blob deleted, with deleteOption Delete). None when something changed meanwhile."""
        done = operations.finished(op)
        compares, disk_ops, body, steps = self.release_all(cur.value, op.id)
        ops: list[Put | Delete] = [Delete(cur.key), Put(keys.operation(op.id), done), *superseded, *disk_ops,
                                   *steps, operations.step(op.id, SOURCE, "deleted", "VM removed (no node held it)")]
        if not self.store.commit([Unchanged(cur.key, cur.mod_revision), *compares], ops):
            return None
        if body is not None:
            discard(body)
        return done


MAX_USER_DATA_BYTES = 64 * 1024


def _check_user_data(value: str) -> None:
    if not value:
        return
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("userData", "base64 text") from None
    if len(raw) > MAX_USER_DATA_BYTES:
        raise invalid("userData", f"at most {MAX_USER_DATA_BYTES // 1024} KiB")


def disks_release(storage: StorageProvider, vm: VmRecord,
                  op_id: str) -> tuple[list[Compare], list[Put | Delete], Path | None, list[Put]]:
    """The end of a deleted VM's use of its disks: ops releasing each lease (and deleting the OS disk blob
    when its deleteOption is Delete; data disks are kept, as in the reference), the OS disk body to remove
    after the commit, and the trace steps."""
    compares: list[Compare] = []
    ops: list[Put | Delete] = []
    steps: list[Put] = []
    body = None
    if vm.os_disk is not None:
        d = vm.os_disk
        delete = d.delete_option == "Delete"
        compares, ops, body = release_ops(storage, d.account, d.blob, lease_id_of(d, vm.vm_id), delete)
        what = "lease released and blob deleted" if delete else "lease released; blob kept (deleteOption Detach)"
        steps.append(operations.step(op_id, STORAGE_SOURCE, "os-disk-released", f"{d.uri}: {what}"))
    for d in vm.data_disks:
        c, o, _ = release_ops(storage, d.account, d.blob, lease_id_of(d, vm.vm_id), delete=False)
        compares += c
        ops += o
        steps.append(operations.step(op_id, STORAGE_SOURCE, "data-disk-released",
                                     f"{d.uri}: lease released; blob kept"))
    return compares, ops, body, steps


def share(size: VmSize) -> Request:
    """What a VM of this size takes from its node's allocation."""
    return Request(size.number_of_cores, size.memory_in_mb, size.resource_disk_size_in_mb)


def _placed_message(p: Placement) -> str:
    if p.considered == p.nodes and p.nodes <= len(p.candidates):
        return f"node {p.node} chosen"
    return (f"node {p.node} chosen: {p.feasible} of {p.considered} nodes considered fit "
            f"({p.nodes} registered); the best shown, any other with --why-not NODE")


def placement_summary(p: Placement, req: Request) -> dict[str, Any]:
    """What the trace keeps of a placement besides its rows: the same size for any number of nodes."""
    return {"nodes": p.nodes, "considered": p.considered, "feasible": p.feasible,
            "rejected": [{"filter": f, "nodes": n} for f, n in p.rejected],
            "request": {"cores": req.cores, "memoryMb": req.memory_mb, "resourceDiskMb": req.resource_disk_mb}}


def candidate_row(c: Candidate) -> dict[str, Any]:
    return {"node": c.node, "faultDomain": c.fault_domain, "weight": c.weight, "chosen": c.chosen,
            "filters": [{"filter": f, "passed": ok, "reason": why} for f, ok, why in c.verdicts]}


def _placement_rows(p: Placement) -> list[dict[str, Any]]:
    return [candidate_row(c) for c in p.candidates]
