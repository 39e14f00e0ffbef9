"""A new VM's provisioning media, as the reference's platform makes it: a CD holding ovf-env.xml, which the
guest's provisioning agent (cloud-init's datasource, WALinuxAgent) mounts once at first boot for what IMDS does
not serve: the admin password and the custom data (with, as in the reference, the user name, host name and SSH
keys it also reads from IMDS).

The CD is an ISO 9660 image (Rock Ridge names, so that `ovf-env.xml` reads as such) made by genisoimage, beside the
VM's temporary disk: private (0600), made in a private staging folder and renamed into place, and removed once
the VM's provisioning has ended and its assignment no longer carries the media. It is never logged.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fabric.files import TRAVERSE_DIR, ensure_dir, private_opener
from fabric.model import ProvisioningMedia
from nodeagent import resource_disks

OVF_NS = "http://schemas.dmtf.org/ovf/environment/1"
WA_NS = "http://schemas.microsoft.com/windowsazure"
VOLUME_ID = "OVF_ENV"
SUFFIX = ".ovf-env.iso"          # a VM's CD: <vmId>.ovf-env.iso
STAGING = ".staging-"            # where one is made


def ovf_env_xml(compute: dict[str, Any], media: ProvisioningMedia, vm_agent: bool = True) -> bytes:
    """ovf-env.xml in the reference's shape, from the VM's IMDS compute section, its media and whether its guest
    agent runs (provisionVMAgent)."""
    profile = compute.get("osProfile") or {}
    keys = "".join(f"<PublicKey><Fingerprint></Fingerprint><Path>{escape(k['path'])}</Path>"
                   f"<Value>{escape(k['keyData'])}</Value></PublicKey>" for k in compute.get("publicKeys") or [])
    password = f"<UserPassword>{escape(media.admin_password)}</UserPassword>" if media.admin_password else ""
    custom = f"<CustomData>{escape(media.custom_data)}</CustomData>" if media.custom_data else ""
    disable = "false" if profile.get("disablePasswordAuthentication") == "false" else "true"
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Environment xmlns="{OVF_NS}" xmlns:oe="{OVF_NS}" xmlns:wa="{WA_NS}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">
 <wa:ProvisioningSection>
  <wa:Version>1.0</wa:Version>
  <LinuxProvisioningConfigurationSet xmlns="{WA_NS}">
   <ConfigurationSetType>LinuxProvisioningConfiguration</ConfigurationSetType>
   <HostName>{escape(str(profile.get("computerName") or compute.get("name", "")))}</HostName>
   <UserName>{escape(str(profile.get("adminUsername", "")))}</UserName>
   {password}
   <DisableSshPasswordAuthentication>{disable}</DisableSshPasswordAuthentication>
   {custom}
   <SSH><PublicKeys>{keys}</PublicKeys></SSH>
  </LinuxProvisioningConfigurationSet>
 </wa:ProvisioningSection>
 <wa:PlatformSettingsSection>
  <wa:Version>1.0</wa:Version>
  <PlatformSettings xmlns="{WA_NS}">
   <ProvisionGuestAgent>{'true' if vm_agent else 'false'}</ProvisionGuestAgent>
   <PreprovisionedVm>false</PreprovisionedVm>
  </PlatformSettings>
 </wa:PlatformSettingsSection>
</Environment>
""".encode()


def ensure_iso(path: Path, compute: dict[str, Any], media: ProvisioningMedia, vm_agent: bool = True) -> bool:
    """The VM's provisioning CD at `path`; True when made now (a CD made before is kept: the media never
    change). Made in a private (0700) staging folder and renamed into place complete, 0600: a killed agent leaves
    at most that folder, which the next attempt and remove() clear."""
    if path.exists():
        return False
    ensure_dir(path.parent, TRAVERSE_DIR)      # qemu opens the CD by path, as the temporary disk
    _clear_staging(path)
    with tempfile.TemporaryDirectory(prefix=_staging_prefix(path), dir=path.parent) as folder:
        content, iso = Path(folder) / "cd", Path(folder) / "cd.iso"
        content.mkdir(mode=0o700)
        with open(content / "ovf-env.xml", "wb", opener=private_opener) as f:
            f.write(ovf_env_xml(compute, media, vm_agent))
        made = subprocess.run(["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", VOLUME_ID, "-r",
                               "-o", str(iso), str(content)], capture_output=True, text=True)
        if made.returncode != 0:
            raise OSError(f"genisoimage failed making the provisioning CD {path}: {made.stderr.strip()}")
        os.chmod(iso, 0o600)
        os.replace(iso, path)
    return True


def remove(path: Path) -> bool:
    """The CD and any staging folder of it gone; True when the CD was there."""
    _clear_staging(path)
    return resource_disks.remove(path)


def sweep(folder: Path, wanted: set[Path]) -> list[Path]:
    """The CDs in `folder` other than `wanted` removed, and every staging folder (none is in use between two
    makes); the CDs removed."""
    for stale in folder.glob(f"{STAGING}*"):
        shutil.rmtree(stale, ignore_errors=True)
    return [cd for cd in folder.glob(f"*{SUFFIX}") if cd not in wanted and remove(cd)]


def _staging_prefix(path: Path) -> str:
    return f"{STAGING}{path.name}-"


def _clear_staging(path: Path) -> None:
    for stale in path.parent.glob(f"{_staging_prefix(path)}*"):
        shutil.rmtree(stale, ignore_errors=True)
