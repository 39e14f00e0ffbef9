"""Extensions on the controller side: the catalogue, bad input, the goal state a node receives, and how the
guest agent's status (as a node reports it in its Observed record) ends the operation.

The guest and node halves run for real in tests/e2e/test_extensions.py; here the node's report is written as
the node agent writes it, so that every branch of the controller can be reached quickly."""
from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from fabric.compute.reconciler import VmReconciler
from fabric.core import constants
from fabric.model import AgentHealth, Assignment, ExtensionStatus, Observed, PowerState, VmRecord
from fabric.storage import sas
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import arm_error, snapshot

IMAGE = "fabriclab:busybox:lab:latest"
CSE = dict(publisher="Microsoft.Compute", type="CustomScriptExtension", type_handler_version="1.7")


def struct(d: dict[str, Any]) -> Struct:
    s = Struct()
    s.update(d)
    return s


def node_reports(api: Api, rg: str, name: str, extensions: dict[str, Any] | None = None, on_node: str = "node-1",
                 clock: Callable[[], float] = time.time, **kw: Any) -> None:
    """What a node's agent writes after a pass (the VM's Observed record), then one pass of the controller's
    VM reconciler (whose clock says when the pass happens)."""
    found = api.store.get(keys.vm(rg, name), VmRecord)
    assert found is not None
    vm = found.value
    old = api.store.get(keys.observed(on_node, vm.vm_id), Observed)
    obs = old.value if old else Observed(vm_id=vm.vm_id, node=on_node, power=PowerState.RUNNING)
    if "agent" in kw:
        kw["agent"] = AgentHealth.from_dict(kw["agent"])
    posted = {k: ExtensionStatus.from_dict(v) for k, v in extensions.items()} if extensions is not None else None
    obs = obs.replace(**kw, extensions=obs.extensions if posted is None else posted)
    api.store.put(keys.observed(on_node, vm.vm_id), obs)
    VmReconciler(api.store, api.compute, clock).reconcile_all()


class Vm:
    """A VM placed on node-1, brought to running by the node's report, with a script blob to run."""

    def __init__(self, api: Api) -> None:
        self.api = api
        api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
        register_node(api.store, "node-1")
        api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="vm1", image=IMAGE, size="Lab_A0"))
        st = api.storage
        st.create_account("RG", "scripts1")
        st.create_container("scripts1", "scripts")
        st.put_blob("scripts1", "scripts", "sample.sh", [b"echo hello\n"])
        exp = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=24)
        token, _ = st.generate_sas("scripts1", "scripts", "", "r", exp)
        self.url = f"{st.guest_url('scripts1', 'scripts', 'sample.sh')}?{token.query()}"
        self.report(power="running", booted=True)

    @property
    def record(self) -> VmRecord:
        found = self.api.store.get(keys.vm("RG", "vm1"), VmRecord)
        assert found is not None
        return found.value

    def report(self, extensions: dict[str, Any] | None = None, **kw: Any) -> None:
        node_reports(self.api, "RG", "vm1", extensions, **kw)

    def set(self, **kw: Any) -> pb.Operation:
        req: dict[str, Any] = dict(resource_group="RG", vm_name="vm1", name="CustomScriptExtension", **CSE,
                                   settings=struct({"fileUris": [self.url], "commandToExecute": "sh sample.sh"}))
        req.update(kw)
        op: pb.Operation = self.api.extensions.Set(pb.SetExtensionRequest(**req))
        return op

    def op(self, op_id: str) -> pb.Operation:
        op: pb.Operation = self.api.ops.Get(pb.GetOperationRequest(id=op_id))
        return op


@pytest.fixture
def vm(api: Api) -> Vm:
    v = Vm(api)
    assert v.record.provisioning_state == "Succeeded"
    return v


def test_catalogue_lists_every_version(api: Api) -> None:
    got = api.extensions.ListImages(pb.ListExtensionImagesRequest(publisher="microsoft.compute"))
    assert [(i.type, i.version) for i in got.value] == [("CustomScriptExtension", "1.7"),
                                                        ("CustomScriptExtension", "1.8")]


