"""The reconcile loop's queue: each key once, never two workers on one key, failures back after a delay."""
from __future__ import annotations

import time

from fabric.compute.reconciler import Rechecks
from fabric.core.workqueue import WorkQueue


def test_a_key_waits_once_however_often_it_changes() -> None:
    q = WorkQueue()
    for k in ["a", "b", "a", "c", "a"]:
        q.add(k)
    assert [q.get(0), q.get(0), q.get(0), q.get(0)] == ["a", "b", "c", None]


def test_a_key_changed_while_worked_on_comes_back_after() -> None:
    q = WorkQueue()
    q.add("a")
    assert q.get(0) == "a"
    q.add("a")                           # changed meanwhile: not handed to a second worker
    assert q.get(0) is None
    q.done("a")
    assert q.get(0) == "a"
    q.done("a")
    assert q.get(0) is None


def test_a_failed_key_comes_back_later_each_time_later() -> None:
    q = WorkQueue(first_retry_s=0.05, max_retry_s=1.0)
    q.add("a")
    assert q.get(0) == "a"
    waits = []
    for _ in range(3):
        q.done("a", ok=False)
        start = time.monotonic()
        assert q.get(0.01) is None       # not at once
        assert q.get(2.0) == "a"
        waits.append(time.monotonic() - start)
    assert waits[0] >= 0.04 and waits[1] >= 0.09 and waits[2] >= 0.19
    q.done("a")
    q.add("a")
    assert q.get(0) == "a"               # success forgets the failures
    q.done("a", ok=False)
    start = time.monotonic()
    assert q.get(2.0) == "a" and time.monotonic() - start < 0.15


def test_a_vm_in_progress_is_rechecked_ever_less_often_until_it_is_done() -> None:
    r = Rechecks(first_s=2.0, max_s=8.0)
    seen = [t for t in range(0, 40) if r.due(["vm"], float(t))]
    assert seen == [2, 6, 14, 22, 30, 38]               # after 2 s, then 4, 8, and 8 s apart
    assert r.due([], 40.0) == [] and r.due(["vm"], 41.0) == []   # done, then in progress anew: 2 s again
    assert r.due(["vm"], 43.0) == ["vm"]
