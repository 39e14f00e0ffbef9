"""etcd as three members with TLS on client and peer ports: the store outlives one member's death; a client
without a certificate of etcd's CA gets nothing."""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.lab.etcd import Etcd
from fabric.model import ResourceGroupRecord
from fabric.pki import ADMINS, Authority, Identity
from fabric.store import Store, StoreUnavailable, keys
from tests.conftest import require

FAILOVER_S = 15.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    require(shutil.which("etcd") is not None, "etcd (Debian etcd-server)")
    e = Etcd(Path(tmp_path_factory.mktemp("etcd3")), members=3, tls=True)
    try:
        e.start()
        yield e
    finally:
        e.stop()


def put_until_written(store: Store, name: str) -> float:
    """Seconds until a write lands (the client moves to a member that answers)."""
    start = time.monotonic()
    while True:
        try:
            store.put(keys.resource_group(name), ResourceGroupRecord(name=name, location="local"))
            return time.monotonic() - start
        except StoreUnavailable:
            assert time.monotonic() - start < FAILOVER_S, f"no write for {FAILOVER_S} s with two members of three"
            time.sleep(0.2)


def test_writes_go_on_when_one_member_of_three_is_killed(cluster: Etcd) -> None:
    store = cluster.store(timeout_s=2.0)
    try:
        put_until_written(store, "before")
        cluster.kill(cluster.members[0].name)          # the member the client talks to first
        put_until_written(store, "after")
        got = {v.value.name for v in store.list(keys.RESOURCE_GROUPS, ResourceGroupRecord)}
        assert {"before", "after"} <= got
    finally:
        store.close()


def test_a_client_without_a_certificate_of_etcds_ca_gets_nothing(cluster: Etcd) -> None:
    assert cluster.credential is not None
    foreign = Authority.create("elsewhere").credential(Identity("admin", ADMINS), "")
    url = cluster.members[1].client_url
    for store in (Store(url, timeout_s=2.0, tls=dataclasses.replace(foreign, ca=cluster.credential.ca)),
                  Store(url.replace("https://", "http://"), timeout_s=2.0)):
        try:
            with pytest.raises(StoreUnavailable):
                store.get_raw(keys.SUBSCRIPTION)
        finally:
            store.close()