def test_set_delivers_the_goal_and_hides_protected_settings(vm: Vm) -> None:
    op = vm.set(protected_settings=struct({"commandToExecute": "sh sample.sh secret"}),
                settings=struct({"fileUris": [vm.url]}))
    assert op.status == "InProgress" and op.name == "Microsoft.Compute/virtualMachines/extensions/write"
    a = vm.api.store.get(keys.assignment("node-1", vm.record.vm_id), Assignment)
    assert a is not None
    [goal] = a.value.extensions
    # autoUpgradeMinorVersion (default true) takes the highest 1.x the catalogue has
    assert (goal.handler, goal.version, goal.seq) == ("Microsoft.Compute.CustomScriptExtension", "1.8", 0)
    assert goal.protected_settings == {"commandToExecute": "sh sample.sh secret"}
    assert a.value.extension_generation == 1
    shown = vm.api.extensions.Get(pb.ExtensionRef(resource_group="RG", vm_name="vm1", name="CustomScriptExtension",
                                                  instance_view=True))
    assert shown.type == "Microsoft.Compute/virtualMachines/extensions"
    assert shown.properties.type_handler_version == "1.7"
    assert shown.properties.instance_view.type_handler_version == "1.8"
    assert shown.properties.provisioning_state == "Creating"
    assert "secret" not in str(shown) and "secret" not in str(vm.api.vms.Get(pb.VirtualMachineRef(
        resource_group="RG", name="vm1", instance_view=True)))
    listed = vm.api.extensions.List(pb.ListExtensionsRequest(resource_group="RG", vm_name="vm1"))
    assert "secret" not in str(listed) and [e.name for e in listed.value] == ["CustomScriptExtension"]


def test_success_and_failure_statuses_end_the_operation(vm: Vm) -> None:
    op = vm.set()
    vm.report(extensions={"CustomScriptExtension": {"seq": 0, "status": "transitioning", "message": "running"}})
    assert vm.op(op.id).status == "InProgress"
    vm.report(extensions={"CustomScriptExtension": {
        "seq": 0, "status": "error", "code": 127,
        "message": "Command 'sh sample.sh' exited with code 127: sh: can't open 'sample.sh'",
        "substatuses": [{"name": "StdOut", "status": "success", "message": ""},
                        {"name": "StdErr", "status": "error", "message": "sh: can't open 'sample.sh'"}]}})
    done = vm.op(op.id)
    assert done.status == "Failed"
    assert done.error.code == "VMExtensionProvisioningError"
    assert done.error.message == ("VM has reported a failure when processing extension 'CustomScriptExtension'. "
                                  "Error message: \"Command 'sh sample.sh' exited with code 127: sh: can't open "
                                  "'sample.sh'\".")
    rec = vm.record
    assert rec.provisioning_state == "Succeeded"          # the VM itself stays provisioned
    assert rec.extensions[0].provisioning_state == "Failed"
    view = vm.api.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="vm1", instance_view=True))
    [ev] = view.properties.instance_view.extensions
    assert (ev.statuses[0].code, ev.statuses[0].level) == ("ProvisioningState/failed", "Error")
    assert [s.code for s in ev.substatuses] == ["ComponentStatus/StdOut/succeeded", "ComponentStatus/StdErr/failed"]

    # new settings: a new sequence number, run again; success ends it
    again = vm.set(settings=struct({"fileUris": [vm.url], "commandToExecute": "sh ./sample.sh"}))
    assert vm.record.extensions[0].seq == 1
    vm.report(extensions={"CustomScriptExtension": {"seq": 1, "status": "success", "code": 0,
                                                    "message": "Command 'sh ./sample.sh' exited with code 0"}})
    assert vm.op(again.id).status == "Succeeded"
    assert vm.record.extensions[0].provisioning_state == "Succeeded"

    # the same settings again: nothing for the guest to run, done at once
    same = vm.set(settings=struct({"fileUris": [vm.url], "commandToExecute": "sh ./sample.sh"}))
    assert same.status == "Succeeded" and vm.record.extensions[0].seq == 1
    forced = vm.set(settings=struct({"fileUris": [vm.url], "commandToExecute": "sh ./sample.sh"}),
                    force_update_tag="2")
    assert forced.status == "InProgress" and vm.record.extensions[0].seq == 2


