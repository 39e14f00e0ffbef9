"""The reference's story on a real VM: a CustomScript extension that fails because the script file was named
wrong, diagnosed from the handler log, then run again with the right file; and a command that hangs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.conftest import EXTENSION_TIMEOUT_S, LabHandle

IMAGE = "fabriclab:busybox:lab:latest"


def ext_show(lab: LabHandle, vm: str, *extra: str) -> dict[str, Any]:
    ext: dict[str, Any] = lab.json("vm", "extension", "show", "-g", "E2E", "--vm-name", vm, "-n",
                                   "CustomScriptExtension", "--instance-view", *extra)
    return ext


def test_custom_script_fails_is_diagnosed_and_succeeds(lab: LabHandle, tmp_path: Path) -> None:
    wrong = tmp_path / "sample.ps"                 # the reference's Sample.ps: the wrong file extension
    wrong.write_text("echo \"processes: $(ps | wc -l)\"\n")
    r = lab.fabric("vm", "create", "-g", "E2E", "-n", "extvm", "--image", IMAGE, "--size", "Lab_A0",
                   "--custom-script", str(wrong), "--command", "sh sample.sh", check=False)
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "VMExtensionProvisioningError"
    assert err["message"] == ("VM has reported a failure when processing extension 'CustomScriptExtension'. "
                              "Error message: \"Command 'sh sample.sh' exited with code 2: sh: can't open "
                              "'sample.sh': No such file or directory\".")
    vm = json.loads(r.stdout)
    assert vm["properties"]["provisioningState"] == "Succeeded"      # the VM itself is fine
    [ext] = vm["resources"]
    assert ext["properties"]["provisioningState"] == "Failed"
    assert ext["properties"]["publisher"] == "Microsoft.Compute" and ext["properties"]["type"] == "CustomScriptExtension"
    url = ext["properties"]["settings"]["fileUris"][0]
    assert "/vmextensionstemporary-" in url and "sr=c" in url and "sp=r" in url and ".blob." in url
    [view] = vm["properties"]["instanceView"]["extensions"]
    assert view["typeHandlerVersion"] == "1.8" and view["statuses"][0]["code"] == "ProvisioningState/failed"
    stderr = next(s for s in view["substatuses"] if s["code"].startswith("ComponentStatus/StdErr/"))
    assert "can't open 'sample.sh'" in stderr["message"]

    # the diagnosis: the handler log inside the VM, read from the host
    log = lab.fabric("vm", "extension", "show", "-g", "E2E", "--vm-name", "extvm", "-n", "CustomScriptExtension",
                     "--logs").stdout
    assert "/var/log/fabric/extensions/Microsoft.Compute.CustomScriptExtension/1.8/handler.log" in log
    assert "[INFO] DownloadFiles: fileUri = http://" in log and "sample.ps" in log
    assert "[ERROR] Command execution finished. Command exited with code: 2" in log

    # the fix: the right file, on the existing VM; a new sequence number runs it, and the log grows
    right = tmp_path / "sample.sh"
    right.write_text("echo \"processes: $(ps | wc -l)\"\necho \"resource disk: $(ls /mnt/resource | tr '\\n' ' ')\"\n")
    fixed = lab.json("vm", "extension", "set", "-g", "E2E", "--vm-name", "extvm", "--custom-script", str(right),
                     "--version", "1.7")
    assert fixed["properties"]["provisioningState"] == "Succeeded"
    assert fixed["properties"]["typeHandlerVersion"] == "1.7" and fixed["properties"]["sequenceNumber"] == 1
    trace = lab.fabric("operation", "show", fixed["properties"]["lastOperationId"], "--trace").stdout
    # the guest's own report is a step of the operation (its transitioning one too, unless it was over
    # within one of the node's polls)
    assert "guest-status" in trace and "sequence 1 (Microsoft.Compute.CustomScriptExtension 1.8) to the " \
        "wireserver: success: Command 'sh sample.sh' exited with code 0" in trace
    view = fixed["properties"]["instanceView"]
    assert view["typeHandlerVersion"] == "1.8"                    # autoUpgradeMinorVersion
    assert view["statuses"][0]["message"] == "Command 'sh sample.sh' exited with code 0"
    stdout = next(s for s in view["substatuses"] if s["code"] == "ComponentStatus/StdOut/succeeded")
    assert stdout["message"].startswith("processes: ") and "DATALOSS_WARNING_README.txt" in stdout["message"]
    log2 = ext_show(lab, "extvm", "--logs", "-o", "json")["properties"]["handlerLog"]
    assert "Command exited with code: 2" in log2 or len(log2) >= 4000     # appended: the first run is still there
    assert log2.rstrip().endswith("Command execution finished. Command exited with code: 0")
    assert lab.fabric("vm", "extension", "list", "-g", "E2E", "--vm-name", "extvm", "-o", "table").stdout.count(
        "Succeeded") == 1

    # a command that hangs is killed at the handler timeout and reported as such
    hang = tmp_path / "hang.sh"
    hang.write_text("echo waiting; sleep 600\n")
    r = lab.fabric("vm", "extension", "set", "-g", "E2E", "--vm-name", "extvm", "--custom-script", str(hang),
                   check=False)
    assert r.returncode == 1
    assert (f"Command 'sh hang.sh' timed out after {EXTENSION_TIMEOUT_S} s and was killed"
            in json.loads(r.stderr)["error"]["message"])
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "extvm", "--instance-view")
    assert vm["properties"]["provisioningState"] == "Succeeded"
    assert vm["properties"]["instanceView"]["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"

    # a script that fills the disk: the status still comes back (its work files live on tmpfs), with the error
    fill = tmp_path / "fill.sh"
    fill.write_text("dd if=/dev/zero of=/var/lib/fabriclab/fill bs=1M\n")
    r = lab.fabric("vm", "extension", "set", "-g", "E2E", "--vm-name", "extvm", "--custom-script", str(fill),
                   check=False)
    assert r.returncode == 1 and "Command 'sh fill.sh' exited with code 1" in json.loads(r.stderr)["error"]["message"]
    view = ext_show(lab, "extvm")["properties"]["instanceView"]
    stderr = next(s for s in view["substatuses"] if s["code"].startswith("ComponentStatus/StdErr/"))
    assert "No space left on device" in stderr["message"]

    lab.fabric("vm", "extension", "delete", "-g", "E2E", "--vm-name", "extvm", "-n", "CustomScriptExtension")
    assert lab.json("vm", "extension", "list", "-g", "E2E", "--vm-name", "extvm") == []
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "extvm", "--yes")


def test_a_vm_without_the_agent(lab: LabHandle) -> None:
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "noagent", "--image", IMAGE, "--size", "Lab_A0",
                  "--no-provision-vm-agent")
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["provisionVMAgent"] is False
    out = lab.fabric("vm", "get-serial-output", "-g", "E2E", "-n", "noagent").stdout
    assert "no VM agent (osProfile.linuxConfiguration.provisionVMAgent is false)" in out
    assert "fabriclab-agent:" not in out
    agent = lab.json("vm", "show", "-g", "E2E", "-n", "noagent", "--instance-view")["properties"]["instanceView"][
        "vmAgent"]
    assert agent["statuses"][0]["displayStatus"] == "Not Ready"
    r = lab.fabric("vm", "extension", "set", "-g", "E2E", "--vm-name", "noagent", "--custom-script", __file__,
                   check=False)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["code"] == "OperationNotAllowed"
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "noagent", "--yes")


def test_hostile_names_and_settings_are_only_data_to_the_guest_agent(lab: LabHandle) -> None:
    """A group name the API accepts, with parentheses, once broke the agent (it sourced the goal state) and the
    default network's name; settings full of shell are carried, never run, by the agent and the handler."""
    rg = "Blog_RG(1).x"
    lab.fabric("group", "create", "-n", rg, "-l", "local")
    vm = lab.json("vm", "create", "-g", rg, "-n", "hostile", "--image", IMAGE, "--size", "Lab_A0")   # no --vnet-name
    assert vm["properties"]["provisioningState"] == "Succeeded"
    hostile = "$(touch /run/pwned1) `touch /run/pwned2` \"q\" 'q' (p) \\\n; touch /run/pwned3 #"
    command = ("test ! -e /run/pwned1 && test ! -e /run/pwned2 && test ! -e /run/pwned3 && "
               "echo \"clean $(echo sub) 'single' (paren)\"")
    ext = lab.json("vm", "extension", "set", "-g", rg, "--vm-name", "hostile", "-n", "CustomScriptExtension",
                   "--publisher", "Microsoft.Compute",
                   "--settings", json.dumps({"commandToExecute": command, "timestamp": hostile}))
    assert ext["properties"]["provisioningState"] == "Succeeded", ext
    view = ext["properties"]["instanceView"]
    out = next(s for s in view["substatuses"] if s["code"].startswith("ComponentStatus/StdOut/"))
    assert out["message"] == "clean sub 'single' (paren)"
    agent = lab.json("vm", "show", "-g", rg, "-n", "hostile", "--instance-view")["properties"]["instanceView"]
    assert agent["vmAgent"]["statuses"][0]["displayStatus"] == "Ready"
    lab.fabric("vm", "delete", "-g", rg, "-n", "hostile", "--yes")
