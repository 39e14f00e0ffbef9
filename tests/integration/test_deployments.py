"""Deployments over the real etcd: resources in dependency order, each resource's operation listed, and the
reference's nested error when an extension fails, while the VM stays provisioned. The node's reports are
written as the node agent writes them (tests/e2e/test_deployments.py runs the same story on real VMs)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from fabric.deployments.engine import DeploymentProvider
from fabric.model import VmRecord
from fabric.store import keys
from fabric.v1 import deployment_pb2 as dpb
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import arm_error, snapshot
from tests.integration.test_extensions import node_reports

TEMPLATE = (Path(__file__).resolve().parents[2] / "examples" / "blog-vm.json").read_text()


def params(**kw: str) -> Struct:
    s = Struct()
    s.update(kw)
    return s


@pytest.fixture
def ready(api: Api) -> Api:
    api.groups.Create(pb.CreateResourceGroupRequest(name="BlogRG", location="local"))
    register_node(api.store, "node-1")
    st = api.storage
    st.create_account("BlogRG", "scripts1")
    st.create_container("scripts1", "scripts")
    st.put_blob("scripts1", "scripts", "sample.ps", [b"ps\n"])
    return api


def script_url(api: Api, blob: str) -> str:
    token, _ = api.storage.generate_sas("scripts1", "scripts", "", "r",
                                        dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=24))
    return f"{api.storage.guest_url('scripts1', 'scripts', blob)}?{token.query()}"


def step(api: Api) -> None:
    DeploymentProvider(api.compute).reconcile_all()


def test_a_failed_extension_fails_the_deployment_with_the_nested_error(ready: Api) -> None:
    api = ready
    op = api.deployments.Create(dpb.CreateDeploymentRequest(resource_group="BlogRG", name="blog", template_json=TEMPLATE,
                                                            parameters=params(scriptUri=script_url(api, "sample.ps"))))
    assert op.status == "InProgress" and op.name == "Microsoft.Resources/deployments/write"
    step(api)                                   # the VM first: its extension waits for it
    ops = api.deployments.ListOperations(dpb.DeploymentRef(resource_group="BlogRG", name="blog")).value
    assert [(o.properties.target_resource.resource_type, o.properties.provisioning_state) for o in ops] == [
        ("Microsoft.Compute/virtualMachines", "Running")]
    node_reports(api, "BlogRG", "BlogVM", power="running", booted=True)
    step(api)                                   # VM done: the extension starts
    vm = api.store.get(keys.vm("BlogRG", "BlogVM"), VmRecord)
    assert vm is not None and vm.value.extensions[0].handler_version == "1.8"
    node_reports(api, "BlogRG", "BlogVM", extensions={"CustomScriptExtension": {
        "seq": 0, "status": "error", "message": "Command 'sh sample.sh' exited with code 2: sh: can't open "
                                                "'sample.sh': No such file or directory"}})
    step(api)
    done = api.ops.Get(pb.GetOperationRequest(id=op.id))
    assert done.status == "Failed"
    e = done.error
    assert (e.code, e.message) == ("ResourceDeploymentFailure",
                                   "The resource operation completed with terminal provisioning state 'Failed'.")
    assert e.details[0].code == "DeploymentFailed" and "Please list deployment operations" in e.details[0].message
    conflict = e.details[0].details[0]
    assert conflict.code == "Conflict"
    inner = json.loads(conflict.message)
    assert inner["status"] == "Failed" and inner["error"]["code"] == "ResourceDeploymentFailure"
    [ext_error] = inner["error"]["details"]
    assert ext_error["code"] == "VMExtensionProvisioningError"
    assert "Error message: \"Command 'sh sample.sh' exited with code 2" in ext_error["message"]
    dep = api.deployments.Get(dpb.DeploymentRef(resource_group="BlogRG", name="blog"))
    assert dep.properties.provisioning_state == "Failed" and dep.properties.error.code == "DeploymentFailed"
    assert [r.id.rsplit("/", 1)[1] for r in dep.properties.output_resources] == ["BlogVM"]
    ops = api.deployments.ListOperations(dpb.DeploymentRef(resource_group="BlogRG", name="blog")).value
    assert [(o.properties.provisioning_state, o.properties.status_code) for o in ops] == [
        ("Succeeded", "OK"), ("Failed", "Conflict")]
    assert api.vms.Get(pb.VirtualMachineRef(resource_group="BlogRG", name="BlogVM")).properties.provisioning_state \
        == "Succeeded"

    # deployed again with the right file: the VM is in place, the extension runs a new sequence number
    api.storage.put_blob("scripts1", "scripts", "sample.sh", [b"ps\n"])
    again = api.deployments.Create(dpb.CreateDeploymentRequest(
        resource_group="BlogRG", name="blog", template_json=TEMPLATE,
        parameters=params(scriptUri=script_url(api, "sample.sh"))))
    step(api)
    node_reports(api, "BlogRG", "BlogVM", extensions={"CustomScriptExtension": {"seq": 1, "status": "success"}})
    step(api)
    assert api.ops.Get(pb.GetOperationRequest(id=again.id)).status == "Succeeded"
    listed = api.deployments.List(dpb.ListDeploymentsRequest(resource_group="BlogRG")).value
    assert [(d.name, d.properties.provisioning_state) for d in listed] == [("blog", "Succeeded")]


def test_a_resource_refused_at_start_fails_and_its_dependents_are_skipped(ready: Api) -> None:
    t = json.loads(TEMPLATE)
    t["resources"][0]["properties"]["hardwareProfile"]["vmSize"] = "Standard_Nope"
    t["parameters"]["vmSize"]["allowedValues"] = None
    op = ready.deployments.Create(dpb.CreateDeploymentRequest(resource_group="BlogRG", name="bad-size",
                                                              template_json=json.dumps(t),
                                                              parameters=params(scriptUri=script_url(ready, "sample.ps"))))
    step(ready)
    done = ready.ops.Get(pb.GetOperationRequest(id=op.id))
    assert done.status == "Failed"
    detail = done.error.details[0].details[0]
    assert detail.code == "BadRequest" and json.loads(detail.message)["error"]["code"] == "SkuNotAvailable"
    ops = ready.deployments.ListOperations(dpb.DeploymentRef(resource_group="BlogRG", name="bad-size")).value
    assert len(ops) == 1          # the extension never started


@pytest.mark.parametrize("template,parameters,code,target", [
    ("{oops", {}, "InvalidTemplate", "template"),
    (TEMPLATE, {}, "InvalidTemplate", "parameters.scriptUri"),
    (TEMPLATE.replace('"typeHandlerVersion": "1.7"', '"typeHandlerVersion": "7.0"'), {"scriptUri": "u"},
     "ArtifactVersionNotFound", "typeHandlerVersion"),
    (TEMPLATE.replace('"hardwareProfile": {"vmSize": "[parameters(\'vmSize\')]"},', ''), {"scriptUri": "u"},
     "InvalidParameter", "resources[0].properties.hardwareProfile.vmSize"),
])
def test_bad_templates_are_refused_and_change_nothing(ready: Api, template: str, parameters: dict[str, str],
                                                      code: str, target: str) -> None:
    before = snapshot(ready)
    status, body = arm_error(lambda: ready.deployments.Create(dpb.CreateDeploymentRequest(
        resource_group="BlogRG", name="bad", template_json=template, parameters=params(**parameters))))
    assert (body["code"], body["target"]) == (code, target), body
    assert status == (grpc.StatusCode.NOT_FOUND if code.endswith("NotFound") else grpc.StatusCode.INVALID_ARGUMENT)
    assert snapshot(ready) == before


FULL = {
    "parameters": {"prefix": {"type": "string", "defaultValue": "blog"}},
    "variables": {"vnet": "[concat(parameters('prefix'), '-vnet')]", "nic": "[concat(parameters('prefix'), 'nic1')]"},
    "resources": [
        {"type": "Microsoft.Compute/virtualMachines", "name": "[concat(parameters('prefix'), 'vm')]",
         "dependsOn": ["[resourceId('Microsoft.Network/networkInterfaces', variables('nic'))]"],
         "properties": {"hardwareProfile": {"vmSize": "Lab_A0"},
                        "storageProfile": {"imageReference": {"publisher": "fabriclab", "offer": "busybox",
                                                              "sku": "lab", "version": "latest"}},
                        "networkProfile": {"networkInterfaces": [
                            {"id": "[resourceId('Microsoft.Network/networkInterfaces', variables('nic'))]"}]}}},
        {"type": "Microsoft.Network/networkInterfaces", "name": "[variables('nic')]",
         "dependsOn": ["[variables('vnet')]"],
         "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
             "privateIPAllocationMethod": "Static", "privateIPAddress": "10.5.0.10",
             "subnet": {"id": "[resourceId('Microsoft.Network/virtualNetworks/subnets', variables('vnet'), "
                              "'default')]"}}}]}},
        {"type": "Microsoft.Network/virtualNetworks", "name": "[variables('vnet')]",
         "properties": {"addressSpace": {"addressPrefixes": ["10.5.0.0/16"]},
                        "subnets": [{"name": "default", "properties": {"addressPrefix": "10.5.0.0/24"}},
                                    {"name": "back", "properties": {"addressPrefix": "10.5.1.0/24"}}]}},
        {"type": "Microsoft.Storage/storageAccounts", "name": "[concat(parameters('prefix'), 'diag1')]"},
    ],
}


def test_a_template_of_every_type_in_dependency_order(ready: Api) -> None:
    op = ready.deployments.Create(dpb.CreateDeploymentRequest(resource_group="BlogRG", name="full",
                                                              template_json=json.dumps(FULL)))
    step(ready)
    node_reports(ready, "BlogRG", "blogvm", power="running", booted=True)
    step(ready)
    assert ready.ops.Get(pb.GetOperationRequest(id=op.id)).status == "Succeeded"
    ops = ready.deployments.ListOperations(dpb.DeploymentRef(resource_group="BlogRG", name="full")).value
    names = [o.properties.target_resource.resource_name for o in ops]
    assert names.index("blog-vnet") < names.index("blognic1") < names.index("blogvm") and "blogdiag1" in names
    vm = ready.vms.Get(pb.VirtualMachineRef(resource_group="BlogRG", name="blogvm"))
    assert vm.properties.network_profile.network_interfaces[0].id.endswith("/networkInterfaces/blognic1")
    nic = ready.compute.network.nic("BlogRG", "blognic1").value
    assert nic.private_ip == "10.5.0.10" and nic.vm_name == "blogvm"
    assert [s["name"] for s in ready.compute.network.vnet("BlogRG", "blog-vnet").value.subnets] == ["default", "back"]
    dep = ready.deployments.Get(dpb.DeploymentRef(resource_group="BlogRG", name="full"))
    assert {d.resource_name: [x.resource_name for x in d.depends_on] for d in dep.properties.dependencies} == {
        "blogvm": ["blognic1"], "blognic1": ["blog-vnet"]}
    # the same template again: everything is in place, nothing is made twice
    again = ready.deployments.Create(dpb.CreateDeploymentRequest(resource_group="BlogRG", name="full",
                                                                 template_json=json.dumps(FULL)))
    step(ready)
    assert ready.ops.Get(pb.GetOperationRequest(id=again.id)).status == "Succeeded"
    assert len(ready.compute.network.list_nics("BlogRG")) == 1
