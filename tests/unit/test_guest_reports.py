"""What the node makes of the reports its wireserver kept: only those stamped with the VM's own container count,
so a VM never inherits what an earlier VM at the same address (or a hostile one before it) reported."""
from __future__ import annotations

import json
from pathlib import Path

from fabric.model import Assignment, DiskRef, GoalExtension, ImageRecord, PowerState, VmNic
from nodeagent.guest_reports import GuestReports, handler_statuses
from nodeagent.netsvc.networks import Networks
from nodeagent.netsvc.wireserver import container_of
from nodeagent.tracing import Trace

IMAGE = ImageRecord(publisher="p", offer="o", sku="s", version="latest", exact_version="1.0.0", disk="/d",
                    disk_format="vpc", kernel="", initrd="", cmdline="", boot_marker="")


def vm(vm_id: str) -> Assignment:
    return Assignment(vm_id=vm_id, resource_group="RG", name="deb", node="n1", power=PowerState.RUNNING,
                      generation=0, cores=1, memory_mb=512, resource_disk_mb=1, image=IMAGE,
                      os_disk=DiskRef("localpath"), operation_id="op",
                      extensions=[GoalExtension(name="CustomScript", handler="Microsoft.Azure.Extensions.CustomScript",
                                                version="2.1", seq=0, settings={}, protected_settings={},
                                                timeout_seconds=300, operation_id="op-ext")],
                      nics=[VmNic(key="k", id="i", mac="52:54:00:00:00:0a", ip="10.0.0.4", vnet="rg/v", vni=7,
                                  prefix="10.0.0.0/24", gateway="10.0.0.1", dns_suffix="x.internal")])


def post(folder: Path, kind: str, name: str, record: dict[str, object]) -> None:
    (folder / kind).mkdir(parents=True, exist_ok=True)
    (folder / kind / name).write_text(json.dumps(record))


def test_reports_of_an_earlier_vm_at_the_same_address_do_not_count(tmp_path: Path) -> None:
    networks = Networks(tmp_path, "ab12")
    folder = networks.root / "7"
    earlier, now = vm("old-vm"), vm("new-vm")
    blob = {"aggregateStatus": {"guestAgentStatus": {"version": "2.7.3.0", "status": "Ready"},
                                "handlerAggregateStatus": [{
                                    "handlerName": "Microsoft.Azure.Extensions.CustomScript", "handlerVersion": "2.1",
                                    "status": "Ready", "runtimeSettingsStatus": {"sequenceNumber": 0, "settingsStatus": {
                                        "status": {"status": "success", "code": 0}}}}]}}
    t = 1000.0
    post(folder, "health", "10.0.0.4.json", {"time": t, "report": "<State>Ready</State>",
                                             "container": container_of(earlier)})
    post(folder, "agent", "10.0.0.4.json", {"time": t, "status": blob, "container": container_of(earlier)})
    guests = GuestReports(networks, Trace.__new__(Trace), wall=lambda: t + 1)      # no step is traced here
    assert guests.extensions(earlier)["CustomScript"].status == "success"
    assert guests.agent(earlier, t - 10).status == "Ready" and guests.provisioned(earlier)
    # the next VM at the address sees none of it: its extension has not run, it was never provisioned
    assert guests.extensions(now) == {}
    assert guests.agent(now, t - 10).status == "Not Ready" and not guests.provisioned(now)


def test_a_guests_sequence_number_that_is_no_number_is_none() -> None:
    for seq in ("²", "9" * 5000, True, None, "-1", 1.5):
        blob = {"status": {"aggregateStatus": {"handlerAggregateStatus": [{
            "handlerName": "H", "runtimeSettingsStatus": {"sequenceNumber": seq, "settingsStatus": {
                "status": {"status": "success"}}}}]}}}
        assert handler_statuses(blob)["H"]["status"]["seqNo"] == -1, seq
