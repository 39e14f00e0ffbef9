"""`fabric storage check [--repair]`: each inconsistency made on purpose, found, and mended where it can be."""
from __future__ import annotations

import json
import os
import time

from fabric.storage.model import BlobRecord
from fabric.store import keys
from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.storage.conftest import upload
from tests.integration.test_cli import fabric


def findings(api: Api, repair: bool = False) -> dict[str, pb.CheckFinding]:
    return {f.kind: f for f in api.checks.Check(pb.CheckRequest(repair=repair)).findings}


def test_each_inconsistency_is_found_and_mended(acct: Api) -> None:
    assert findings(acct) == {}
    # attached but unleased: a VM's disk blob whose lease vanished out of band
    acct.groups.Create(fpb.CreateResourceGroupRequest(name="BlogRG", location="local"))
    register_node(acct.store, "node-1")
    acct.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name="BlogVM",
                                                    image="fabriclab:busybox:lab:latest", size="Lab_A0"))
    vm = acct.vms.Get(fpb.VirtualMachineRef(resource_group="BlogRG", name="BlogVM"))
    uri = vm.properties.storage_profile.os_disk.vhd.uri
    account, container, name = uri.split("/")[3:6]
    disk_key = keys.blob(account, container, name)
    disk = acct.store.get(disk_key, BlobRecord)
    assert disk is not None
    acct.store.put(disk_key, disk.value.replace(lease={}))
    # leased but attached to nothing
    upload(acct, "scripts", "orphan.vhd", b"\0" * 512)
    orphan_key = keys.blob("blogacct", "scripts", "orphan.vhd")
    orphan = acct.store.get(orphan_key, BlobRecord)
    assert orphan is not None
    acct.store.put(orphan_key, orphan.value.replace(blob_type="PageBlob", metadata={"vmId": "gone"}))
    acct.blobs.Lease(pb.LeaseRequest(account_name="blogacct", container="scripts", name="orphan.vhd",
                                     action="acquire", duration=-1, proposed_lease_id="gone"))
    # a body without metadata (older than the grace period) and metadata without a body
    stray = acct.storage.config.blob_root / "blogacct" / "scripts" / "stray.bin.0xDEAD"
    stray.write_bytes(b"left by a crash")
    old = time.time() - 3600
    os.utime(stray, (old, old))
    simple = acct.store.get(keys.blob("blogacct", "scripts", "simple.sh"), BlobRecord)
    assert simple is not None
    acct.storage.body_path(simple.value).unlink()

    found = findings(acct)
    assert set(found) == {"attached-unleased", "leased-unattached", "body-without-metadata", "metadata-without-body"}
    assert found["attached-unleased"].subject == uri and "BlogVM" in found["attached-unleased"].message
    assert not found["metadata-without-body"].repairable

    r = fabric(acct.address, "storage", "check", "--repair", "-o", "table")
    assert r.returncode == 1                      # one finding cannot be mended
    assert "attached-unleased" in r.stdout and "cannot" in r.stdout
    assert acct.blobs.Get(pb.BlobRef(account_name=account, container=container, name=name)) \
        .properties.lease.state == "leased"
    assert acct.blobs.Get(pb.BlobRef(account_name="blogacct", container="scripts", name="orphan.vhd")) \
        .properties.lease.state == "available"
    assert not stray.exists()
    left = json.loads(fabric(acct.address, "storage", "check", "-o", "json").stdout)
    assert [f["kind"] for f in left] == ["metadata-without-body"]


def test_a_young_unnamed_body_is_not_a_stray(acct: Api) -> None:
    fresh = acct.storage.config.blob_root / "blogacct" / "scripts" / "uploading.bin.0xBEEF"
    fresh.write_bytes(b"an upload about to commit")
    assert "body-without-metadata" not in findings(acct, repair=True)
    assert fresh.exists()
