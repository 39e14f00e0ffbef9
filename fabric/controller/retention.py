"""Operation retention: finished operations are kept for a while (`fabric operation show ID --trace` is how
people learn what happened), then removed with their traces, unless a resource still names them as its last
operation (a VM's, an extension's, a deployment's or one of its resources')."""
from __future__ import annotations

import datetime as dt
import logging

from fabric.deployments.engine import DeploymentRecord
from fabric.model import OperationRecord, OperationStatus, VmRecord
from fabric.store import Delete, Store, Unchanged, keys

log = logging.getLogger(__name__)

DEFAULT_RETENTION_S = 7 * 24 * 3600
COLLECT_EVERY_S = 600.0


def _named(store: Store) -> set[str]:
    out: set[str] = set()
    for vm in store.list(keys.VMS, VmRecord):
        out.add(vm.value.operation_id)
        out |= {e.operation_id for e in vm.value.extensions}
    for d in store.list(keys.DEPLOYMENTS, DeploymentRecord):
        out.add(d.value.operation_id)
        out |= {r.operation_id for r in d.value.resources}
    out.discard("")
    return out


def collect(store: Store, keep_s: float, now: dt.datetime | None = None) -> list[str]:
    """Remove finished operations that ended more than keep_s ago and that nothing names; their ids."""
    now = now or dt.datetime.now(dt.timezone.utc)
    named = _named(store)
    removed = []
    for cur in store.list(keys.OPERATIONS, OperationRecord):
        op = cur.value
        if op.status == OperationStatus.IN_PROGRESS or not op.end_time or op.id in named:
            continue
        ended = dt.datetime.fromisoformat(op.end_time.replace("Z", "+00:00"))
        if (now - ended).total_seconds() <= keep_s:
            continue
        store.delete_prefix(keys.trace_of(op.id))          # the trace first: a crash leaves a record, not orphans
        if store.commit([Unchanged(cur.key, cur.mod_revision)], [Delete(cur.key)]):
            removed.append(op.id)
    if removed:
        log.info("removed %d operations that ended more than %g h ago", len(removed), keep_s / 3600)
    return removed
