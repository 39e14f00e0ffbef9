"""The node's registration: its record kept by the control plane under a lease this agent renews every
NODE_HEARTBEAT_S. When the agent dies the lease expires and the node disappears from placement."""
from __future__ import annotations

import logging
from collections.abc import Callable

from fabric.model import NodeRecord
from nodeagent.control import ControlPlane

log = logging.getLogger("nodeagent")

NODE_HEARTBEAT_S = 3.0


class Registration:
    def __init__(self, plane: ControlPlane, record: Callable[[], NodeRecord]) -> None:
        self.plane = plane
        self.record = record
        self.lease_id: int | None = None

    def register(self) -> None:
        rec = self.record()
        self.lease_id = self.plane.register(rec)
        log.info("node %s registered (lease %x, domain type %s)", rec.name, self.lease_id, rec.hypervisor)

    def heartbeat(self) -> None:
        """Renew the lease; register again if it has expired (e.g. the control plane was away too long)."""
        if self.lease_id is None or self.plane.heartbeat(self.lease_id) <= 0:
            self.register()

    def deregister(self) -> None:
        if self.lease_id is not None:
            self.plane.deregister(self.lease_id)
            self.lease_id = None
