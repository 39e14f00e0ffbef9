import pytest

from fabric.hostinfo import free_port
from fabric.model import ResourceGroupRecord
from fabric.lab.etcd import Etcd
from fabric.store import Absent, Delete, Put, Store, StoreUnavailable, Unchanged, keys

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


def test_a_prefix_larger_than_a_grpc_message_is_read_whole_in_pages(store: Store) -> None:
    """40 records of 150 KB: 6 MB under one prefix, past gRPC's 4 MiB message, read whole and in order."""
    big = "x" * 150_000
    for i in range(40):
        store.put(keys.resource_group(f"rg{i:02d}"), ResourceGroupRecord(name=f"rg{i:02d}", location=big))
    got = store.list(keys.RESOURCE_GROUPS, ResourceGroupRecord)
    assert [g.value.name for g in got] == [f"rg{i:02d}" for i in range(40)]
    assert store.count(keys.RESOURCE_GROUPS) == 40 and len(store.raw_items(keys.RESOURCE_GROUPS)) == 40


def test_small_pages_read_every_key_once(etcd_server: Etcd, store: Store) -> None:
    for i in range(7):
        store.put(keys.resource_group(f"p{i}"), ResourceGroupRecord(name=f"p{i}", location="local"))
    paged = Store(etcd_server.url, page_size=2)
    try:
        assert paged.key_list(keys.RESOURCE_GROUPS) == store.key_list(keys.RESOURCE_GROUPS)
        assert [g.value.name for g in paged.list(keys.RESOURCE_GROUPS, ResourceGroupRecord)] == \
            [f"p{i}" for i in range(7)]
    finally:
        paged.close()
