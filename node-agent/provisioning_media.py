"""A new VM's provisioning media, as the reference's platform makes it: a CD holding ovf-env.xml, which the
guest's provisioning agent (cloud-init's datasource, WALinuxAgent) mounts once at first boot for what IMDS does
not serve: the admin password and the custom data (with, as in the reference, the user name, host name and SSH
keys it also reads from IMDS).

The CD is an ISO 9660 image (Rock Ridge names, so that `ovf-env.xml` reads as such) made by genisoimage, beside the
VM's temporary disk: private (0600), made under a temporary name and renamed, and removed once the VM's
provisioning has ended and its assignment no longer carries the media. It is never logged.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fabric.files import TRAVERSE_DIR, ensure_dir, private_opener
from fabric.model import ProvisioningMedia
from nodeagent.resource_disks import clear_stale, tmp_name

OVF_NS = "http://schemas.dmtf.org/ovf/environment/1"
WA_NS = "http://schemas.microsoft.com/windowsazure"
VOLUME_ID = "OVF_ENV"


def ovf_env_xml(compute: dict[str, Any], media: ProvisioningMedia) -> bytes:
    """ovf-env.xml in the reference's shape, from the VM's IMDS compute section and its media."""
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
   <ProvisionGuestAgent>true</ProvisionGuestAgent>
   <PreprovisionedVm>false</PreprovisionedVm>
  </PlatformSettings>
 </wa:PlatformSettingsSection>
</Environment>
""".encode()


def ensure_iso(path: Path, compute: dict[str, Any], media: ProvisioningMedia) -> bool:
    """The VM's provisioning CD at `path`; True when made now (a CD made before is kept: the media never
    change)."""
    if path.exists():
        return False
    ensure_dir(path.parent, TRAVERSE_DIR)      # qemu opens the CD by path, as the temporary disk
    clear_stale(path)
    tmp = tmp_name(path)
    with tempfile.TemporaryDirectory(prefix=".ovf-", dir=path.parent) as folder:
        with open(Path(folder) / "ovf-env.xml", "wb", opener=private_opener) as f:
            f.write(ovf_env_xml(compute, media))
        made = subprocess.run(["genisoimage", "-quiet", "-input-charset", "utf-8", "-V", VOLUME_ID, "-r",
                               "-o", str(tmp), folder], capture_output=True, text=True)
    if made.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise OSError(f"genisoimage failed making the provisioning CD {path}: {made.stderr.strip()}")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return True

