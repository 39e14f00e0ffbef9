"""Asynchronous operations and their traces.

An operation record lives at keys.operation(id); its trace is a set of keys
under keys.trace_of(id), one per step, written with a plain put by whoever
took the step (controller or node agent), so steps never contend.
"""
from __future__ import annotations

import time
import uuid
from typing import Any

from fabric.model import OperationRecord, OperationStatus, TraceRecord, now
from fabric.store import Put, Store, Versioned, keys

OPERATION_NAMES = {
    "create": "Microsoft.Compute/virtualMachines/write",
    "write": "Microsoft.Compute/virtualMachines/write",
    "start": "Microsoft.Compute/virtualMachines/start/action",
    "powerOff": "Microsoft.Compute/virtualMachines/powerOff/action",
    "restart": "Microsoft.Compute/virtualMachines/restart/action",
    "deallocate": "Microsoft.Compute/virtualMachines/deallocate/action",
    "redeploy": "Microsoft.Compute/virtualMachines/redeploy/action",
    "delete": "Microsoft.Compute/virtualMachines/delete",
    "extensionWrite": "Microsoft.Compute/virtualMachines/extensions/write",
    "extensionDelete": "Microsoft.Compute/virtualMachines/extensions/delete",
    "deploymentWrite": "Microsoft.Resources/deployments/write",
}


def new_operation(kind: str, target: str) -> OperationRecord:
    return OperationRecord(id=str(uuid.uuid4()), name=OPERATION_NAMES[kind], target=target,
                           status=OperationStatus.IN_PROGRESS, start_time=now())


def step(op_id: str, source: str, name: str, message: str, detail: str = "",
         placement: list[dict[str, Any]] | None = None, summary: dict[str, Any] | None = None) -> Put:
    """A trace step as a Put, to commit alone or inside a larger transaction."""
    rec = TraceRecord(time=now(), source=source, step=name, message=message, detail=detail,
                      placement=placement or [], placement_summary=summary or {})
    return Put(keys.trace_step(op_id, time.time_ns(), source), rec)


def record_step(store: Store, op_id: str, source: str, name: str, message: str, detail: str = "") -> None:
    if op_id:
        p = step(op_id, source, name, message, detail)
        store.put(p.key, p.value)


def running(store: Store, op_id: str) -> Versioned[OperationRecord] | None:
    """The operation when it is still in progress; None for "", an unknown id or a finished operation."""
    found = store.get(keys.operation(op_id), OperationRecord) if op_id else None
    return found if found is not None and found.value.status == OperationStatus.IN_PROGRESS else None


def finished(op: OperationRecord, error: dict[str, Any] | None = None) -> OperationRecord:
    status = OperationStatus.FAILED if error else OperationStatus.SUCCEEDED
    return op.replace(status=status, end_time=now(), error=error)


def trace(store: Store, op_id: str) -> list[TraceRecord]:
    return [v.value for v in store.list(keys.trace_of(op_id), TraceRecord)]
