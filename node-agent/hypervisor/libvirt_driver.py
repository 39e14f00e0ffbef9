"""The libvirt compute driver: one libvirt connection and the domains this node owns on it.

Ownership: a domain is this node's when its fabriclab metadata names this
node and this fabric. Nothing here lists, stops or removes any other domain.
A connection that drops (libvirtd restarted) is opened again on the next call.
The domain type is KVM when a guest really boots under it, else TCG ("qemu"):
`/dev/kvm` existing is not enough, since under broken nested virtualisation a
KVM guest hangs in firmware (`probe_kvm`).
"""
from __future__ import annotations

import glob
import os
import tempfile
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TypeVar

import libvirt

from nodeagent.hypervisor.domain_xml import METADATA_NS, data_disk_xml, domain_xml, fingerprint
from nodeagent.hypervisor.driver import DriverError, Instance, Spawned, SpawnResult, VmSpec
from nodeagent.storage_backends import Disk

libvirt.registerErrorHandler(lambda *_: None, None)  # errors come back as exceptions, not stderr noise

T = TypeVar("T")

KVM_PROBE_TIMEOUT_S = 8.0
KVM_PROBE_MEMORY_MB = 128
PROBE_MARKER = "Linux version"

# libvirt errors after which the same call may succeed later: the daemon or its connection went away (any
# error of the RPC layer: "client socket is closed" is an internal error there), a lock or a job is held,
# the domain changed state under us. A system error elsewhere (a file qemu cannot open) stays one, and so
# does every other error: the hypervisor refusing.
TEMPORARY = frozenset({libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_RPC, libvirt.VIR_ERR_OPERATION_TIMEOUT,
                       libvirt.VIR_ERR_AGENT_UNRESPONSIVE, libvirt.VIR_ERR_RESOURCE_BUSY,
                       libvirt.VIR_ERR_OPERATION_INVALID})
CONNECTION = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _error(what: str, exc: libvirt.libvirtError) -> DriverError:
    temporary = exc.get_error_code() in TEMPORARY or exc.get_error_domain() in CONNECTION
    return DriverError(f"{what}: {exc.get_error_message()}", temporary=temporary)


