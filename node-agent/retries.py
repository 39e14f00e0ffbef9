"""Temporary and terminal errors of a VM's reconcile.

A temporary error (libvirtd restarting, a lock held, a disk whose storage is
not reachable yet, a full disk) is tried again with exponential backoff, each
attempt a step of the VM's operation; only when it has gone on for RETRY_FOR_S
does it fail the operation. A terminal error (a definition the hypervisor
refuses, an unsupported operation, an unknown storage backend) fails it at
once. Either way the VM is tried again at most every RETRY_MAX_S: a fix (the
disk coming back, a new assignment) clears the error without a restart. A
changed assignment starts afresh.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable

RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0
RETRY_FOR_S = 120.0


@dataclasses.dataclass(frozen=True)
class Attempt:
    key: Hashable        # the assignment's version this attempt was for
    first: float         # when the first failure was seen (clock seconds)
    count: int
    due: float           # when to try again
    delay: float
    give_up: bool        # report the error: it is terminal, or temporary for RETRY_FOR_S already

    def story(self, now: float) -> str:
        return f"{self.count} attempts over {now - self.first:.0f} s"


class Retries:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._attempts: dict[str, Attempt] = {}

    def due(self, vm_id: str, key: Hashable) -> bool:
        att = self._attempts.get(vm_id)
        return att is None or att.key != key or self.clock() >= att.due

    def failed(self, vm_id: str, key: Hashable, temporary: bool) -> Attempt:
        now = self.clock()
        prev = self._attempts.get(vm_id)
        if prev is not None and prev.key != key:
            prev = None
        first, count = (prev.first, prev.count + 1) if prev else (now, 1)
        delay = min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** (count - 1))
        att = Attempt(key, first, count, now + delay, delay, give_up=not temporary or now - first >= RETRY_FOR_S)
        self._attempts[vm_id] = att
        return att

    def succeeded(self, vm_id: str) -> None:
        self._attempts.pop(vm_id, None)

    def keep(self, vm_ids: set[str]) -> None:
        self._attempts = {k: v for k, v in self._attempts.items() if k in vm_ids}

    def waiting(self) -> set[str]:
        """The VMs with a failed attempt (tried again when due)."""
        return set(self._attempts)

    def wait(self) -> float | None:
        """Seconds until the next retry is due, None when nothing waits."""
        if not self._attempts:
            return None
        return max(0.0, min(a.due for a in self._attempts.values()) - self.clock())
