"""A real Linux guest, provisioned by its own, unmodified guest software: the Debian 12 image (Debian's cloud-init
and waagent as packaged) built the way `fabric lab up --image fabriclab:debian:12:latest` builds it, created
with an admin user, an SSH key, a password and custom data. cloud-init makes the user from IMDS, takes the
password and the custom data from the provisioning CD, and reports Ready; the key logs in
through `fabric vm ssh`; waagent's status blob makes the instance view's vmAgent Ready and keeps it so, also
after a restart; waagent runs a CustomScript 2.1 extension from the wireserver's handler repository; the
resource disk is formatted and mounted by cloud-init through the image's udev link."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from fabric.lab.lab import ensure_image
from nodeagent.guest_reports import AGENT_STALE_S
from tests.conftest import require
from tests.e2e.conftest import LabHandle

URN = "fabriclab:debian:12:latest"
AGENT_VERSION = "2.7.3.0"          # Debian 12's waagent
PASSWORD = "Lab-Passw0rd-2026"


def agent_view(lab: LabHandle) -> dict[str, Any]:
    vm = lab.json("vm", "show", "-g", "E2E", "-n", "deb", "--instance-view")
    return dict(vm["properties"]["instanceView"].get("vmAgent") or {})


def wait_for_agent(lab: LabHandle, after: str = "", timeout_s: float = 180) -> dict[str, Any]:
    """The vmAgent view once waagent's status made it Ready with its version (heard after `after`)."""
    deadline = time.monotonic() + timeout_s
    view: dict[str, Any] = {}
    while time.monotonic() < deadline:
        view = agent_view(lab)
        status = (view.get("statuses") or [{}])[0]
        if view.get("vmAgentVersion") == AGENT_VERSION and status.get("displayStatus") == "Ready" and \
                status.get("time", "") > after:
            return view
        time.sleep(3)
    raise AssertionError(f"vmAgent never became Ready from waagent: {view}")


@pytest.fixture(scope="module")
def debian(lab: LabHandle) -> str:
    require(shutil.which("debootstrap") is not None, "debootstrap (to build the Debian image)")
    return ensure_image(lab.lab.gallery_dir, URN)


