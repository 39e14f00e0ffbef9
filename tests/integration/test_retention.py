"""Operation retention: old finished operations go with their traces; named and running ones stay."""
from __future__ import annotations

import datetime as dt

from fabric import operations
from fabric.controller import retention
from fabric.model import ImageRecord, OperationRecord, PowerState, ProvisioningState, VmRecord
from fabric.store import Put, Store, keys

LONG_AGO = "2020-01-01T00:00:00.000000Z"


def _op(store: Store, name: str, ended: str, running: bool = False) -> str:
    op = operations.new_operation("create", f"/x/{name}")
    if not running:
        op = operations.finished(op).replace(end_time=ended)
    step = operations.step(op.id, "controller", "accepted", name)
    store.commit([], [Put(keys.operation(op.id), op), step])
    return op.id


IMAGE = ImageRecord(publisher="fabriclab", offer="busybox", sku="lab", version="latest", exact_version="1.0.0",
                    disk="/g/disk.vhd", disk_format="vpc", kernel="/g/vmlinuz", initrd="/g/initrd.img",
                    cmdline="console=ttyS0", boot_marker="ready")


def test_old_unnamed_operations_go_with_their_traces(store: Store) -> None:
    old = _op(store, "old", LONG_AGO)
    recent = _op(store, "recent", dt.datetime.now(dt.timezone.utc).isoformat().replace("+00:00", "Z"))
    running = _op(store, "running", "", running=True)
    named = _op(store, "named", LONG_AGO)
    store.put(keys.vm("rg", "vm1"), VmRecord(resource_group="rg", name="vm1", vm_id="v", location="local",
                                             size="Lab_A0", image=IMAGE, operation_id=named,
                                             provisioning_state=ProvisioningState.SUCCEEDED,
                                             power_state=PowerState.RUNNING))
    assert retention.collect(store, keep_s=3600) == [old]
    assert store.get(keys.operation(old), OperationRecord) is None
    assert operations.trace(store, old) == []
    for kept in (recent, running, named):
        assert store.get(keys.operation(kept), OperationRecord) is not None
        assert len(operations.trace(store, kept)) == 1