class LibvirtDriver:
    def __init__(self, uri: str, node: str, fabric_id: str, domain_type: str = "qemu") -> None:
        self.uri = uri
        self.node = node
        self.fabric_id = fabric_id
        self.hypervisor = domain_type
        self._lock = threading.Lock()
        self._conn = self._open()

    def _open(self) -> libvirt.virConnect:
        try:
            return libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}",
                              temporary=True) from None

    @property
    def conn(self) -> libvirt.virConnect:
        """The connection, opened again when libvirtd dropped it."""
        with self._lock:
            try:
                alive = bool(self._conn.isAlive())
            except libvirt.libvirtError:
                alive = False
            if not alive:
                try:
                    self._conn.close()
                except libvirt.libvirtError:
                    pass
                self._conn = self._open()
            return self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _call(self, what: str, fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise _error(what, exc) from None

    # ----- ownership -----

    def _meta(self, dom: libvirt.virDomain, persistent: bool = False) -> dict[str, str] | None:
        """The fabriclab metadata of the domain as it runs, or of its persistent definition (what the next
        start takes, and what spawn compares)."""
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG if persistent else 0
        try:
            raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, flags)
        except libvirt.libvirtError:
            return None
        return {_local(e.tag): (e.text or "") for e in ET.fromstring(raw)}

    def _mine(self, meta: dict[str, str] | None) -> bool:
        return meta is not None and meta.get("node") == self.node and meta.get("fabric") == self.fabric_id

    def _lookup(self, uuid: str) -> libvirt.virDomain | None:
        try:
            dom = self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise _error("look up", exc) from None
        return dom if self._mine(self._meta(dom)) else None

    def _owned(self, uuid: str, what: str) -> libvirt.virDomain:
        dom = self._lookup(uuid)
        if dom is None:     # undefined under us (a fence, another agent's clean-up): look again
            raise DriverError(f"{what}: domain {uuid} is not defined on node {self.node}", temporary=True)
        return dom

    def instances(self) -> dict[str, Instance]:
        out = {}
        for dom in self._call("list domains", self.conn.listAllDomains):
            if self._mine(self._meta(dom)):
                out[dom.UUIDString()] = Instance(dom.UUIDString(), dom.name(), bool(dom.isActive()))
        return out

    def instance(self, uuid: str) -> Instance | None:
        dom = self._lookup(uuid)
        return None if dom is None else Instance(uuid, dom.name(), bool(dom.isActive()))

    def holder(self, uuid: str) -> str:
        """Only a lab whose nodes share one libvirtd sees another holder: a VM moving between nodes waits for
        the old one to let go."""
        try:
            dom = self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:
            return ""
        meta = self._meta(dom)
        if self._mine(meta):
            return ""
        return f"node {meta.get('node', '?')}" if meta else "a domain fabriclab does not own"

    # ----- lifecycle -----

    def spawn(self, spec: VmSpec) -> SpawnResult:
        dom = self._lookup(spec.uuid)
        fp = fingerprint(spec, self.hypervisor, self.fabric_id, self.node)
        if dom is not None and (self._meta(dom, persistent=True) or {}).get("spec") == fp:
            return SpawnResult(Spawned.UNCHANGED)
        kept = None if dom is None else "".join(ET.tostring(d).decode() for d in self._scsi_disks(dom).values())
        xml = domain_xml(spec, self.hypervisor, self.fabric_id, self.node, fp, kept_disks=kept)
        self._call("define", self.conn.defineXML, xml)
        return SpawnResult(Spawned.DEFINED if dom is None else Spawned.REDEFINED, xml)

    def destroy(self, uuid: str) -> bool:
        dom = self._lookup(uuid)
        if dom is None:
            return False
        self.power_off(uuid)
        try:
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:   # a driver without NVRAM (test:///)
                raise _error("undefine", exc) from None
            self._call("undefine", dom.undefine)
        return True

    def power_on(self, uuid: str) -> None:
        dom = self._owned(uuid, "start")
        if not dom.isActive():
            self._call("start", dom.create)

    def power_off(self, uuid: str) -> bool:
        dom = self._lookup(uuid)
        if dom is None or not dom.isActive():
            return False
        self._call("destroy", dom.destroy)
        return True

    # ----- data disks -----

    def _scsi_disks(self, dom: libvirt.virDomain) -> dict[int, ET.Element]:
        out = {}
        desc = self._call("read definition", dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)
        for disk in ET.fromstring(desc).iter("disk"):
            target, addr = disk.find("target"), disk.find("address")
            if target is not None and target.get("bus") == "scsi" and addr is not None:
                out[int(addr.get("unit", "0"))] = disk
        return out

    def data_disks(self, uuid: str) -> dict[int, str]:
        dom = self._lookup(uuid)
        if dom is None:
            return {}
        out = {}
        for lun, disk in self._scsi_disks(dom).items():
            src = disk.find("source")
            out[lun] = (src.get("file") or src.get("dev") or src.get("name") or "") if src is not None else ""
        return out

    def attach_disk(self, uuid: str, lun: int, disk: Disk) -> None:
        dom = self._owned(uuid, "attach disk")
        self._call("attach disk", dom.attachDeviceFlags, data_disk_xml(lun, disk), self._affect(dom))

    def detach_disk(self, uuid: str, lun: int) -> None:
        dom = self._owned(uuid, "detach disk")
        found = self._scsi_disks(dom).get(lun)
        if found is not None:
            self._call("detach disk", dom.detachDeviceFlags, ET.tostring(found).decode(), self._affect(dom))

    @staticmethod
    def _affect(dom: libvirt.virDomain) -> int:
        """The definition, and the running domain when it runs (hot-plug)."""
        return int(libvirt.VIR_DOMAIN_AFFECT_CONFIG) | (int(libvirt.VIR_DOMAIN_AFFECT_LIVE) if dom.isActive() else 0)

    def screenshot(self, uuid: str) -> tuple[str, bytes]:
        dom = self._owned(uuid, "screenshot")
        stream = self.conn.newStream(0)
        try:
            mime = dom.screenshot(stream, 0, 0)
            data = bytearray()
            while chunk := stream.recv(65536):
                if not isinstance(chunk, bytes):
                    raise DriverError("screenshot: the stream stopped", temporary=True)
                data += chunk
            stream.finish()
        except BaseException as exc:
            try:
                stream.abort()
            except libvirt.libvirtError:
                pass
            if isinstance(exc, libvirt.libvirtError):
                raise _error("screenshot", exc) from None
            raise
        return str(mime), bytes(data)

    # ----- the domain type -----

    def domain_types(self) -> set[str]:
        caps = ET.fromstring(self._call("capabilities", self.conn.getCapabilities))
        return {d.get("type", "") for d in caps.iter("domain")}

    def probe_kvm(self) -> tuple[bool, str]:
        """Boot a kernel in a transient KVM domain and wait for its first console line; none within
        KVM_PROBE_TIMEOUT_S means TCG. The probe domain is destroyed whatever happens."""
        if "kvm" not in self.domain_types():
            return False, "libvirt offers no kvm domain type"
        if not os.path.exists("/dev/kvm"):
            return False, "/dev/kvm is missing"
        kernels = sorted(glob.glob("/boot/vmlinuz-*"))
        if not kernels:
            return False, "no kernel in /boot to probe with"
        with tempfile.TemporaryDirectory(prefix="fabriclab-kvm-probe-") as tmp:
            os.chmod(tmp, 0o755)
            log = os.path.join(tmp, "console.log")
            xml = f"""<domain type='kvm'><name>fabriclab-kvm-probe-{self.node}-{uuidlib.uuid4().hex[:8]}</name>
<memory unit='MiB'>{KVM_PROBE_MEMORY_MB}</memory><vcpu>1</vcpu><cpu mode='host-passthrough'/>
<os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernels[-1]}</kernel>
<cmdline>console=ttyS0 panic=-1</cmdline></os><on_reboot>destroy</on_reboot>
<devices><serial type='file'><source path='{log}'/><target port='0'/></serial></devices></domain>"""
            try:
                dom = self.conn.createXML(xml, 0)
            except libvirt.libvirtError as exc:
                return False, f"a KVM domain does not start: {exc.get_error_message()}"
            try:
                deadline = time.monotonic() + KVM_PROBE_TIMEOUT_S
                while time.monotonic() < deadline:
                    try:
                        with open(log, errors="replace") as f:
                            if PROBE_MARKER in f.read():
                                return True, f"a KVM guest printed '{PROBE_MARKER}'"
                    except FileNotFoundError:
                        pass
                    time.sleep(0.1)
                return False, f"a KVM guest printed nothing in {KVM_PROBE_TIMEOUT_S:g} s (hangs in firmware)"
            finally:
                try:
                    dom.destroy()
                except libvirt.libvirtError:
                    pass

    def choose_domain_type(self, setting: str) -> str:
        """Set self.hypervisor from the setting ("kvm" or "qemu" force it; "auto" probes); why it was chosen."""
        if setting in ("kvm", "qemu"):
            self.hypervisor, why = setting, "set explicitly"
        elif self.uri.startswith("test:"):
            self.hypervisor, why = "test", "libvirt test driver"
        else:
            ok, why = self.probe_kvm()
            self.hypervisor = "kvm" if ok else "qemu"
        return why
