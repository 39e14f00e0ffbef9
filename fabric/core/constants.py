"""Constants the control plane and the node agents must agree on."""
from __future__ import annotations

NODE_LEASE_TTL_S = 10   # a node not heard from this long is gone (its record's etcd lease expires)
AGENT_GRACE_S = 120     # beyond an extension's handler timeout: no status by then is the guest agent's failure
