"""The one compare-and-swap retry policy: how many tries, and the waits between them (an injected sleep)."""
from __future__ import annotations

from fabric.store.retry import Retry


def test_attempts_wait_doubling_with_jitter_up_to_a_cap_and_never_before_the_first() -> None:
    waits: list[float] = []
    policy = Retry(attempts_max=8, first_backoff_s=0.01, max_backoff_s=0.1, sleep=waits.append)
    assert list(policy.attempts()) == list(range(8))
    assert len(waits) == 7
    nominal = [0.01, 0.02, 0.04, 0.08, 0.1, 0.1, 0.1]
    assert all(n / 2 <= w <= n for w, n in zip(waits, nominal))


def test_a_loop_that_succeeds_stops_waiting() -> None:
    waits: list[float] = []
    tries = 0
    for _ in Retry(sleep=waits.append).attempts():
        tries += 1
        if tries == 3:
            break
    assert tries == 3 and len(waits) == 2

