"""The CLI as a user runs it: ARM JSON out, ARM error bodies on stderr, never a traceback."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from fabric.hostinfo import free_port
from tests.integration.conftest import Api, register_node


def fabric(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FABRIC_CONTROLLER": address}
    return subprocess.run([sys.executable, "-m", "fabric.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_controller_not_running_says_where_and_how_to_start() -> None:
    r = fabric(f"127.0.0.1:{free_port()}", "vm", "list")
    assert r.returncode == 1
    err = json.loads(r.stderr)["error"]
    assert err["code"] == "ControllerUnavailable"
    assert "fabric lab up" in err["message"] and "FABRIC_CONTROLLER" in err["message"]
    assert "Traceback" not in r.stderr


def test_group_and_vm_in_arm_shapes(api: Api) -> None:
    r = fabric(api.address, "group", "create", "-n", "BlogRG", "-l", "local")
    assert r.returncode == 0, r.stderr
    rg = json.loads(r.stdout)
    assert rg["id"].endswith("/resourceGroups/BlogRG") and rg["properties"]["provisioningState"] == "Succeeded"
    register_node(api.store, "node-1")
    r = fabric(api.address, "vm", "create", "-g", "BlogRG", "-n", "BlogVM", "--image",
               "fabriclab:busybox:lab:latest", "--size", "Standard_DS1_v2", "--no-wait")
    assert r.returncode == 0, r.stderr
    op = json.loads(r.stdout)
    assert op["status"] == "InProgress" and op["name"] == "Microsoft.Compute/virtualMachines/write"
    vm = json.loads(fabric(api.address, "vm", "show", "-g", "BlogRG", "-n", "BlogVM").stdout)
    assert vm["type"] == "Microsoft.Compute/virtualMachines" and vm["location"] == "local"
    assert vm["properties"]["hardwareProfile"]["vmSize"] == "Standard_DS1_v2"
    assert vm["properties"]["provisioningState"] == "Creating"
    shown = fabric(api.address, "vm", "show", "--ids", vm["id"])
    assert json.loads(shown.stdout)["properties"]["vmId"] == vm["properties"]["vmId"]
    trace = fabric(api.address, "operation", "show", op["id"], "--trace")
    assert "placed" in trace.stdout and "CoreFilter pass" in trace.stdout
    assert "1 of 1 nodes considered, 1 fit (asked 1 vCPUs, 3584 MB, 7168 MB local disk)" in trace.stdout
    why = fabric(api.address, "operation", "show", op["id"], "--why-not", "node-1")
    assert why.returncode == 0, why.stderr
    assert why.stdout.startswith("node node-1 was chosen (what it holds now counts this VM too)\nas it stands now:")
    assert "RamFilter FAIL: needs 3584 MB memory, 512 MB free" in why.stdout


def test_errors_are_arm_bodies(api: Api) -> None:
    r = fabric(api.address, "vm", "create", "-g", "nope", "-n", "x", "--image", "a:b:c:latest", "--size", "Lab_A0")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert json.loads(r.stderr)["error"]["code"] == "ResourceGroupNotFound"
    r = fabric(api.address, "vm", "list-sizes", "-l", "local", "-o", "table")
    assert r.returncode == 0 and "Standard_DS1_v2" in r.stdout and "MaxDataDiskCount" in r.stdout


def test_delete_without_a_terminal_needs_yes(api: Api) -> None:
    fabric(api.address, "group", "create", "-n", "RG", "-l", "local")
    r = fabric(api.address, "vm", "delete", "-g", "RG", "-n", "vm1")
    assert r.returncode == 1 and "--yes" in json.loads(r.stderr)["error"]["message"]
