"""The admin user and SSH keys of a VM, from the CLI and from a template: kept in the osProfile `vm show` prints
(never a password), served to the guest by IMDS (compute.osProfile, compute.publicKeys), and every bad value
refused by its field with nothing made."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from google.protobuf.struct_pb2 import Struct

from fabric.deployments.engine import DeploymentProvider
from fabric.model import Assignment, VmRecord
from fabric.store import keys
from fabric.v1 import deployment_pb2 as dpb
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.unit.test_os_profile import ED25519, RSA_1024, RSA_3072

IMAGE = "fabriclab:busybox:lab:latest"


def fabric(api: Api, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FABRIC_CONTROLLER": api.address, **({"HOME": str(home)} if home else {})}
    return subprocess.run([sys.executable, "-m", "fabric.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def create(api: Api, name: str, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    return fabric(api, "vm", "create", "-g", "RG", "-n", name, "--image", IMAGE, "--size", "Lab_A0", "--no-wait",
                  *args, home=home)


def assignment(api: Api, name: str) -> Assignment:
    vm = api.store.get(keys.vm("RG", name), VmRecord)
    assert vm is not None
    a = api.store.get(keys.assignment(vm.value.node, vm.value.vm_id), Assignment)
    assert a is not None
    return a.value


def test_the_admin_user_and_keys_are_shown_and_served_to_the_guest(api: Api, tmp_path: Path) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    key_file = tmp_path / "me.pub"
    key_file.write_text(RSA_3072 + "\n")
    r = create(api, "vm1", "--admin-username", "azureuser", "--ssh-key-values", str(key_file), ED25519)
    assert r.returncode == 0, r.stderr
    vm = json.loads(fabric(api, "vm", "show", "-g", "RG", "-n", "vm1").stdout)
    profile = vm["properties"]["osProfile"]
    path = "/home/azureuser/.ssh/authorized_keys"
    assert profile["adminUsername"] == "azureuser" and profile["computerName"] == "vm1"
    assert profile["linuxConfiguration"]["disablePasswordAuthentication"] is True
    assert profile["linuxConfiguration"]["ssh"]["publicKeys"] == [{"path": path, "keyData": RSA_3072},
                                                                  {"path": path, "keyData": ED25519}]
    assert "password" not in json.dumps(profile).lower().replace("disablepasswordauthentication", "")
    imds = assignment(api, "vm1").instance_metadata
    assert imds["osProfile"] == {"adminUsername": "azureuser", "computerName": "vm1",
                                 "disablePasswordAuthentication": "true"}
    assert imds["publicKeys"] == [{"keyData": RSA_3072, "path": path}, {"keyData": ED25519, "path": path}]
    assert (imds["publisher"], imds["offer"], imds["sku"]) == ("fabriclab", "busybox", "lab")

    # no key given: the caller's ~/.ssh/id_rsa.pub, made by --generate-ssh-keys when missing
    home = tmp_path / "home"
    home.mkdir()
    r = create(api, "vm2", "--admin-username", "labuser", home=home)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["target"] == "ssh-key-values"
    r = create(api, "vm2", "--admin-username", "labuser", "--generate-ssh-keys", home=home)
    assert r.returncode == 0, r.stderr
    made = (home / ".ssh" / "id_rsa.pub").read_text().strip()
    assert assignment(api, "vm2").instance_metadata["publicKeys"][0]["keyData"] == made


def test_bad_profiles_are_refused_by_field_and_nothing_is_made(api: Api, tmp_path: Path) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    cases = [(("--admin-username", "root", "--ssh-key-values", RSA_3072), "osProfile.adminUsername"),
             (("--admin-username", "Azure", "--ssh-key-values", RSA_3072), "osProfile.adminUsername"),
             (("--admin-username", "azureuser", "--ssh-key-values", RSA_1024),
              "osProfile.linuxConfiguration.ssh.publicKeys[0].keyData"),
             (("--admin-username", "azureuser", "--ssh-key-values", str(tmp_path / "missing.pub")),
              "ssh-key-values"),
             (("--admin-username", "azureuser", "--authentication-type", "password"), "authentication-type"),
             (("--ssh-key-values", RSA_3072), "admin-username")]
    for args, target in cases:
        r = create(api, "bad", *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert json.loads(r.stderr)["error"]["target"] == target, (args, r.stderr)
        assert api.store.get(keys.vm("RG", "bad"), VmRecord) is None


def test_a_template_gives_the_admin_user_and_keys(api: Api) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    vm = {"type": "Microsoft.Compute/virtualMachines", "name": "tvm", "location": "local",
          "properties": {"hardwareProfile": {"vmSize": "Lab_A0"},
                         "storageProfile": {"imageReference": {"publisher": "fabriclab", "offer": "busybox",
                                                               "sku": "lab", "version": "latest"}},
                         "osProfile": {"computerName": "tvm", "adminUsername": "[parameters('user')]",
                                       "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {
                                           "publicKeys": [{"path": "/home/ops/.ssh/authorized_keys",
                                                           "keyData": "[parameters('key')]"}]}}}}}
    template = json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
                                      "deploymentTemplate.json#", "contentVersion": "1.0.0.0",
                           "parameters": {"user": {"type": "string"}, "key": {"type": "securestring"}},
                           "resources": [vm]})
    params = Struct()
    params.update({"user": "ops", "key": ED25519})
    api.deployments.Create(dpb.CreateDeploymentRequest(resource_group="RG", name="d1", template_json=template,
                                                       parameters=params))
    from_template = None
    for _ in range(50):
        from_template = api.store.get(keys.vm("RG", "tvm"), VmRecord)
        if from_template is not None:
            break
        DeploymentProvider(api.compute).reconcile_all()
    assert from_template is not None and from_template.value.os_profile is not None
    assert from_template.value.os_profile.admin_username == "ops"
    assert [k.key_data for k in from_template.value.os_profile.ssh_keys] == [ED25519]
