"""Records in etcd are typed all the way down, and records kept before their nested parts were typed still
read: a lab upgraded in place keeps its VMs."""
import json

from fabric.model import (AgentHealth, AttachedDisk, Assignment, DiskRef, ExtensionStatus, ImageRecord, Observed,
                          OperationRecord, OperationStatus, PowerState, ProvisioningState, SubStatus, VmDisk, VmNic,
                          VmRecord)

IMAGE = {"publisher": "fabriclab", "offer": "busybox", "sku": "lab", "version": "latest", "exact_version": "1.0.2",
         "disk": "/g/disk.vhd", "disk_format": "vpc", "kernel": "/g/vmlinuz", "initrd": "/g/initrd.img",
         "cmdline": "console=ttyS0", "boot_marker": "ready"}
REF = {"backend": "localpath", "path": "/b/os.qcow2", "format": "qcow2", "uri": "http://a.blob/vhds/os.qcow2"}

# a VM record as the fabric wrote it before its disks and NICs were typed (camelCase keys inside)
LEGACY_VM = {
    "resource_group": "RG", "name": "vm1", "vm_id": "v-1", "location": "local", "size": "Lab_A0", "image": IMAGE,
    "provisioning_state": "Succeeded", "power_state": "running", "node": "node-1",
    "os_disk": {"account": "rgdisks001", "container": "vhds", "blob": "os.qcow2", "uri": REF["uri"],
                "deleteOption": "Detach", "leaseId": "secret-1", "sizeBytes": 1024, "ref": REF},
    "data_disks": [{"name": "data1", "lun": 0, "account": "rgdisks001", "container": "vhds", "blob": "data1.qcow2",
                    "uri": "http://a.blob/vhds/data1.qcow2", "sizeBytes": 2048, "createOption": "Empty",
                    "ref": {**REF, "path": "/b/data1.qcow2"}}],
    "nics": [{"key": "/fabriclab/nics/RG/vm1-nic", "id": "/subscriptions/s/nic", "made": True,
              "mac": "52:54:00:00:00:01", "ip": "10.0.0.4", "vnet": "RG/vm1-vnet", "vni": 9001,
              "prefix": "10.0.0.0/24", "gateway": "10.0.0.1", "dnsSuffix": "internal.fabriclab"}],
    "some_field_of_a_newer_writer": 1,
}


def test_a_legacy_vm_record_reads_as_typed_records() -> None:
    vm = VmRecord.from_json(json.dumps(LEGACY_VM))
    assert vm.provisioning_state is ProvisioningState.SUCCEEDED and vm.power_state is PowerState.RUNNING
    assert vm.image == ImageRecord(**IMAGE)
    assert vm.os_disk == VmDisk(account="rgdisks001", container="vhds", blob="os.qcow2", uri=REF["uri"],
                                ref=DiskRef(**REF), lease_id="secret-1", size_bytes=1024, delete_option="Detach")
    data = vm.data_disks[0]
    assert (data.name, data.lun, data.lease_id, data.create_option, data.ref.path) == ("data1", 0, "", "Empty",
                                                                                      "/b/data1.qcow2")
    assert vm.nics[0].dns_suffix == "internal.fabriclab" and vm.nics[0].made and vm.nics[0].vni == 9001


def test_a_vm_made_before_its_os_disk_has_none() -> None:
    vm = VmRecord.from_json(json.dumps({**LEGACY_VM, "os_disk": {}, "data_disks": [], "nics": []}))
    assert vm.os_disk is None


def test_records_round_trip_through_json() -> None:
    vm = VmRecord.from_json(json.dumps(LEGACY_VM))
    assert VmRecord.from_json(vm.to_json()) == vm
    nic = vm.nics[0]
    a = Assignment(vm_id="v-1", resource_group="RG", name="vm1", node="node-1", power=PowerState.STOPPED,
                   generation=2, cores=1, memory_mb=256, resource_disk_mb=1024, image=vm.image,
                   os_disk=DiskRef(**REF), data_disks=[AttachedDisk(0, DiskRef(**REF))], nics=[nic])
    back = Assignment.from_json(a.to_json())
    assert back == a and back.power is PowerState.STOPPED and isinstance(back.nics[0], VmNic)
    op = OperationRecord.from_json(json.dumps({"id": "o", "name": "n", "target": "t", "status": "InProgress",
                                               "start_time": "2026-01-01T00:00:00Z"}))
    assert op.status is OperationStatus.IN_PROGRESS


LEGACY_EXTENSION = {"name": "CustomScriptExtension", "publisher": "Microsoft.Compute", "type": "CustomScriptExtension",
                    "typeHandlerVersion": "1.7", "handlerVersion": "1.8", "autoUpgradeMinorVersion": True,
                    "settings": {"fileUris": ["http://x/a.sh"]}, "protectedSettings": {"commandToExecute": "sh a.sh"},
                    "forceUpdateTag": "", "seq": 2, "provisioningState": "Failed", "operationId": "op-1",
                    "error": {"code": "VMExtensionProvisioningError", "message": "boom"}}


def test_legacy_extensions_and_guest_reports_read_as_typed_records() -> None:
    vm = VmRecord.from_json(json.dumps({**LEGACY_VM, "extensions": [LEGACY_EXTENSION]}))
    [e] = vm.extensions
    assert (e.type_handler_version, e.handler_version, e.seq, e.operation_id) == ("1.7", "1.8", 2, "op-1")
    assert e.provisioning_state is ProvisioningState.FAILED and e.protected_settings == {"commandToExecute": "sh a.sh"}
    obs = Observed.from_json(json.dumps({
        "vm_id": "v-1", "node": "node-1", "power": "running",
        "agent": {"status": "Ready", "version": "0.2.0", "time": "t", "resourceDisk": "formatted"},
        "extensions": {"CustomScriptExtension": {
            "seq": 2, "handler": "Microsoft.Compute.CustomScriptExtension", "version": "1.8", "status": "error",
            "code": 2, "message": "m", "time": "t", "log": "l",
            "substatuses": [{"name": "StdErr", "status": "error", "message": "boom"}]}}}))
    assert obs.agent == AgentHealth(status="Ready", version="0.2.0", time="t", resource_disk="formatted")
    st = obs.extensions["CustomScriptExtension"]
    assert isinstance(st, ExtensionStatus) and st.final and st.substatuses == [SubStatus("StdErr", "error", "boom")]
    assert Observed.from_json(json.dumps({"vm_id": "v", "node": "n", "power": "stopped", "agent": {}})).agent is None
