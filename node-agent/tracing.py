"""The steps this node adds to operations' traces (`operation show --trace`), under the node's name, through
the node API (which takes them only for operations of this node's VMs)."""
from __future__ import annotations

from nodeagent.control import ControlPlane


class Trace:
    def __init__(self, plane: ControlPlane, node: str) -> None:
        self.plane = plane
        self.node = node

    def step(self, operation_id: str, name: str, message: str, detail: str = "") -> None:
        self.plane.step(operation_id, name, message, detail)
