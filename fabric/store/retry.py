"""One retry policy for compare-and-swap: how often a read-modify-write is tried again when another writer got
there first (its compares failed, nothing was written), and how long it waits between tries.

    for _ in CAS.attempts():
        cur = store.get(...)
        if store.commit([Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, new)]):
            return new
    raise ArmError("Conflict", "... try again.")

The wait grows from FIRST_BACKOFF_S, doubling, up to MAX_BACKOFF_S, each with random jitter (so that two
writers that collided do not collide again in step); the first attempt never waits.
"""
from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Iterator

CAS_ATTEMPTS = 20
FIRST_BACKOFF_S = 0.002
MAX_BACKOFF_S = 0.1


@dataclasses.dataclass(frozen=True)
class Retry:
    attempts_max: int = CAS_ATTEMPTS
    first_backoff_s: float = FIRST_BACKOFF_S
    max_backoff_s: float = MAX_BACKOFF_S
    sleep: Callable[[float], None] = time.sleep

    def attempts(self) -> Iterator[int]:
        """The attempt numbers, 0 first; waits before every attempt after the first."""
        for n in range(self.attempts_max):
            if n:
                wait = min(self.max_backoff_s, self.first_backoff_s * 2 ** (n - 1))
                self.sleep(wait * random.uniform(0.5, 1.0))
            yield n


CAS = Retry()
