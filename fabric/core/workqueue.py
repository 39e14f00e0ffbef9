"""Keys waiting to be worked on, as the controller's reconcile loop takes them.

Level-based: a key is in the queue at most once however often its object changed, and the worker reads the
object as it is when it gets to the key. A key that changes while it is being worked on comes back once the
work ends (never two workers on one key). A key whose work failed comes back after a delay that doubles
with each failure in a row (FIRST_RETRY_S up to MAX_RETRY_S), so one broken object cannot spin the loop.
"""
from __future__ import annotations

import heapq
import threading
import time

FIRST_RETRY_S = 0.05
MAX_RETRY_S = 10.0


class WorkQueue:
    def __init__(self, first_retry_s: float = FIRST_RETRY_S, max_retry_s: float = MAX_RETRY_S) -> None:
        self.first_retry_s = first_retry_s
        self.max_retry_s = max_retry_s
        self._ready: dict[str, None] = {}          # insertion-ordered set: the oldest first
        self._later: list[tuple[float, str]] = []  # (when, key)
        self._working: set[str] = set()
        self._dirty: set[str] = set()              # changed while being worked on
        self._failures: dict[str, int] = {}
        self._cond = threading.Condition()

    def add(self, key: str) -> None:
        with self._cond:
            if key in self._working:
                self._dirty.add(key)
                return
            if key not in self._ready:
                self._ready[key] = None
                self._cond.notify()

    def get(self, timeout_s: float) -> str | None:
        """The oldest key ready to be worked on (None after `timeout_s` with none); call `done` after."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                now = time.monotonic()
                while self._later and self._later[0][0] <= now:
                    _, key = heapq.heappop(self._later)
                    if key not in self._working:
                        self._ready.setdefault(key, None)
                    else:
                        self._dirty.add(key)
                if self._ready:
                    key = next(iter(self._ready))
                    del self._ready[key]
                    self._working.add(key)
                    return key
                if now >= deadline:
                    return None
                wait = deadline - now
                if self._later:
                    wait = min(wait, self._later[0][0] - now)
                self._cond.wait(max(wait, 0.001))

    def done(self, key: str, ok: bool = True) -> None:
        with self._cond:
            self._working.discard(key)
            if ok:
                self._failures.pop(key, None)
            else:
                n = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(self.max_retry_s, self.first_retry_s * 2 ** (n - 1))
                heapq.heappush(self._later, (time.monotonic() + delay, key))
                self._cond.notify()
            if key in self._dirty:
                self._dirty.discard(key)
                if ok:
                    self._ready.setdefault(key, None)
                    self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._later)
