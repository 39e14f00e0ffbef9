"""The node's registration: its record under an etcd lease renewed every NODE_HEARTBEAT_S. When the agent
dies the lease expires and the node disappears from placement."""
from __future__ import annotations

import logging
from collections.abc import Callable

from fabric.model import NodeRecord
from fabric.store import Store, keys

log = logging.getLogger("nodeagent")

NODE_LEASE_TTL_S = 10
NODE_HEARTBEAT_S = 3.0


class Registration:
    def __init__(self, store: Store, record: Callable[[], NodeRecord]) -> None:
        self.store = store
        self.record = record
        self.lease_id: int | None = None

    def register(self) -> None:
        rec = self.record()
        self.lease_id = self.store.grant_lease(NODE_LEASE_TTL_S)
        self.store.put(keys.node(rec.name), rec, lease=self.lease_id)
        log.info("node %s registered (lease %x, ttl %d s, domain type %s)", rec.name, self.lease_id,
                 NODE_LEASE_TTL_S, rec.hypervisor)

    def heartbeat(self) -> None:
        """Renew the lease; register again if it has expired (e.g. etcd was down too long)."""
        if self.lease_id is None or self.store.refresh_lease(self.lease_id) <= 0:
            self.register()

    def deregister(self) -> None:
        if self.lease_id is not None:
            self.store.revoke_lease(self.lease_id)
            self.lease_id = None
