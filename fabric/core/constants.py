"""Constants the control plane and the node agents must agree on."""
from __future__ import annotations

AGENT_GRACE_S = 120     # beyond an extension's handler timeout: no status by then is the guest agent's failure
