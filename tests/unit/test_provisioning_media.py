"""The provisioning CD a new VM's guest reads once: ovf-env.xml in the reference's shape, on an ISO 9660 image
its provisioning agent can mount, private to the node."""
from __future__ import annotations

import base64
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from fabric.compute.os_profile import check_os_profile, imds_os_profile
from fabric.model import ProvisioningMedia, SshKey
from nodeagent.provisioning_media import ensure_iso, ovf_env_xml
from tests.conftest import require
from tests.unit.test_os_profile import ED25519

# the namespaces the reference's guest agents look the elements up in
NS = {"ovf": "http://schemas.dmtf.org/ovf/environment/1", "wa": "http://schemas.microsoft.com/windowsazure"}
PASSWORD = "a<b>&\"c'-Passw0rd"          # XML's special characters come back as given
CUSTOM = base64.b64encode(b"#cloud-config\nruncmd: [touch /x]\n").decode()


def compute() -> dict[str, object]:
    profile = check_os_profile("vm1", "azureuser", [SshKey("", ED25519)], computer_name="host-1",
                               admin_password="Lab-Passw0rd-2026")
    return {"name": "vm1", **imds_os_profile(profile)}


def read(doc: bytes) -> dict[str, str]:
    root = ET.fromstring(doc)
    assert root.find("./wa:ProvisioningSection", NS) is not None
    assert root.find("./wa:PlatformSettingsSection/wa:PlatformSettings", NS) is not None
    config = root.find("./wa:ProvisioningSection/wa:LinuxProvisioningConfigurationSet", NS)
    assert config is not None
    return {e.tag.split("}", 1)[1]: e.text or "" for e in config.iter() if len(e) == 0}


def test_ovf_env_carries_the_user_password_custom_data_and_keys() -> None:
    found = read(ovf_env_xml(compute(), ProvisioningMedia(admin_password=PASSWORD, custom_data=CUSTOM)))
    assert (found["UserName"], found["HostName"], found["UserPassword"]) == ("azureuser", "host-1", PASSWORD)
    assert found["DisableSshPasswordAuthentication"] == "false"
    assert base64.b64decode(found["CustomData"]) == b"#cloud-config\nruncmd: [touch /x]\n"
    assert (found["Path"], found["Value"]) == ("/home/azureuser/.ssh/authorized_keys", ED25519)


def test_custom_data_alone_leaves_password_authentication_off() -> None:
    keys_only = {"name": "vm1", **imds_os_profile(check_os_profile("vm1", "azureuser", [SshKey("", ED25519)]))}
    found = read(ovf_env_xml(keys_only, ProvisioningMedia(custom_data=CUSTOM)))
    assert "UserPassword" not in found and found["DisableSshPasswordAuthentication"] == "true"


def test_the_cd_is_an_iso_holding_ovf_env_private_to_the_node(tmp_path: Path) -> None:
    require(shutil.which("genisoimage") is not None and shutil.which("isoinfo") is not None,
            "genisoimage and isoinfo (Debian genisoimage)")
    cd = tmp_path / "vms" / "vm1.ovf-env.iso"
    media = ProvisioningMedia(admin_password=PASSWORD, custom_data=CUSTOM)
    assert ensure_iso(cd, compute(), media)
    assert cd.stat().st_mode & 0o777 == 0o600
    listed = subprocess.run(["isoinfo", "-R", "-f", "-i", str(cd)], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["/ovf-env.xml"]
    held = subprocess.run(["isoinfo", "-R", "-i", str(cd), "-x", "/ovf-env.xml"], capture_output=True,
                          check=True).stdout
    assert held == ovf_env_xml(compute(), media)
    assert not ensure_iso(cd, compute(), media)             # made once
    assert sorted(p.name for p in cd.parent.iterdir()) == ["vm1.ovf-env.iso"]     # no staging left
