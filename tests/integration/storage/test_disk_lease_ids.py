"""A VM's disk leases are held under secret random ids: the vmId (published by `vm show` and IMDS) opens nothing,
no answer shows a lease id, and records made when the lease id was the vmId still release their disks."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from fabric.model import VmDisk, VmRecord
from fabric.storage import sas
from fabric.storage.model import BlobRecord
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api
from tests.integration.storage.conftest import HttpResult, http
from tests.integration.test_cli import fabric
from tests.integration.test_extensions import Vm


@pytest.fixture
def vm(api: Api) -> Vm:
    """vm1 in RG as `vm create` makes it, deallocated (so that disk changes apply at once), with data disk data1."""
    v = Vm(api)
    api.vms.Deallocate(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    v.report(power="deallocated")
    api.vms.AttachDisk(pb.AttachDiskRequest(resource_group="RG", vm_name="vm1", name="data1", size_gb=1, new=True))
    return v


def lease(api: Api, disk: VmDisk, action: str, lease_id: str) -> HttpResult:
    acct = api.storage.account(disk.account)
    t = sas.sign(acct.key1, disk.account, disk.container, disk.blob, "w",
                 dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    return http("PUT", f"{disk.uri}?comp=lease&{t.query()}",
                headers={"x-ms-lease-action": action, "x-ms-lease-id": lease_id})


def disks(rec: VmRecord) -> tuple[VmDisk, VmDisk]:
    """The VM's OS disk and its data disk data1."""
    assert rec.os_disk is not None
    return rec.os_disk, rec.data_disks[0]


def blob(api: Api, disk: VmDisk) -> BlobRecord:
    found = api.store.get(keys.blob(disk.account, disk.container, disk.blob), BlobRecord)
    assert found is not None
    return found.value


def test_the_vm_id_opens_no_disk_lease(vm: Vm) -> None:
    rec, api = vm.record, vm.api
    for disk in disks(rec):
        for action in ("renew", "release"):
            r = lease(api, disk, action, rec.vm_id)
            assert (r.status, r.code) == (409, "LeaseIdMismatchWithLeaseOperation"), (disk.blob, action)
        assert blob(api, disk).lease_value().state(0) == "leased"
        assert disk.lease_id not in (rec.vm_id, "") and blob(api, disk).lease["id"] == disk.lease_id
    assert disks(rec)[0].lease_id != disks(rec)[1].lease_id


def test_no_answer_shows_a_lease_id(vm: Vm) -> None:
    rec, address = vm.record, vm.api.address
    secrets = {d.lease_id for d in disks(rec)}
    shown = fabric(address, "vm", "show", "-g", "RG", "-n", "vm1", "--instance-view")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["properties"]["vmId"] == rec.vm_id
    assert "leaseid" not in shown.stdout.lower() and not any(s in shown.stdout for s in secrets)
    for d in disks(rec):
        out = fabric(address, "storage", "blob", "show", "--account-name", d.account, "-c", d.container,
                     "-n", d.blob).stdout
        assert json.loads(out)["properties"]["lease"] == {"state": "leased", "status": "locked", "duration": "infinite"}
        assert not any(s in out for s in secrets)
    trace = fabric(address, "operation", "show", rec.operation_id, "--trace").stdout
    listed = fabric(address, "vm", "list", "-g", "RG").stdout
    assert not any(s in trace + listed for s in secrets)


def test_records_whose_lease_id_is_the_vm_id_still_release(vm: Vm) -> None:
    """Made before lease ids were secret: no leaseId in the data disk entry, the vmId as every lease's id."""
    rec, api = vm.record, vm.api
    os_disk, data = disks(rec)
    api.store.put(keys.vm("RG", "vm1"), rec.replace(os_disk=os_disk.replace(lease_id=rec.vm_id, delete_option="Detach"),
                                                    data_disks=[data.replace(lease_id="")]))
    for disk in (os_disk, data):
        b = blob(api, disk)
        api.store.put(keys.blob(disk.account, disk.container, disk.blob), b.replace(lease={**b.lease, "id": rec.vm_id}))
    api.vms.DetachDisk(pb.DetachDiskRequest(resource_group="RG", vm_name="vm1", name="data1"))
    assert blob(api, data).lease == {}
    api.vms.Delete(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    assert api.store.get(keys.vm("RG", "vm1"), VmRecord) is None
    assert blob(api, os_disk).lease == {}                       # deleteOption Detach: kept, and released
