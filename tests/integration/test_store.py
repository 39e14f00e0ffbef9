import pytest

from fabric.hostinfo import free_port
from fabric.model import ResourceGroupRecord
from fabric.store import Absent, Delete, Put, Store, StoreUnavailable, Unchanged

K = "/fabriclab/v1/test/a"


def test_create_if_absent_is_exclusive(store: Store) -> None:
    assert store.commit([Absent(K)], [Put(K, ResourceGroupRecord("a", "local"))])
    assert not store.commit([Absent(K)], [Put(K, ResourceGroupRecord("b", "local"))])
    got = store.get(K, ResourceGroupRecord)
    assert got is not None and got.value.name == "a"


def test_stale_compare_writes_nothing(store: Store) -> None:
    store.put(K, ResourceGroupRecord("a", "local"))
    first = store.get(K, ResourceGroupRecord)
    assert first is not None
    store.put(K, ResourceGroupRecord("a2", "local"))
    other = "/fabriclab/v1/test/b"
    ok = store.commit([Unchanged(K, first.mod_revision)],
                      [Put(K, ResourceGroupRecord("stale", "local")), Put(other, ResourceGroupRecord("x", "y"))])
    assert not ok
    got = store.get(K, ResourceGroupRecord)
    assert got is not None and got.value.name == "a2"
    assert store.get(other, ResourceGroupRecord) is None


def test_delete_prefix_in_a_transaction(store: Store) -> None:
    for n in "abc":
        store.put(f"/fabriclab/v1/test/p/{n}", ResourceGroupRecord(n, "l"))
    assert store.commit([], [Delete("/fabriclab/v1/test/p/", prefix=True)])
    assert store.list("/fabriclab/v1/test/p/", ResourceGroupRecord) == []


def test_unreachable_etcd_raises_store_unavailable() -> None:
    s = Store(f"http://127.0.0.1:{free_port()}", timeout_s=1.0)
    with pytest.raises(StoreUnavailable, match="unavailable"):
        s.get_raw("/x")


def test_bad_endpoint_is_refused() -> None:
    with pytest.raises(ValueError, match="expected https://HOST:PORT"):
        Store("127.0.0.1:2379")
    with pytest.raises(ValueError, match="https needs an etcd client credential"):
        Store("https://127.0.0.1:2379")
