"""Libvirt domain XML for a VmSpec: the libvirt driver's form of a VM (direct kernel boot from the gallery
image, disks as the storage backends describe them).

The <metadata> element marks the domain as fabriclab's and names the fabric
and the node that own it, and the fingerprint of the definition (this XML
without its data disks, which attach and detach change): a domain whose
fingerprint differs from what its spec would give now (a new template, another
domain type, other NICs) is redefined. An agent only ever touches domains that
carry its own fabric id and node name (several labs may share one libvirtd).
"""
from __future__ import annotations

import dataclasses
import hashlib
from xml.sax.saxutils import escape, quoteattr

from nodeagent.hypervisor.driver import DirectBoot, FirmwareBoot, VmSpec
from nodeagent.storage_backends import Disk

METADATA_NS = "urn:fabriclab:domain:1"
# the reference platform's SMBIOS chassis asset tag: guest software (cloud-init's datasource detection) reads it to
# know which cloud's protocol (IMDS, the wireserver) to speak
CHASSIS_ASSET_TAG = "7783-7084-3265-9085-8269-3286-77"
METADATA_PREFIX = "fabriclab"


def metadata_xml(fabric_id: str, node: str, spec: VmSpec, fingerprint: str) -> str:
    p = METADATA_PREFIX
    fields = {"fabric": fabric_id, "node": node, "vmId": spec.uuid, "resourceGroup": spec.resource_group,
              "name": spec.vm_name, "spec": fingerprint}
    inner = "".join(f"<{p}:{k}>{escape(v)}</{p}:{k}>" for k, v in fields.items())
    return f"<{p}:instance xmlns:{p}={quoteattr(METADATA_NS)}>{inner}</{p}:instance>"


RESOURCE_DISK_SERIAL = "resource"    # what an image's udev rule links to /dev/disk/cloud/azure_resource
HYPERV_FEATURES = ("<features><acpi/><apic/><hyperv mode='custom'><relaxed state='on'/><vapic state='on'/>"
                   "<spinlocks state='on' retries='8191'/><vpindex state='on'/><synic state='on'/>"
                   "<stimer state='on'/><vendor_id state='on' value='Microsoft Hv'/></hyperv></features>"
                   "<clock offset='utc'><timer name='hypervclock' present='yes'/></clock>")


def _disk_type(disk: Disk) -> str:
    if disk.kind not in ("file", "block", "network"):
        raise ValueError(f"disk kind '{disk.kind}' has no libvirt form")
    return disk.kind


def source_xml(disk: Disk) -> str:
    """The <source> of a disk: file=, dev= or a network volume with its hosts."""
    if disk.kind == "file":
        return f"<source file={quoteattr(disk.path)}/>"
    if disk.kind == "block":
        return f"<source dev={quoteattr(disk.path)}/>"
    hosts = "".join(f"<host name={quoteattr(h.rsplit(':', 1)[0])} port={quoteattr(h.rsplit(':', 1)[1])}/>"
                    for h in disk.hosts)
    tls = " tls='yes'" if disk.tls else ""
    return f"<source protocol={quoteattr(disk.protocol)} name={quoteattr(disk.path)}{tls}>{hosts}</source>"


def disk_xml(disk: Disk, target: str, bus: str, cache: str, address: str = "", serial: str = "") -> str:
    driver = f"<driver name='qemu' type={quoteattr(disk.format)}" + (f" cache={quoteattr(cache)}" if cache else "")
    return (f"<disk type={quoteattr(_disk_type(disk))} device='disk'>{driver}/>{source_xml(disk)}"
            f"<target dev={quoteattr(target)} bus={quoteattr(bus)}/>"
            f"{f'<serial>{escape(serial)}</serial>' if serial else ''}{address}</disk>")


def data_disk_xml(lun: int, disk: Disk) -> str:
    """A data disk: a LUN on the virtio-scsi controller (hot-pluggable; the guest sees /dev/sdX)."""
    return disk_xml(disk, f"sd{chr(ord('a') + lun)}", "scsi", "none",
                    f"<address type='drive' controller='0' bus='0' target='0' unit='{lun}'/>")


