"""The controller's VM reconciler: observed state in, VM and operation state out.

Level-based and per VM: `reconcile_key(key)` reads one VM as it is now (from the watch-fed views of VMs,
observations and nodes) and is idempotent. The controller's loop queues a VM's key when the VM, its
node's observation of it or its node changes, and every RESYNC_S the VMs with work in progress (for the
timeouts); it never rescans the fabric per event. `reconcile_all()` works every VM once.

It completes operations (Succeeded when the node reports the target state, Failed on a node's terminal
error or on timeout) and frees allocations of deallocated and deleted VMs.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence

from fabric import operations
from fabric.core.constants import NODE_LEASE_TTL_S
from fabric.core.errors import ArmError
from fabric.core.workqueue import WorkQueue
from fabric.model import (Assignment, NodeAllocation, NodeRecord, Observed, OperationRecord, PowerState,
                          ProvisioningState, VmRecord)
from fabric.compute import extensions
from fabric.compute.sizes import find_size
from fabric.compute.vms import ComputeProvider, share
from fabric.storage.disk_blobs import discard
from fabric.store import Absent, Delete, Put, Store, Unchanged, Versioned, keys
from fabric.store.client import Compare
from fabric.store.informer import informed
from fabric.store.retry import CAS

log = logging.getLogger(__name__)

PROVISION_TIMEOUT_S = 600.0   # a guest that has not reached user space by then fails the operation
FIRST_RECHECK_S = 2.0
MAX_RECHECK_S = 30.0
SOURCE = "controller"

# transitional power state -> the state the node must report to finish the operation
TARGETS = {
    PowerState.STARTING: PowerState.RUNNING,
    PowerState.STOPPING: PowerState.STOPPED,
    PowerState.DEALLOCATING: PowerState.DEALLOCATED,
}


class VmReconciler:
    """`clock` (epoch seconds) decides when an operation has waited too long: injected by tests.

    A node whose record is missing counts as gone only once this reconciler has run for a node lease's TTL:
    nodes renew their leases through the controller, so after a controller outage they need that long to
    reconnect and register again before a delete goes on without them."""

    def __init__(self, store: Store, compute: ComputeProvider, clock: Callable[[], float] = time.time,
                 source: str = SOURCE) -> None:
        self.source = source      # who writes its trace steps (the leading controller)
        self.store = store
        self.compute = compute
        self.clock = clock
        self.started = clock()
        self.vms = informed(store, keys.VMS, VmRecord)
        self.observed = informed(store, keys.OBSERVED, Observed)
        self.nodes = informed(store, keys.NODES, NodeRecord)

    def _elapsed_s(self, start: str) -> float:
        return self.clock() - dt.datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp()

    def reconcile_all(self) -> None:
        for vm in self.vms.list():
            try:
                self.reconcile_key(vm.key)
            except ArmError as exc:
                log.warning("reconcile %s: %s", vm.key, exc.message)

    def reconcile_key(self, key: str) -> None:
        """One VM, as the views hold it now (nothing to do when it is gone). A decision made on a view older
        than the store fails its transaction and writes nothing: the newer state's event queues the VM again.
        Raises what stopped it (the queue tries the VM again later)."""
        vm = self.vms.get(key)
        if vm is None:
            return
        if vm.value.operation_id:
            self.reconcile(vm)
        if vm.value.extensions and vm.value.node:
            self.reconcile_extensions(vm)

    def in_progress(self) -> list[str]:
        """The VMs with an operation or an extension in progress (worked again from time to time: Rechecks)."""
        busy = (ProvisioningState.CREATING, ProvisioningState.UPDATING, ProvisioningState.DELETING)
        return [v.key for v in self.vms.list() if v.value.provisioning_state in busy
                or any(e.provisioning_state in busy for e in v.value.extensions)]

    def _observation(self, vm: VmRecord) -> tuple[Observed | None, list[Compare]]:
        """The node's observation of the VM from the view, and the compare that makes a decision on it hold
        only while the store has the same (the VM's and the observation's views are separate watches)."""
        if not vm.node:
            return None, []
        key = keys.observed(vm.node, vm.vm_id)
        obs = self.observed.get(key)
        return (obs.value, [Unchanged(key, obs.mod_revision)]) if obs else (None, [Absent(key)])

    def reconcile_extensions(self, cur: Versioned[VmRecord]) -> None:
        fresh = self.vms.get(cur.key)       # reconcile() may have just written the VM (its view has it at once)
        if fresh is None:
            return
        obs, seen = self._observation(fresh.value)
        extensions.reconcile_extensions(self.compute, fresh, obs, self.compute.config.extension_timeout_s,
                                        self._elapsed_s, seen)

    def reconcile(self, cur: Versioned[VmRecord]) -> None:
        """Finish the VM's operation in progress when the node reports its target state."""
        vm = cur.value
        op_v = operations.running(self.store, vm.operation_id)
        if op_v is None:
            return
        op = op_v.value
        o, seen = self._observation(vm)
        deleting = vm.provisioning_state == ProvisioningState.DELETING
        target = PowerState.DELETED if deleting else TARGETS.get(PowerState(vm.power_state))
        if target is None and vm.provisioning_state == ProvisioningState.UPDATING:
            target = PowerState(vm.power_state)       # an update (data disks) at a steady power state
        if target is None:
            return
        compares = [Unchanged(cur.key, cur.mod_revision), Unchanged(op_v.key, op_v.mod_revision), *seen]
        if deleting and vm.node and self.nodes.lookup(keys.node(vm.node)) is None:     # a miss is read again
            if self.clock() - self.started >= NODE_LEASE_TTL_S:
                self._delete_without_node(vm, op, compares)
            return
        if o is not None and o.error and o.operation_id == op.id and not deleting:
            failed = vm.replace(provisioning_state=ProvisioningState.FAILED, error=o.error)
            media_cmp, written = self._ended(cur.key, failed)
            self.store.commit([*compares, *media_cmp], [*written, Put(op_v.key, operations.finished(op, o.error)),
                                                        operations.step(op.id, self.source, "failed",
                                                                        o.error.get("message", ""))])
            return
        reached = o is not None and o.power == target and (
            target == PowerState.DELETED or o.disk_generation >= vm.disk_generation) and (
            target != PowerState.RUNNING or (o.booted and o.generation >= vm.restart_generation))
        if not reached:
            if self._elapsed_s(op.start_time) > PROVISION_TIMEOUT_S and not deleting:
                err = ArmError("OSProvisioningTimedOut",
                               f"The VM did not reach power state '{target}' within {PROVISION_TIMEOUT_S:g} s.").body()
                media_cmp, written = self._ended(cur.key, vm.replace(provisioning_state=ProvisioningState.FAILED,
                                                                     error=err))
                self.store.commit([*compares, *media_cmp], [
                    *written, Put(op_v.key, operations.finished(op, err)),
                    operations.step(op.id, self.source, "timed-out", err["message"])])
            return
        done = operations.finished(op)
        finish = [Put(op_v.key, done), operations.step(op.id, self.source, "completed",
                                                       f"node {vm.node} reports '{target}'")]
        if target in (PowerState.DEALLOCATED, PowerState.DELETED):
            self._release(vm, compares, finish, delete=target == PowerState.DELETED)
            return
        media_cmp, written = self._ended(cur.key, vm.replace(provisioning_state=ProvisioningState.SUCCEEDED,
                                                             power_state=target))
        self.store.commit([*compares, *media_cmp], [*written, *finish])

    def _ended(self, key: str, vm: VmRecord) -> tuple[list[Compare], list[Put]]:
        """The VM as written when its operation ends. Its provisioning media (a password, custom data), read by
        the guest by now or never, is dropped from it and from its assignment: the node then removes the CD."""
        if vm.provisioning_media is None:
            return [], [Put(key, vm)]
        vm = vm.replace(provisioning_media=None)
        a = self.store.get(keys.assignment(vm.node, vm.vm_id), Assignment) if vm.node else None
        if a is None:
            return [], [Put(key, vm)]
        return [Unchanged(a.key, a.mod_revision)], [Put(key, vm), Put(a.key, a.value.replace(provisioning_media=None))]

    def _delete_without_node(self, vm: VmRecord, op: OperationRecord, compares: Sequence[Compare]) -> None:
        """Delete a VM whose node is down (lease expired): free everything here and end its OS disk's use.

        The node, if it ever returns, finds no assignment for the domain and fences it.
        """
        finish = [Put(keys.operation(op.id), operations.finished(op)),
                  operations.step(op.id, self.source, "completed",
                                  f"node {vm.node} is down (its heartbeat lease expired): VM deleted without it; "
                                  f"the node fences the domain if it returns")]
        self._release(vm, compares, finish, delete=True)

    def _release(self, vm: VmRecord, compares: Sequence[Compare], finish: Sequence[Put], delete: bool) -> bool:
        """Free the node's allocation and drop the assignment; delete or mark the VM deallocated.

        False when the VM or its operation changed meanwhile (nothing written)."""
        alloc_key = keys.allocation(vm.node)
        for _ in CAS.attempts():
            alloc = self.store.get(alloc_key, NodeAllocation)
            ops: list[Put | Delete] = [*finish, Delete(keys.assignment(vm.node, vm.vm_id)),
                                       Delete(keys.observed(vm.node, vm.vm_id))]
            cmp = list(compares)
            body = None
            if delete:
                disk_cmp, disk_ops, body, steps = self.compute.release_all(vm, vm.operation_id)
                cmp += disk_cmp
                ops += [*disk_ops, *steps]
            if alloc is not None:
                req = share(find_size(vm.location, vm.size))
                ops.append(Put(alloc_key, alloc.value.minus(vm.vm_id, req.cores, req.memory_mb,
                                                            req.resource_disk_mb)))
                cmp.append(Unchanged(alloc_key, alloc.mod_revision))
            vm_key = keys.vm(vm.resource_group, vm.name)
            if delete:
                ops.append(Delete(vm_key))
            else:
                ops.append(Put(vm_key, vm.replace(node="", provisioning_state=ProvisioningState.SUCCEEDED,
                                                  power_state=PowerState.DEALLOCATED)))
            if self.store.commit(cmp, ops):
                if body is not None:
                    discard(body)
                return True
            if not all(self._holds(c) for c in compares):
                return False
            time.sleep(0.01)
        return False

    def _holds(self, c: Compare) -> bool:
        expected = c.mod_revision if isinstance(c, Unchanged) else 0
        return self.store.revision(c.key) == expected


