"""The steps this node adds to operations' traces (`operation show --trace`), under the node's name."""
from __future__ import annotations

from fabric.operations import record_step
from fabric.store import Store


class Trace:
    def __init__(self, store: Store, node: str) -> None:
        self.store = store
        self.node = node

    def step(self, operation_id: str, name: str, message: str, detail: str = "") -> None:
        record_step(self.store, operation_id, self.node, name, message, detail=detail)
