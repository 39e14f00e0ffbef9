"""The steps this node adds to operations' traces (`operation show --trace`), under the node's name, through
the node API (which takes them only for operations of this node's VMs). A step the control plane refuses (the
VM's operation changed since this pass read it) is logged, not fatal: the trace is what the node tells, the
work goes on."""
from __future__ import annotations

import logging

from nodeagent.control import ControlPlane, ControlPlaneRefused

log = logging.getLogger("nodeagent")


class Trace:
    def __init__(self, plane: ControlPlane, node: str) -> None:
        self.plane = plane
        self.node = node

    def step(self, operation_id: str, name: str, message: str, detail: str = "") -> None:
        try:
            self.plane.step(operation_id, name, message, detail)
        except ControlPlaneRefused as exc:
            log.warning("trace step %s of %s not kept: %s", name, operation_id, exc)
