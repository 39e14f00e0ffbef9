"""Libvirt domain XML for a fabriclab VM (direct kernel boot from the gallery image).

The <metadata> element marks the domain as fabriclab's and names the fabric
and the node that own it; an agent only ever touches domains that carry its
own fabric id and node name (several labs may share one libvirtd).
"""
from __future__ import annotations

import dataclasses
from xml.sax.saxutils import escape, quoteattr

from nodeagent.storage_backends import DiskSource

METADATA_NS = "urn:fabriclab:domain:1"
METADATA_PREFIX = "fabriclab"


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    name: str
    uuid: str
    node: str
    fabric_id: str
    resource_group: str
    vm_name: str
    domain_type: str          # "kvm" or "qemu"
    cores: int
    memory_mb: int
    kernel: str
    initrd: str
    cmdline: str
    os_disk: DiskSource       # from the node's storage backend
    resource_disk: str        # raw file, node-local
    console_log: str
    data_disks: tuple[tuple[int, DiskSource], ...] = ()   # (lun, source)
    nics: tuple[tuple[str, str, str], ...] = ()            # (mac, bridge, tap: the name port security filters)


def metadata_xml(fabric_id: str, node: str, vm_id: str, resource_group: str, vm_name: str) -> str:
    p = METADATA_PREFIX
    fields = {"fabric": fabric_id, "node": node, "vmId": vm_id, "resourceGroup": resource_group, "name": vm_name}
    inner = "".join(f"<{p}:{k}>{escape(v)}</{p}:{k}>" for k, v in fields.items())
    return f"<{p}:instance xmlns:{p}={quoteattr(METADATA_NS)}>{inner}</{p}:instance>"


def data_disk_xml(lun: int, src: DiskSource) -> str:
    """A data disk: a LUN on the virtio-scsi controller (hot-pluggable; the guest sees /dev/sdX)."""
    return (f"<disk type={quoteattr(src.disk_type)} device='disk'>"
            f"<driver name='qemu' type={quoteattr(src.driver_type)} cache='none'/>{src.source_xml}"
            f"<target dev='sd{chr(ord('a') + lun)}' bus='scsi'/>"
            f"<address type='drive' controller='0' bus='0' target='0' unit='{lun}'/></disk>")


def domain_xml(s: DomainSpec) -> str:
    cpu = "<cpu mode='host-passthrough'/>" if s.domain_type == "kvm" else ""
    meta = metadata_xml(s.fabric_id, s.node, s.uuid, s.resource_group, s.vm_name)
    return f"""<domain type={quoteattr(s.domain_type)}>
  <name>{escape(s.name)}</name>
  <uuid>{escape(s.uuid)}</uuid>
  <metadata>
    {meta}
  </metadata>
  <memory unit='MiB'>{s.memory_mb}</memory>
  <vcpu>{s.cores}</vcpu>
  {cpu}
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{escape(s.kernel)}</kernel>
    <initrd>{escape(s.initrd)}</initrd>
    <cmdline>{escape(s.cmdline)}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type={quoteattr(s.os_disk.disk_type)} device='disk'>
      <driver name='qemu' type={quoteattr(s.os_disk.driver_type)} cache='writeback'/>
      {s.os_disk.source_xml}
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file={quoteattr(s.resource_disk)}/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    {"".join(f"<interface type='bridge'><mac address={quoteattr(mac)}/><source bridge={quoteattr(br)}/>"
             f"<target dev={quoteattr(tap)}/><model type='virtio'/></interface>" for mac, br, tap in s.nics)}
    <controller type='scsi' index='0' model='virtio-scsi'/>
    {"".join(data_disk_xml(lun, src) for lun, src in s.data_disks)}
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
