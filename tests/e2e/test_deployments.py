"""The reference's deployment on real VMs: a template with a VM and a CustomScript extension whose script file
was named wrong fails with the nested error while the VM is provisioned; listed operations say which resource;
deployed again with the right file it succeeds, and the guest's handler log holds both runs."""
from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import LabHandle

TEMPLATE = str(Path(__file__).resolve().parents[2] / "examples" / "blog-vm.json")


def upload(lab: LabHandle, path: Path) -> str:
    return lab.fabric("storage", "blob", "upload", "--file", str(path), "--sas-hours", "24", "--guest-uri").stdout.strip()


def test_the_reference_deployment_fails_nested_then_succeeds(lab: LabHandle, tmp_path: Path) -> None:
    wrong = tmp_path / "sample.ps"
    wrong.write_text("echo \"processes: $(ps | wc -l)\"\n")
    r = lab.fabric("deployment", "create", "-g", "E2E", "-n", "blog", "--template-file", TEMPLATE,
                   "--parameters", f"scriptUri={upload(lab, wrong)}", "vmName=depvm", check=False)
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "ResourceDeploymentFailure"
    assert err["message"] == "The resource operation completed with terminal provisioning state 'Failed'."
    failed = err["details"][0]
    assert failed["code"] == "DeploymentFailed" and "Please list deployment operations" in failed["message"]
    conflict = failed["details"][0]
    assert conflict["code"] == "Conflict"
    inner = json.loads(conflict["message"])["error"]
    assert inner["code"] == "ResourceDeploymentFailure"
    assert inner["details"][0]["code"] == "VMExtensionProvisioningError"
    assert ("Error message: \"Command 'sh sample.sh' exited with code 2: sh: can't open 'sample.sh': No such file "
            "or directory\"" in inner["details"][0]["message"])
    assert json.loads(r.stdout)["properties"]["provisioningState"] == "Failed"
    assert lab.json("vm", "show", "-g", "E2E", "-n", "depvm")["properties"]["provisioningState"] == "Succeeded"
    table = lab.fabric("deployment", "operation", "list", "-g", "E2E", "-n", "blog", "-o", "table").stdout
    assert "Microsoft.Compute/virtualMachines/extensions  depvm/CustomScriptExtension  Failed" in table
    assert "VMExtensionProvisioningError" in table and "OK" in table

    right = tmp_path / "sample.sh"
    right.write_text("echo \"processes: $(ps | wc -l)\"\n")
    ok = lab.json("deployment", "create", "-g", "E2E", "-n", "blog", "--template-file", TEMPLATE,
                  "--parameters", f"scriptUri={upload(lab, right)}", "vmName=depvm")
    assert ok["properties"]["provisioningState"] == "Succeeded"
    ext = lab.json("vm", "extension", "show", "-g", "E2E", "--vm-name", "depvm", "-n", "CustomScriptExtension",
                   "--logs", "-o", "json")
    assert ext["properties"]["provisioningState"] == "Succeeded" and ext["properties"]["sequenceNumber"] == 1
    log = ext["properties"]["handlerLog"]
    assert "Command exited with code: 2" in log and log.rstrip().endswith("Command exited with code: 0")
    assert [d["name"] for d in lab.json("deployment", "list", "-g", "E2E")] == ["blog"]
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "depvm", "--yes")