class Triggers:
    """Which VMs a change concerns, queued: the VM itself, its node's observation of it (observed/NODE/VM_ID)
    and, when a node comes or goes, the VMs on it. Listens to the reconciler's views until `close()`."""

    def __init__(self, reconciler: VmReconciler, queue: WorkQueue) -> None:
        self.r = reconciler
        self.queue = queue
        self._key_of: dict[str, str] = {}               # vm_id -> VM key
        self._on_node: dict[str, set[str]] = {}         # node -> VM keys
        self._where: dict[str, tuple[str, str, int]] = {}    # VM key -> (vm_id, node, mod revision)
        self._lock = threading.Lock()
        reconciler.vms.on_change(self.vm_changed)
        reconciler.observed.on_change(self.observed_changed)
        reconciler.nodes.on_change(self.node_changed)
        for v in reconciler.vms.list():
            self.vm_changed(v.key)

    def close(self) -> None:
        self.r.vms.remove_listener(self.vm_changed)
        self.r.observed.remove_listener(self.observed_changed)
        self.r.nodes.remove_listener(self.node_changed)

    def vm_changed(self, key: str) -> None:
        cur = self.r.vms.get(key)            # read outside this lock: a view's lock is never taken under it
        with self._lock:
            vm_id, node, rev = self._where.get(key, ("", "", 0))
            if cur is None or cur.mod_revision >= rev:       # two threads telling: the newer VM wins
                self._where.pop(key, None)
                self._key_of.pop(vm_id, None)
                self._on_node.get(node, set()).discard(key)
                if cur is not None:
                    self._where[key] = (cur.value.vm_id, cur.value.node, cur.mod_revision)
                    self._key_of[cur.value.vm_id] = key
                    self._on_node.setdefault(cur.value.node, set()).add(key)
        self.queue.add(key)

    def observed_changed(self, key: str) -> None:
        with self._lock:
            vm_key = self._key_of.get(key.rsplit("/", 1)[-1])
        if vm_key:
            self.queue.add(vm_key)

    def node_changed(self, key: str) -> None:
        with self._lock:
            on_it = list(self._on_node.get(key[len(keys.NODES):], ()))
        for vm_key in on_it:
            self.queue.add(vm_key)


class Rechecks:
    """When to work again a VM whose work is in progress and that nothing has changed (its timeouts): first
    after FIRST_RECHECK_S, then at doubling intervals up to MAX_RECHECK_S. Events queue a VM at once anyway;
    this only bounds how late a timeout is seen, and keeps the etcd reads of a fabric of many VMs in
    progress from growing as 1 / interval."""

    def __init__(self, first_s: float = FIRST_RECHECK_S, max_s: float = MAX_RECHECK_S) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self._next: dict[str, tuple[float, float]] = {}     # key -> (when, interval)

    def due(self, in_progress: list[str], now: float) -> list[str]:
        out = []
        nxt = {}
        for key in in_progress:
            when, interval = self._next.get(key, (now + self.first_s, self.first_s))
            if when <= now:
                out.append(key)
                interval = min(self.max_s, interval * 2)
                when = now + interval
            nxt[key] = (when, interval)
        self._next = nxt
        return out