def cdrom_xml(disk: Disk | None) -> str:
    """The provisioning CD: read-only, on the SCSI controller's target 1 (data disks are target 0's LUNs), where
    a cloud kernel without AHCI sees it (/dev/sr0)."""
    if disk is None:
        return ""
    return (f"<disk type={quoteattr(_disk_type(disk))} device='cdrom'><driver name='qemu' type='raw'/>"
            f"{source_xml(disk)}<target dev='sdz' bus='scsi'/><readonly/>"
            f"<address type='drive' controller='0' bus='0' target='1' unit='0'/></disk>")


def boot_xml(boot: DirectBoot | FirmwareBoot) -> str:
    """A kernel booted directly, or the OS disk's bootloader through the firmware (SeaBIOS: the default)."""
    if isinstance(boot, FirmwareBoot):
        return "<boot dev='hd'/>"
    initrd = f"<initrd>{escape(boot.initrd)}</initrd>" if boot.initrd else ""
    return f"<kernel>{escape(boot.kernel)}</kernel>{initrd}<cmdline>{escape(boot.cmdline)}</cmdline>"


def fingerprint(s: VmSpec, domain_type: str, fabric_id: str, node: str) -> str:
    """What makes two definitions the same: their XML, without data disks and without this fingerprint."""
    body = domain_xml(dataclasses.replace(s, data_disks=()), domain_type, fabric_id, node, fingerprint="")
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def domain_xml(s: VmSpec, domain_type: str, fabric_id: str, node: str, fingerprint: str = "",
               kept_disks: str | None = None) -> str:
    """The definition; `kept_disks`: the data disk elements of an earlier definition, instead of the spec's."""
    cpu = "<cpu mode='host-passthrough'/>" if domain_type == "kvm" else ""
    # on KVM, the reference's hypervisor interface: Linux and Windows guests use its clock and spinlocks, and
    # the guest software of the reference's images sees the platform it was made for (TCG offers none of it)
    hyperv = HYPERV_FEATURES if domain_type == "kvm" else ""
    nics = "".join(f"<interface type='bridge'><mac address={quoteattr(n.mac)}/><source bridge={quoteattr(n.bridge)}/>"
                   f"<target dev={quoteattr(n.tap)}/><model type='virtio'/></interface>" for n in s.nics)
    return f"""<domain type={quoteattr(domain_type)}>
  <name>{escape(s.name)}</name>
  <uuid>{escape(s.uuid)}</uuid>
  <metadata>
    {metadata_xml(fabric_id, node, s, fingerprint)}
  </metadata>
  <memory unit='MiB'>{s.memory_mb}</memory>
  <vcpu>{s.cores}</vcpu>
  {cpu}
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    {boot_xml(s.boot)}
    <smbios mode='sysinfo'/>
  </os>
  <sysinfo type='smbios'>
    <system><entry name='manufacturer'>fabriclab</entry><entry name='product'>Virtual Machine</entry></system>
    <chassis><entry name='asset'>{CHASSIS_ASSET_TAG}</entry></chassis>
  </sysinfo>
  {hyperv}
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    {disk_xml(s.os_disk, "vda", "virtio", "writeback")}
    {disk_xml(s.resource_disk, "vdb", "virtio", "", serial=RESOURCE_DISK_SERIAL)}
    {nics}
    <controller type='scsi' index='0' model='virtio-scsi'/>
    {cdrom_xml(s.provisioning_cd)}
    {"".join(data_disk_xml(lun, d) for lun, d in s.data_disks) if kept_disks is None else kept_disks}
    <serial type='file'>
      <source path={quoteattr(s.console_log)} append='on'/>
      <target port='0'/>
    </serial>
    <console type='file'>
      <source path={quoteattr(s.console_log)} append='on'/>
      <target type='serial' port='0'/>
    </console>
  </devices>
</domain>
"""
