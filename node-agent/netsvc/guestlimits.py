"""What one guest may take of the services on its network: requests a second, connections at once, JSON depth.

Each is kept per VM, the VM being the source address (sound behind port security, see portsec).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

MAX_JSON_DEPTH = 32


@dataclasses.dataclass(frozen=True)
class Rate:
    per_s: float     # sustained requests a second from one VM
    burst: int       # requests one VM may make at once (an agent's start-up)


IMDS_RATE = Rate(per_s=5, burst=5)            # the reference's IMDS: 5 requests a second
WIRESERVER_RATE = Rate(per_s=5, burst=20)     # a guest agent asks for ~10 documents at once when it starts


class RateLimit:
    """A token bucket per VM (its address). A bucket that has filled up again is forgotten (it is what a new one
    would be), so the table holds only the VMs heard from within the last burst / per_s seconds."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.buckets: dict[str, tuple[float, float]] = {}      # key -> (tokens, at)
        self.lock = threading.Lock()
        self._swept = clock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self.lock:
            if now - self._swept > self.rate.burst / self.rate.per_s:
                self.buckets = {k: b for k, b in self.buckets.items() if self._tokens(b, now) < self.rate.burst}
                self._swept = now
            tokens = self._tokens(self.buckets.get(key, (float(self.rate.burst), now)), now)
            allowed = tokens >= 1.0
            self.buckets[key] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def _tokens(self, bucket: tuple[float, float], now: float) -> float:
        tokens, at = bucket
        return min(float(self.rate.burst), tokens + (now - at) * self.rate.per_s)


class ConnectionCap:
    """At most `per_key` connections open at once from one VM."""

    def __init__(self, per_key: int) -> None:
        self.per_key = per_key
        self.open: dict[str, int] = {}
        self.lock = threading.Lock()

    def enter(self, key: str) -> bool:
        with self.lock:
            if self.open.get(key, 0) >= self.per_key:
                return False
            self.open[key] = self.open.get(key, 0) + 1
            return True

    def leave(self, key: str) -> None:
        with self.lock:
            left = self.open.get(key, 1) - 1
            if left > 0:
                self.open[key] = left
            else:
                self.open.pop(key, None)


def json_depth_ok(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays and objects at most `limit` deep (checked without parsing it)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return False
        elif ch in "]}":
            depth -= 1
    return True
