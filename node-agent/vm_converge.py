"""One VM on this node, converged to its assignment through the compute driver: its temporary disk, its
provisioning CD while it has one, its instance (spawned from a VmSpec), its data disks, its power, and its boot
as the serial console shows it.

Every change is a step of the VM's operation. Nothing here knows the hypervisor's own form of a VM: that
is the driver's (`nodeagent.hypervisor`).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from fabric.model import Assignment, Observed, PowerState
from nodeagent import provisioning_media, resource_disks
from nodeagent.console import BootRecord, Consoles
from nodeagent.hypervisor import ComputeDriver, DirectBoot, FirmwareBoot, Nic, Spawned, VmSpec
from nodeagent.images import ImageCache
from nodeagent.netsvc.networks import Networks
from nodeagent.storage_backends import Disk, StorageBackend
from nodeagent.tracing import Trace

log = logging.getLogger("nodeagent")


def instance_name(a: Assignment) -> str:
    return f"fl-{a.name}-{a.vm_id[:8]}"


class VmConverger:
    """`wall` (epoch seconds) stamps when each boot started: injected by tests."""

    def __init__(self, driver: ComputeDriver, trace: Trace, consoles: Consoles, networks: Networks,
                 resource_dir: Path, images: ImageCache, disks: StorageBackend,
                 wall: Callable[[], float] = time.time) -> None:
        self.driver = driver
        self.images = images
        self.disks = disks
        self.trace = trace
        self.consoles = consoles
        self.networks = networks
        self.resource_dir = resource_dir
        self.wall = wall

    def resource_disk(self, vm_id: str) -> Path:
        return self.resource_dir / f"{vm_id}.raw"

    def provisioning_cd(self, vm_id: str) -> Path:
        return self.resource_dir / f"{vm_id}{provisioning_media.SUFFIX}"

    def _remove_files(self, vm_id: str) -> bool:
        """The VM's node-local files gone (its temporary disk and its provisioning CD); True when the temporary
        disk was there."""
        provisioning_media.remove(self.provisioning_cd(vm_id))
        return resource_disks.remove(self.resource_disk(vm_id))

    def sweep_provisioning_cds(self, wanted: set[str]) -> None:
        """Provisioning CDs of VMs whose assignment no longer has media, or no longer names them here (deleted
        while this node was down, before any domain was defined), and half-made ones: no password is left on
        the node."""
        if self.resource_dir.is_dir():
            for cd in provisioning_media.sweep(self.resource_dir, {self.provisioning_cd(v) for v in wanted}):
                log.info("provisioning CD %s removed: no assignment of this node carries its media", cd)

    def converge(self, a: Assignment, first_seen: bool) -> tuple[Observed, BootRecord | None]:
        """What the node sees of the VM once it is as its assignment says, and its boot when it runs."""
        step = self.trace.step
        base = Observed(vm_id=a.vm_id, node=self.trace.node, power=a.power, generation=a.generation,
                        operation_id=a.operation_id, disk_generation=a.disk_generation,
                        domain=instance_name(a), hypervisor=self.driver.hypervisor,
                        console=str(self.consoles.log_path(a.vm_id)))
        if not a.on_node:
            self.remove(a)
            return base, None
        holder = self.driver.holder(a.vm_id)
        if holder:
            if first_seen:
                step(a.operation_id, "waiting", f"domain {a.vm_id} is still defined by {holder} on this "
                                                f"hypervisor; waiting for it to be released")
            return base.replace(power=PowerState.STOPPED), None
        self._spawn(a)
        self._converge_data_disks(a)
        if a.power == PowerState.STOPPED:
            if self.driver.power_off(a.vm_id):
                step(a.operation_id, "domain-stopped", f"domain {base.domain} powered off")
            return base, None
        boot = self._ensure_running(a)
        return base.replace(generation=boot.generation, booted=boot.booted), boot

    def remove(self, a: Assignment) -> None:
        """Deallocated or deleted: the instance and the temporary disk go; the console too when deleted."""
        self.disks.forget(a.vm_id)
        if self.driver.destroy(a.vm_id):
            self.trace.step(a.operation_id, "domain-undefined", f"domain {instance_name(a)} removed")
        if self._remove_files(a.vm_id):
            self.trace.step(a.operation_id, "resource-disk-removed",
                            f"temporary disk {self.resource_disk(a.vm_id)} wiped")
        if a.power == PowerState.DELETED:
            self.consoles.forget(a.vm_id)

    def fence(self, vm_id: str, name: str) -> None:
        """An instance of ours that no assignment names (e.g. deleted while this node was down): destroy it,
        and drop its node-local files (resource disk, console, boot record)."""
        log.warning("fencing domain %s (%s): no assignment names it", name, vm_id)
        self.disks.forget(vm_id)
        self.driver.destroy(vm_id)
        self._remove_files(vm_id)
        self.consoles.forget(vm_id)

    def spec(self, a: Assignment) -> VmSpec:
        img = a.image
        boot: DirectBoot | FirmwareBoot = FirmwareBoot()        # an image with its own bootloader
        if img.kernel:                                          # an image built here: its kernel, booted directly
            cmdline = f"{img.cmdline} fabric.hostname={a.name}" + ("" if a.vm_agent else " fabric.vmagent=0")
            boot = DirectBoot(*self.images.boot_files(img), cmdline)
        return VmSpec(uuid=a.vm_id, name=instance_name(a), resource_group=a.resource_group, vm_name=a.name,
                      cores=a.cores, memory_mb=a.memory_mb, boot=boot,
                      os_disk=self.disks.describe(a.vm_id, a.os_disk), resource_disk=Disk("file", str(self.resource_disk(a.vm_id)), "raw"),
                      console_log=str(self.consoles.log_path(a.vm_id)),
                      nics=tuple(Nic(n.mac, self.networks.bridge(n.vni), self.networks.tap(n.mac))
                                 for n in a.nics),
                      data_disks=tuple(sorted(self._data_disks(a).items())),
                      provisioning_cd=Disk("file", str(self.provisioning_cd(a.vm_id)), "raw")
                      if a.provisioning_media else None)

    def _spawn(self, a: Assignment) -> None:
        disk = self.resource_disk(a.vm_id)
        spec = self.spec(a)
        if resource_disks.ensure_resource_disk(disk, a.resource_disk_mb):
            self.trace.step(a.operation_id, "resource-disk-created",
                            f"temporary disk {disk} ({a.resource_disk_mb} MB, sparse, node-local)")
        cd = self.provisioning_cd(a.vm_id)
        if a.provisioning_media and provisioning_media.ensure_iso(cd, a.instance_metadata, a.provisioning_media,
                                                                  a.vm_agent):
            self.trace.step(a.operation_id, "provisioning-cd-made",
                            f"provisioning CD {cd}: ovf-env.xml with the admin user"
                            f"{', its password' if a.provisioning_media.admin_password else ''}"
                            f"{', the custom data' if a.provisioning_media.custom_data else ''} (read once by the "
                            f"guest's provisioning agent)")
        # provisioning has ended: the CD goes first (a definition that cannot be made keeps no password here)
        cd_removed = not a.provisioning_media and provisioning_media.remove(cd)
        done = self.driver.spawn(spec)
        if cd_removed:
            then = ("redefined without it (its next start has no CD)" if done.outcome == Spawned.REDEFINED
                    else "has none")
            self.trace.step(a.operation_id, "provisioning-cd-removed",
                            f"provisioning CD {cd} removed: provisioning has ended; domain {spec.name} {then}",
                            detail=done.definition)
        if done.outcome == Spawned.DEFINED:
            self.trace.step(a.operation_id, "domain-defined",
                            f"{self.driver.hypervisor} domain {spec.name} defined; OS disk: {spec.os_disk}", detail=done.definition)
        elif done.outcome == Spawned.REDEFINED and not cd_removed:
            taps = f" (its NICs are the filtered taps {', '.join(n.tap for n in spec.nics)})" if spec.nics else ""
            log.warning("domain %s redefined%s; a running domain takes it at its next start", spec.name, taps)
            self.trace.step(a.operation_id, "domain-redefined",
                            f"domain {spec.name} redefined: its definition was made by an earlier agent or "
                            f"differs from its spec{taps}; a running domain takes it at its next start",
                            detail=done.definition)

    def _data_disks(self, a: Assignment) -> dict[int, Disk]:
        """LUN -> disk of the assignment's data disks; each must be reachable."""
        return {d.lun: self.disks.describe(a.vm_id, d.ref) for d in a.data_disks}

    def _converge_data_disks(self, a: Assignment) -> None:
        """Hot-plug or unplug LUNs until the instance has exactly the assignment's data disks."""
        want = self._data_disks(a)
        uris = {d.lun: d.ref.uri for d in a.data_disks}
        have = self.driver.data_disks(a.vm_id)
        for lun, identity in have.items():
            if lun not in want or want[lun].identity != identity:
                self.driver.detach_disk(a.vm_id, lun)
                self.trace.step(a.operation_id, "data-disk-detached", f"LUN {lun} ({identity}) unplugged")
        for lun, disk in want.items():
            if have.get(lun) != disk.identity:
                self.driver.attach_disk(a.vm_id, lun, disk)
                self.trace.step(a.operation_id, "data-disk-attached",
                                f"{uris[lun]} plugged in as LUN {lun} (/dev/sd{chr(ord('a') + lun)} in the guest)")

    def _ensure_running(self, a: Assignment) -> BootRecord:
        step, name = self.trace.step, instance_name(a)
        boot = self.consoles.boot(a.vm_id)
        inst = self.driver.instance(a.vm_id)
        active = bool(inst and inst.active)
        if boot is None and active:
            boot = BootRecord(a.generation, 0)      # state folder lost: scan the whole log
        if not active or boot is None or boot.generation < a.generation:
            if active and self.driver.power_off(a.vm_id):
                step(a.operation_id, "domain-reset", f"domain {name} restarting")
            boot = BootRecord(a.generation, self.consoles.size(a.vm_id), started=self.wall())
            self.consoles.save_boot(a.vm_id, boot)
            self.driver.power_on(a.vm_id)
            waits = (f"waiting for '{a.image.boot_marker}' on the serial console" if a.image.boot_marker else
                     "waiting for the guest agent to report Ready to the wireserver")
            step(a.operation_id, "domain-started", f"domain {name} started; {waits}",
                 detail=f"console log {self.consoles.log_path(a.vm_id)} from byte {boot.offset}")
        if not boot.booted and a.image.boot_marker:     # without a marker, the guest agent tells (agent.py)
            line = self.consoles.find_marker(a.vm_id, boot.offset, a.image.boot_marker)
            if line is not None:
                boot = dataclasses.replace(boot, booted=True)
                self.consoles.save_boot(a.vm_id, boot)
                step(a.operation_id, "guest-ready", "guest reached user space", detail=line)
        return boot
