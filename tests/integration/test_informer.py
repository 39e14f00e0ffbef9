"""A prefix kept in memory by a watch, against the real etcd: it follows every change, and after a lost watch
(a compaction past it, a restarted etcd) it holds again exactly what the store holds."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from fabric.lab.etcd import ETCD_START_TIMEOUT_S, Etcd, wait_answering
from fabric.model import NodeAllocation
from fabric.store import Delete, Put, Store
from fabric.store.informer import Informer, informed

PREFIX = "/fabriclab/test-informer/"


def rec(node: str, cores: int = 1) -> NodeAllocation:
    return NodeAllocation(node=node, vms={"vm": [cores, 1, 1]})


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.02)


def same_as_store(store: Store, inf: Informer[NodeAllocation]) -> bool:
    return [(v.key, v.value, v.mod_revision) for v in inf.list()] == \
        [(v.key, v.value, v.mod_revision) for v in store.list(PREFIX, NodeAllocation)]


def test_it_lists_then_follows_every_change(store: Store) -> None:
    store.put(PREFIX + "a", rec("a"))
    store.put(PREFIX + "b", rec("b"))
    inf = Informer(store, PREFIX, NodeAllocation).start()
    seen: list[str] = []
    inf.on_change(seen.append)
    assert [v.key for v in inf.list()] == [PREFIX + "a", PREFIX + "b"]
    store.put(PREFIX + "c", rec("c"))
    store.put(PREFIX + "a", rec("a", cores=4))
    store.delete(PREFIX + "b")
    store.put("/fabriclab/test-informer-other/x", rec("x"))        # outside the prefix
    eventually(lambda: same_as_store(store, inf))
    got = inf.get(PREFIX + "a")
    assert got is not None and got.value.vms["vm"][0] == 4
    assert inf.get(PREFIX + "b") is None and len(inf) == 2
    assert seen == [PREFIX + "c", PREFIX + "a", PREFIX + "b"]
    assert [v.key for v in inf.under(PREFIX + "c")] == [PREFIX + "c"] and inf.under(PREFIX + "z") == []
    inf.stop()


def test_after_a_compaction_past_it_it_lists_again(store: Store) -> None:
    """A controller cut off from etcd while etcd compacts: its watch cannot resume, so it relists."""
    for n in "abc":
        store.put(PREFIX + n, rec(n))
    inf = Informer(store, PREFIX, NodeAllocation).start()
    assert inf.relists == 1
    inf.stop()
    store.put(PREFIX + "d", rec("d"))
    store.put(PREFIX + "a", rec("a", cores=8))
    store.delete(PREFIX + "b")
    store.commit([], [Put(PREFIX + "e", rec("e")), Delete(PREFIX + "c")])
    assert len(inf) == 3                                   # stale while cut off
    store.compact(store.snapshot(PREFIX, NodeAllocation)[1])
    inf.resume()
    eventually(lambda: same_as_store(store, inf))
    assert inf.relists == 2
    store.put(PREFIX + "f", rec("f"))                      # and it follows again
    eventually(lambda: inf.get(PREFIX + "f") is not None)
    inf.stop()


def test_a_resumed_watch_with_history_left_misses_nothing_without_a_relist(store: Store) -> None:
    inf = Informer(store, PREFIX, NodeAllocation).start()
    inf.stop()
    store.put(PREFIX + "a", rec("a"))
    store.put(PREFIX + "a", rec("a", cores=2))
    inf.resume()
    eventually(lambda: same_as_store(store, inf))
    assert inf.relists == 1
    inf.stop()


def test_a_restarted_etcd_is_watched_again(tmp_path: Path) -> None:
    etcd = Etcd(tmp_path)
    etcd.start()
    store = etcd.store()
    try:
        store.put(PREFIX + "a", rec("a"))
        inf = Informer(store, PREFIX, NodeAllocation).start()
        etcd.kill("m0")
        etcd.start()
        wait_answering(store, ETCD_START_TIMEOUT_S)     # this client too marked it failed: it answers it again
        store.put(PREFIX + "b", rec("b"))
        store.delete(PREFIX + "a")
        eventually(lambda: same_as_store(store, inf), timeout_s=20)
        assert [v.key for v in inf.list()] == [PREFIX + "b"]
        inf.stop()
    finally:
        store.close()
        etcd.stop()


def test_a_refreshed_key_is_not_undone_by_an_older_event(store: Store) -> None:
    inf = Informer(store, PREFIX, NodeAllocation).start()
    inf.stop()                                             # its watch lags: no events arrive
    store.put(PREFIX + "a", rec("a", cores=1))
    store.put(PREFIX + "a", rec("a", cores=2))
    fresh = inf.refresh(PREFIX + "a")
    assert fresh is not None and fresh.value.vms["vm"][0] == 2
    revision = inf.revision
    inf.resume()                                           # replays cores=1 then cores=2
    eventually(lambda: inf.revision > revision)
    got = inf.get(PREFIX + "a")
    assert got is not None and got.value.vms["vm"][0] == 2
    store.delete(PREFIX + "a")
    assert inf.refresh(PREFIX + "a") is None
    inf.stop()


def test_a_prefix_larger_than_a_page_is_one_view(store: Store) -> None:
    small = Store(store.endpoints, page_size=7)
    try:
        store.commit([], [Put(f"{PREFIX}{i:03d}", rec(str(i))) for i in range(50)])
        inf = Informer(small, PREFIX, NodeAllocation).start()
        assert len(inf) == 50 and same_as_store(store, inf)
        inf.stop()
    finally:
        small.close()


def test_what_this_connection_writes_it_reads_back_at_once(store: Store) -> None:
    inf = informed(store, PREFIX, NodeAllocation)
    store.put(PREFIX + "a", rec("a", cores=3))                       # no waiting for the watch
    got = inf.get(PREFIX + "a")
    assert got is not None and got.value.vms["vm"][0] == 3
    store.commit([], [Delete(PREFIX + "a"), Put(PREFIX + "b", rec("b"))])
    assert inf.get(PREFIX + "a") is None and inf.get(PREFIX + "b") is not None
    store.delete_prefix(PREFIX)
    assert len(inf) == 0


def test_a_miss_is_read_from_the_store(store: Store) -> None:
    """Another controller's write may not have reached this one's view: a lookup does not take the miss for an
    absence."""
    inf = informed(store, PREFIX, NodeAllocation)
    inf.stop()                                                        # its watch lags behind
    other = Store(store.endpoints)
    try:
        other.put(PREFIX + "made-elsewhere", rec("x"))
    finally:
        other.close()
    assert inf.get(PREFIX + "made-elsewhere") is None
    found = inf.lookup(PREFIX + "made-elsewhere")
    assert found is not None and inf.get(PREFIX + "made-elsewhere") == found