def test_a_debian_guest_is_provisioned_by_its_own_agents_and_the_key_logs_in(lab: LabHandle, debian: str,
                                                                            tmp_path: Path) -> None:
    key = tmp_path / "id_lab"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    custom = tmp_path / "cloud-config.yaml"
    custom.write_text("#cloud-config\nwrite_files:\n- path: /etc/fabriclab-custom-data\n"
                      "  content: made from custom data\n")
    created = lab.json("vm", "create", "-g", "E2E", "-n", "deb", "--image", URN, "--size", "Lab_A1",
                       "--admin-username", "labadmin", "--ssh-key-values", f"{key}.pub", "--authentication-type",
                       "all", "--admin-password", PASSWORD, "--custom-data", str(custom))
    assert created["properties"]["provisioningState"] == "Succeeded"
    assert created["properties"]["storageProfile"]["imageReference"]["exactVersion"] == debian.rsplit(":", 1)[1]
    op = lab.json("operation", "show", created["properties"]["lastOperationId"])
    assert op["status"] == "Succeeded"
    trace = lab.fabric("operation", "show", op["id"], "--trace").stdout
    assert "waiting for the guest agent to report Ready" in trace and "provisioning finished" in trace

    def ssh(*command: str) -> str:
        """The command's output through `fabric vm ssh`, once sshd answers (it starts after the guest made its
        host keys, a while after the VM is up)."""
        deadline = time.monotonic() + 180
        while True:
            r = lab.fabric("vm", "ssh", "-g", "E2E", "-n", "deb", "-i", str(key), "--", *command, check=False,
                           timeout=60)
            if r.returncode == 0 or "Connection refused" not in r.stderr or time.monotonic() > deadline:
                break
            time.sleep(3)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert ssh("id", "-un") == "labadmin"
    assert "sudo" in ssh("id", "-Gn").split()
    # the provisioning CD's part: cloud-init set the password (its hash checks against the one given) and ran the
    # custom data as its user data; then the node removed the CD
    shadow = ssh("sudo", "getent", "shadow", "labadmin").split(":")[1]
    salt = shadow.split("$")[2]
    assert subprocess.run(["openssl", "passwd", "-6", "-salt", salt, PASSWORD], capture_output=True, text=True,
                          check=True).stdout.strip() == shadow
    assert ssh("cat", "/etc/fabriclab-custom-data") == "made from custom data"
    assert "passwordauthentication yes" in ssh("sudo", "sshd", "-T").splitlines()    # ssh_pwauth from the CD
    assert "provisioning-cd-removed" in lab.fabric("operation", "show", op["id"], "--trace").stdout

    first = wait_for_agent(lab)
    heard = first["statuses"][0]["time"]
    later = wait_for_agent(lab, after=heard, timeout_s=60)      # waagent keeps reporting (every 6 s)
    assert later["statuses"][0]["message"] == "Guest Agent is running"

    # the temporary disk: where the reference's guest software looks (/dev/disk/cloud/azure_resource),
    # partitioned, formatted and mounted by cloud-init
    assert ssh("readlink", "-f", "/dev/disk/cloud/azure_resource") == "/dev/vdb"
    assert ssh("findmnt", "-n", "-o", "SOURCE,FSTYPE", "/mnt").split() == ["/dev/vdb1", "ext4"]

    # CustomScript 2.1, run by waagent itself: the handler from the wireserver's repository, the script by SAS
    script = tmp_path / "hello.sh"
    script.write_text("echo \"hello from $(hostname) as $(id -un)\"\n")
    # (--custom-script without --publisher: the CustomScript handler of the VM's guest agent, here waagent's)
    assert lab.json("vm", "show", "-g", "E2E", "-n", "deb")["properties"]["guestAgent"] == "WALinuxAgent"
    ext = lab.json("vm", "extension", "set", "-g", "E2E", "--vm-name", "deb", "-n", "CustomScript",
                   "--custom-script", str(script))
    assert ext["properties"]["provisioningState"] == "Succeeded"
    view = ext["properties"]["instanceView"]
    assert view["typeHandlerVersion"] == "2.1" and view["statuses"][0]["code"] == "ProvisioningState/succeeded"
    assert "Enable succeeded" in view["statuses"][0]["message"]
    assert "hello from deb as root" in view["statuses"][0]["message"]
    assert ssh("sudo", "cat", "/var/lib/waagent/custom-script/download/0/stdout") == "hello from deb as root"

    lab.fabric("vm", "restart", "-g", "E2E", "-n", "deb")        # waits for its operation; fails if it fails
    assert lab.json("vm", "show", "-g", "E2E", "-n", "deb")["properties"]["provisioningState"] == "Succeeded"
    # Ready again from this boot's status blobs, and still Ready past the minute after which a Ready health
    # report from the boot before would have expired (AGENT_STALE_S)
    past_expiry = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=AGENT_STALE_S + 5)
    wait_for_agent(lab, after=past_expiry.isoformat().replace("+00:00", "Z"), timeout_s=AGENT_STALE_S + 120)
    assert ssh("id", "-un") == "labadmin"
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "deb", "--yes")



def test_a_disk_brought_by_a_user_is_imported_and_boots_its_own_bootloader(lab: LabHandle, debian: str,
                                                                          tmp_path: Path) -> None:
    """The Debian image's disk, as a user would bring it (qcow2, an MBR and extlinux), imported under another
    name: the VM boots it through its firmware and its guest provisions it."""
    built = lab.lab.gallery_dir.joinpath(*debian.split(":"), "disk.vhd")
    mine = tmp_path / "debian.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(built), str(mine)], check=True)
    image = lab.json("image", "import", "--publisher", "Contoso", "--offer", "debian", "--sku", "12",
                     "--version", "1.0.0", "--file", str(mine))
    assert (image["urn"], image["boot"], image["diskFormat"]) == ("Contoso:debian:12:1.0.0", "firmware", "qcow2")
    assert [i["urn"] for i in lab.json("vm", "image", "list", "--publisher", "Contoso")] == [image["urn"]]
    key = tmp_path / "id_lab"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    vm = lab.json("vm", "create", "-g", "E2E", "-n", "mine", "--image", "Contoso:debian:12:latest", "--size",
                  "Lab_A1", "--admin-username", "labadmin", "--ssh-key-values", f"{key}.pub")
    assert vm["properties"]["provisioningState"] == "Succeeded"
    serial = lab.fabric("vm", "get-serial-output", "-g", "E2E", "-n", "mine", "--tail", "5000").stdout
    assert "BOOT_IMAGE=/boot/vmlinuz" in serial            # extlinux started the kernel, not the VM's definition
    lab.fabric("vm", "delete", "-g", "E2E", "-n", "mine", "--yes")