def test_no_status_in_time_fails_with_the_agent_named(vm: Vm) -> None:
    op = vm.set()
    vm.report(agent={"status": "Not Ready", "version": "", "time": ""})
    assert vm.op(op.id).status == "InProgress"                       # within the handler's timeout and grace
    later = time.time() + vm.api.compute.config.extension_timeout_s + constants.AGENT_GRACE_S + 1
    vm.report(agent={"status": "Not Ready", "version": "", "time": ""}, clock=lambda: later)
    done = vm.op(op.id)
    assert done.status == "Failed" and done.error.code == "VMAgentStatusCommunicationError"
    assert "Not Ready" in done.error.message


def test_delete_removes_it_from_the_goal_state(vm: Vm) -> None:
    vm.set()
    vm.report(extensions={"CustomScriptExtension": {"seq": 0, "status": "success"}})
    op = vm.api.extensions.Delete(pb.ExtensionRef(resource_group="RG", vm_name="vm1", name="customscriptextension"))
    assert op.status == "Succeeded"
    a = vm.api.store.get(keys.assignment("node-1", vm.record.vm_id), Assignment)
    assert a is not None and a.value.extensions == [] and a.value.extension_generation == 2
    code, body = arm_error(lambda: vm.api.extensions.Get(pb.ExtensionRef(resource_group="RG", vm_name="vm1",
                                                                       name="CustomScriptExtension")))
    assert (code, body["code"]) == (grpc.StatusCode.NOT_FOUND, "ResourceNotFound")


def _expired_url(vm: Vm) -> str:
    acct = vm.api.storage.account("scripts1")
    token = sas.sign(acct.key1, "scripts1", "scripts", "", "r", dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    return f"{vm.api.storage.guest_url('scripts1', 'scripts', 'sample.sh')}?{token.query()}"


@pytest.mark.parametrize("change,code,target", [
    ({"publisher": "Acme.Tools"}, "ArtifactNotFound", "publisher"),
    ({"type": "NoSuchHandler"}, "ArtifactNotFound", "type"),
    ({"type_handler_version": "2.0"}, "ArtifactVersionNotFound", "typeHandlerVersion"),
    ({"type_handler_version": "1.9", "auto_upgrade_minor_version": False}, "ArtifactVersionNotFound",
     "typeHandlerVersion"),
    ({"type_handler_version": "one"}, "InvalidParameter", "typeHandlerVersion"),
    ({"name": "bad name"}, "InvalidParameter", "name"),
    ({"settings": {"fileUris": []}}, "InvalidParameter", "settings.commandToExecute"),
    ({"settings": {"commandToExecute": "x", "script": "y"}}, "InvalidParameter", "settings.script"),
    ({"settings": {"commandToExecute": "x"}, "protected_settings": {"commandToExecute": "y"}}, "InvalidParameter",
     "protectedSettings.commandToExecute"),
    ({"settings": {"commandToExecute": "x", "fileUris": "http://a"}}, "InvalidParameter", "settings.fileUris"),
    ({"settings": {"commandToExecute": "x", "fileUris": ["http://example.org/x.sh"]}}, "InvalidParameter",
     "settings.fileUris[0]"),
    ({"settings": {"commandToExecute": "x", "fileUris": ["http://scripts1.blob.fabriclab.test/scripts/sample.sh"]}},
     "InvalidParameter", "settings.fileUris[0]"),
    ({"settings": {"commandToExecute": "x", "fileUris": ["http://nosuch.blob.fabriclab.test/scripts/a.sh?sig=x"]}},
     "InvalidParameter", "settings.fileUris[0]"),
    ({"settings": "expired"}, "InvalidParameter", "settings.fileUris[0]"),
    ({"vm_name": "nosuch"}, "ResourceNotFound", "name"),
])
def test_bad_input_is_refused_and_changes_nothing(vm: Vm, change: dict[str, Any], code: str, target: str) -> None:
    change = dict(change)
    if change.get("settings") == "expired":
        change["settings"] = {"commandToExecute": "sh sample.sh", "fileUris": [_expired_url(vm)]}
    for k in ("settings", "protected_settings"):
        if k in change:
            change[k] = struct(change[k])
    before = snapshot(vm.api)
    _, body = arm_error(lambda: vm.set(**change))
    assert (body["code"], body["target"]) == (code, target), body
    assert body["message"]
    assert snapshot(vm.api) == before


def test_one_extension_per_handler_and_only_on_a_running_vm(vm: Vm) -> None:
    vm.set()
    vm.report(extensions={"CustomScriptExtension": {"seq": 0, "status": "success"}})
    _, body = arm_error(lambda: vm.set(name="second"))
    assert body["code"] == "OperationNotAllowed" and "Multiple VMExtensions per handler" in body["message"]
    vm.api.vms.PowerOff(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    vm.report(power="stopped")
    _, body = arm_error(lambda: vm.set(force_update_tag="x"))
    assert body["code"] == "OperationNotAllowed" and "not running" in body["message"]


def test_a_vm_without_its_agent_takes_no_extensions(vm: Vm) -> None:
    vm.api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="bare", image=IMAGE, size="Lab_A0",
                                                     provision_vm_agent=False))
    node_reports(vm.api, "RG", "bare", power="running", booted=True)
    shown = vm.api.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="bare"))
    assert shown.properties.os_profile.linux_configuration.provision_vm_agent is False
    a = vm.api.store.get(keys.assignment("node-1", shown.properties.vm_id), Assignment)
    assert a is not None and a.value.vm_agent is False
    _, body = arm_error(lambda: vm.set(vm_name="bare"))
    assert body["code"] == "OperationNotAllowed" and "provisionVMAgent false" in body["message"]


