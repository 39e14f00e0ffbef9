"""Templates: expressions, parameters, dependsOn and the errors a bad template gets."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fabric.core.errors import ArmError
from fabric.deployments import template as tpl

CTX = tpl.Context("sub-1", "BlogRG", "local")
EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples" / "blog-vm.json").read_text())


def refused(template: Any, params: dict[str, Any] | None = None) -> ArmError:
    with pytest.raises(ArmError) as e:
        tpl.plan(template if isinstance(template, dict) else tpl.load(template), params or {}, CTX)
    return e.value


def test_the_example_plans_the_vm_before_its_extension() -> None:
    p = tpl.plan(EXAMPLE, {"scriptUri": "http://a.blob.x/c/s.sh?sig=1"}, CTX)
    vm, ext = p.resources
    assert (vm.type, vm.name, vm.location) == ("Microsoft.Compute/virtualMachines", "BlogVM", "local")
    assert vm.id == "/subscriptions/sub-1/resourceGroups/BlogRG/providers/Microsoft.Compute/virtualMachines/BlogVM"
    assert vm.properties["storageProfile"]["imageReference"]["sku"] == "lab"
    assert (ext.type, ext.name) == ("Microsoft.Compute/virtualMachines/extensions", "BlogVM/CustomScriptExtension")
    assert ext.id == vm.id + "/extensions/CustomScriptExtension"
    assert ext.depends_on == [vm.key]
    assert ext.properties["settings"] == {"fileUris": ["http://a.blob.x/c/s.sh?sig=1"],
                                          "commandToExecute": "sh sample.sh"}


@pytest.mark.parametrize("expr,expected", [
    ("[concat('a', 'b', 'c')]", "abc"),
    ("[toLower(resourceGroup().name)]", "blogrg"),
    ("[resourceGroup().location]", "local"),
    ("[format('{0}-{1}', 'vm', 3)]", "vm-3"),
    ("[[not an expression]", "[not an expression]"),
    ("[parameters('obj').inner[1]]", "y"),
    ("[variables('v')]", "fromvar-x"),
    ("[length(concat(createArray(), parameters('obj').inner))]", None),
    ("[resourceId('Microsoft.Compute/virtualMachines/extensions', 'vm1', 'e1')]",
     "/subscriptions/sub-1/resourceGroups/BlogRG/providers/Microsoft.Compute/virtualMachines/vm1/extensions/e1"),
    ("[uniqueString('a', 'b')]", None),
])
def test_expressions(expr: str, expected: str | None) -> None:
    t = {"parameters": {"obj": {"type": "object", "defaultValue": {"inner": ["x", "y"]}}},
         "variables": {"v": "[concat('fromvar-', parameters('obj').inner[0])]"},
         "resources": [{"type": "Microsoft.Storage/storageAccounts", "name": "acct1", "properties": {"x": expr}}]}
    if expected is None and "createArray" in expr:
        assert "createarray" in refused(t).message.lower()
        return
    got = tpl.plan(t, {}, CTX).resources[0].properties["x"]
    if expected is None:
        assert isinstance(got, str) and len(got) == 13 and got == tpl.plan(t, {}, CTX).resources[0].properties["x"]
    else:
        assert got == expected


def _with(change: Any) -> dict[str, Any]:
    t: dict[str, Any] = copy.deepcopy(EXAMPLE)
    change(t)
    return t


@pytest.mark.parametrize("template,params,code,target_part,words", [
    ("{not json", {}, "InvalidTemplate", "template", "parse failed"),
    ("[]", {}, "InvalidTemplate", "template", "not a JSON object"),
    (EXAMPLE, {}, "InvalidTemplate", "parameters.scriptUri", "is not provided"),
    (EXAMPLE, {"scriptUri": "u", "nosuch": 1}, "InvalidTemplate", "parameters.nosuch", "not present in the template"),
    (EXAMPLE, {"scriptUri": "u", "vmSize": "Huge"}, "InvalidTemplate", "parameters.vmSize", "allowed values"),
    (EXAMPLE, {"scriptUri": 5}, "InvalidTemplate", "parameters.scriptUri", "not of type 'string'"),
    (_with(lambda t: t["resources"][0].update(type="Microsoft.Web/sites")), {"scriptUri": "u"},
     "NoRegisteredProviderFound", "resources[0].type", "Microsoft.Web/sites"),
    (_with(lambda t: t["resources"][0]["resources"][0].update(dependsOn=["[resourceId('Microsoft.Compute/"
                                                                          "virtualMachines', 'Other')]"])),
     {"scriptUri": "u"}, "InvalidTemplate", "dependsOn[0]", "is not defined in the template"),
    (_with(lambda t: t["resources"][0].update(dependsOn=["CustomScriptExtension"])), {"scriptUri": "u"},
     "InvalidTemplate", "dependsOn", "Circular dependency detected"),
    (_with(lambda t: t["resources"][0].update(name="[parameter('vmName')]")), {"scriptUri": "u"},
     "InvalidTemplate", "resources[0].name", "'parameter' is not known"),
    (_with(lambda t: t["resources"][0].update(name="[concat('a',]")), {"scriptUri": "u"},
     "InvalidTemplate", "resources[0].name", "where a value belongs"),
    (_with(lambda t: t["resources"].append(copy.deepcopy(t["resources"][0]))), {"scriptUri": "u"},
     "InvalidTemplate", "resources[1]", "more than once"),
    (_with(lambda t: t.pop("resources")), {"scriptUri": "u"}, "InvalidTemplate", "resources", "non-empty list"),
])
def test_bad_templates_are_named(template: Any, params: dict[str, Any], code: str, target_part: str,
                                 words: str) -> None:
    e = refused(template, params)
    assert e.code == code and target_part in e.target and words in e.message, (e.code, e.target, e.message)


def test_a_longer_cycle_is_shown_whole() -> None:
    res = [{"type": "Microsoft.Storage/storageAccounts", "name": n, "dependsOn": [d]}
           for n, d in (("a1", "b1"), ("b1", "c1"), ("c1", "a1"))]
    e = refused({"resources": res})
    assert "Microsoft.Storage/storageAccounts/a1 -> Microsoft.Storage/storageAccounts/b1 -> " \
           "Microsoft.Storage/storageAccounts/c1 -> Microsoft.Storage/storageAccounts/a1" in e.message


def test_dependency_order_whatever_the_listing_order() -> None:
    res = [{"type": "Microsoft.Storage/storageAccounts", "name": "c1", "dependsOn": ["b1"]},
           {"type": "Microsoft.Storage/storageAccounts", "name": "b1", "dependsOn": ["a1"]},
           {"type": "Microsoft.Storage/storageAccounts", "name": "a1"}]
    assert [r.name for r in tpl.plan({"resources": res}, {}, CTX).resources] == ["a1", "b1", "c1"]


def test_secure_parameters_are_marked() -> None:
    t = {"parameters": {"cmd": {"type": "securestring"}},
         "resources": [{"type": "Microsoft.Storage/storageAccounts", "name": "a1"}]}
    assert tpl.plan(t, {"cmd": "x"}, CTX).secure == frozenset({"cmd"})
