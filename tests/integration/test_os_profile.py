"""The admin user and SSH keys of a VM, from the CLI and from a template: kept in the osProfile `vm show` prints
(never a password), served to the guest by IMDS (compute.osProfile, compute.publicKeys), and every bad value
refused by its field with nothing made."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from google.protobuf.struct_pb2 import Struct

from fabric.deployments.engine import DeploymentProvider, DeploymentRecord
from fabric.compute.reconciler import VmReconciler
from fabric.model import Assignment, Observed, PowerState, ProvisioningMedia, VmRecord
from fabric.store import keys
from fabric.v1 import deployment_pb2 as dpb
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.unit.test_os_profile import ED25519, RSA_1024, RSA_3072

IMAGE = "fabriclab:busybox:lab:latest"
PASSWORD = "Lab-Passw0rd-2026"


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
             (("--admin-username", "azureuser", "--authentication-type", "password"), "admin-password"),
             (("--admin-username", "azureuser", "--authentication-type", "ssh", "--admin-password", PASSWORD),
              "admin-password"),
             (("--admin-username", "azureuser", "--authentication-type", "all", "--admin-password", "",
               "--ssh-key-values", RSA_3072), "admin-password"),
             (("--admin-username", "azureuser", "--admin-password", "short1A!"), "osProfile.adminPassword"),
             (("--admin-username", "azureuser", "--admin-password", "onlylowercaseletters"),
              "osProfile.adminPassword"),
             (("--admin-password", PASSWORD), "admin-username"),
             (("--admin-username", "azureuser", "--ssh-key-values", RSA_3072, "--custom-data",
               str(tmp_path / "missing.yaml")), "custom-data"),
             (("--ssh-key-values", RSA_3072), "admin-username")]
    for args, target in cases:
        r = create(api, "bad", *args)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        assert json.loads(r.stderr)["error"]["target"] == target, (args, r.stderr)
        assert api.store.get(keys.vm("RG", "bad"), VmRecord) is None
        assert "short1A!" not in r.stderr and "onlylowercaseletters" not in r.stderr     # rules, never the value


def deploy_vm(api: Api, name: str, os_profile: dict[str, Any], parameters: dict[str, tuple[str, str]]) -> VmRecord:
    """The VM a template deployment makes with this osProfile; parameters: name -> (type, value)."""
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    vm = {"type": "Microsoft.Compute/virtualMachines", "name": name, "location": "local",
          "properties": {"hardwareProfile": {"vmSize": "Lab_A0"},
                         "storageProfile": {"imageReference": {"publisher": "fabriclab", "offer": "busybox",
                                                               "sku": "lab", "version": "latest"}},
                         "osProfile": os_profile}}
    template = json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/"
                                      "deploymentTemplate.json#", "contentVersion": "1.0.0.0",
                           "parameters": {k: {"type": t} for k, (t, _) in parameters.items()},
                           "resources": [vm]})
    params = Struct()
    params.update({k: v for k, (_, v) in parameters.items()})
    api.deployments.Create(dpb.CreateDeploymentRequest(resource_group="RG", name="d1", template_json=template,
                                                       parameters=params))
    for _ in range(50):
        made = api.store.get(keys.vm("RG", name), VmRecord)
        if made is not None:
            return made.value
        DeploymentProvider(api.compute).reconcile_all()
    raise AssertionError(f"the deployment made no VM {name}")


def test_a_template_gives_the_admin_user_and_keys(api: Api) -> None:
    made = deploy_vm(api, "tvm", {"computerName": "tvm", "adminUsername": "[parameters('user')]",
                                  "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {
                                      "publicKeys": [{"path": "/home/ops/.ssh/authorized_keys",
                                                      "keyData": "[parameters('key')]"}]}}},
                     {"user": ("string", "ops"), "key": ("securestring", ED25519)})
    assert made.os_profile is not None and made.os_profile.admin_username == "ops"
    assert [k.key_data for k in made.os_profile.ssh_keys] == [ED25519]
    assert not made.os_profile.password_authentication and made.provisioning_media is None


def test_a_password_and_custom_data_reach_the_node_once_and_are_never_shown(api: Api, tmp_path: Path) -> None:
    """As in the reference: the password and the custom data go on the provisioning media (the node makes the
    CD from the assignment) and nowhere else; once provisioning has ended they are gone from the fabric."""
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1")
    script = tmp_path / "cloud-config.yaml"
    script.write_text("#cloud-config\nruncmd: [touch /made-by-custom-data]\n")
    r = create(api, "vm1", "--admin-username", "azureuser", "--admin-password", PASSWORD, "--ssh-key-values",
               RSA_3072, "--custom-data", str(script))          # a password and keys: all, as the reference infers
    assert r.returncode == 0, r.stderr
    shown = fabric(api, "vm", "show", "-g", "RG", "-n", "vm1")
    vm = json.loads(shown.stdout)
    assert vm["properties"]["osProfile"]["linuxConfiguration"]["disablePasswordAuthentication"] is False
    listed = fabric(api, "vm", "list", "-g", "RG").stdout
    for out in (shown.stdout, listed):
        assert PASSWORD not in out and "runcmd" not in out and "cnVuY21k" not in out and "customData" not in out
    a = assignment(api, "vm1")
    custom = base64.b64encode(script.read_bytes()).decode()
    assert a.provisioning_media == ProvisioningMedia(admin_password=PASSWORD, custom_data=custom)
    assert a.instance_metadata["osProfile"]["disablePasswordAuthentication"] == "false"
    assert PASSWORD not in json.dumps(a.instance_metadata)               # IMDS never serves it

    rec = api.store.get(keys.vm("RG", "vm1"), VmRecord)
    assert rec is not None
    api.store.put(keys.observed("node-1", rec.value.vm_id),
                  Observed(vm_id=rec.value.vm_id, node="node-1", power=PowerState.RUNNING, booted=True,
                           operation_id=rec.value.operation_id))
    VmReconciler(api.store, api.compute).reconcile_all()
    ended = api.store.get(keys.vm("RG", "vm1"), VmRecord)
    assert ended is not None and ended.value.provisioning_state == "Succeeded"
    assert ended.value.provisioning_media is None and assignment(api, "vm1").provisioning_media is None
    assert assignment(api, "vm1").instance_metadata["osProfile"]["disablePasswordAuthentication"] == "false"


def test_a_template_gives_a_password_and_custom_data(api: Api) -> None:
    custom = base64.b64encode(b"#cloud-config\n").decode()
    made = deploy_vm(api, "pvm", {"adminUsername": "ops", "adminPassword": "[parameters('pw')]",
                                  "customData": custom, "linuxConfiguration": {"disablePasswordAuthentication": False}},
                     {"pw": ("securestring", PASSWORD)})
    assert made.os_profile is not None and made.os_profile.password_authentication
    assert made.provisioning_media == ProvisioningMedia(admin_password=PASSWORD, custom_data=custom)
    kept = api.store.get(keys.deployment("RG", "d1"), DeploymentRecord)      # the deployment keeps neither
    assert kept is not None and PASSWORD not in kept.value.to_json() and custom not in kept.value.to_json()