def test_a_power_off_preempts_a_running_extension(vm: Vm) -> None:
    op = vm.set()
    off = vm.api.vms.PowerOff(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    done = vm.op(op.id)
    assert done.status == "Failed" and done.error.code == "OperationPreempted" and off.id in done.error.message
    assert vm.record.extensions[0].provisioning_state == "Failed"
    vm.report(power="stopped")
    vm.api.vms.Start(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    vm.report(power="running", booted=True, generation=0)
    again = vm.set(force_update_tag="after-start")       # not blocked by the preempted one
    assert again.status == "InProgress" and vm.record.extensions[0].seq == 1


def test_each_handler_goes_only_to_the_guest_agent_that_runs_it(vm: Vm) -> None:
    """fabriclab's busybox agent runs the CustomScriptExtension 1.x handler, the reference's Linux agent the
    CustomScript 2.x one: the other is refused by name (it would wait for a status that never comes), and
    `vm show` says which agent a VM runs (what `--custom-script` chooses by)."""
    shown = vm.api.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="vm1"))
    assert shown.properties.guest_agent == "fabriclab"
    before = snapshot(vm.api)
    _, body = arm_error(lambda: vm.set(name="CustomScript", publisher="Microsoft.Azure.Extensions", type="CustomScript",
                                       type_handler_version="2.1"))
    assert (body["code"], body["target"]) == ("OperationNotAllowed", "type")
    assert "use Microsoft.Compute/CustomScriptExtension 1.8" in body["message"]
    assert snapshot(vm.api) == before

    # an image without fabriclab's boot marker: its own agent reports Ready (the reference's images)
    src = vm.api.compute.gallery.root / "fabriclab" / "busybox" / "lab"
    mine = vm.api.compute.gallery.root / "Contoso" / "linux" / "1"
    shutil.copytree(next(src.iterdir()), mine / "1.0.0")
    meta = json.loads((mine / "1.0.0" / "image.json").read_text())
    (mine / "1.0.0" / "image.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "bootMarker"}))
    vm.api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name="ref", image="Contoso:linux:1:latest",
                                                     size="Lab_A0"))
    node_reports(vm.api, "RG", "ref", power="running", booted=True)
    assert vm.api.vms.Get(pb.VirtualMachineRef(resource_group="RG", name="ref")).properties.guest_agent == \
        "WALinuxAgent"
    _, body = arm_error(lambda: vm.set(vm_name="ref"))
    assert (body["code"], body["target"]) == ("OperationNotAllowed", "type")
    assert "use Microsoft.Azure.Extensions/CustomScript 2.1" in body["message"]
    op = vm.set(vm_name="ref", name="CustomScript", publisher="Microsoft.Azure.Extensions", type="CustomScript",
                type_handler_version="2.1")
    assert vm.op(op.id).status == "InProgress"
