"""The libvirt compute driver: one libvirt connection and the domains this node owns on it.

Ownership: a domain is this node's when its fabriclab metadata names this
node and this fabric. Nothing here lists, stops or removes any other domain.
A connection that drops (libvirtd restarted) is opened again on the next call.
The domain type is KVM when a guest really boots under it, else TCG ("qemu"):
`/dev/kvm` existing is not enough, since under broken nested virtualisation a
KVM guest hangs in firmware (`probe_kvm`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import glob
import logging
import os
import tempfile
import threading
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
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
RELIST_S = 60.0           # every domain read again this often, in case an event was lost
# what changes a domain without this driver knowing when: its state, and a device the guest let go of (a live
# detach finishes when the guest says so, after the call returned) or that was plugged in
EVENTS = (libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED,
          libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED, libvirt.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVAL_FAILED)

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


@dataclasses.dataclass(frozen=True)
class Seen:
    """One domain on the host, as the index last read it."""
    name: str
    active: bool
    owner: dict[str, str] | None       # the fabriclab metadata of the domain as it runs; None: not fabriclab's
    spec: str = ""                     # the fingerprint its persistent definition carries (ours only)
    disks: tuple[tuple[int, str, str], ...] = ()   # (lun, identity, <disk> XML) of its SCSI disks (ours only)


def _events_loop() -> None:
    while True:
        try:
            libvirt.virEventRunDefaultImpl()
        except Exception:  # noqa: BLE001 - the loop outlives one bad callback (the relist covers what it missed)
            logging.getLogger("nodeagent").exception("libvirt event loop")
            time.sleep(1.0)


_EVENTS_LOCK = threading.Lock()
_events_running = False


def _start_events() -> None:
    """libvirt's default event loop, in one thread of this process (registered at import: before any
    connection is opened, as libvirt requires for the connections to deliver events)."""
    global _events_running
    with _EVENTS_LOCK:
        if not _events_running:
            threading.Thread(target=_events_loop, name="libvirt-events", daemon=True).start()
            _events_running = True


libvirt.virEventRegisterDefaultImpl()


class LibvirtDriver:
    """The host's domains are known from an index: every domain read once when the connection opens, then
    each one again only when libvirt tells of a change to it (EVENTS: defined, started, stopped, crashed,
    undefined, a device the guest let go of) or after this driver changed it. A pass of the agent reads the
    index, not libvirt; a lost connection (libvirtd restarted) reads everything again, and so does a relist
    every RELIST_S in case an event was ever lost. `on_change(uuid)` is called (in libvirt's event thread)
    for every event."""

    def __init__(self, uri: str, node: str, fabric_id: str, domain_type: str = "qemu",
                 on_change: Callable[[str], None] = lambda uuid: None) -> None:
        self.uri = uri
        self.node = node
        self.fabric_id = fabric_id
        self.hypervisor = domain_type
        self.on_change = on_change
        self._lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._reading = threading.Lock()
        self._seen: dict[str, Seen] = {}
        self._stale: set[str] = set()           # uuids to read again
        self._listed_at: float | None = None    # None: read every domain again
        self._callbacks: list[int] = []
        _start_events()
        self._conn = self._open()

    def _open(self) -> libvirt.virConnect:
        try:
            conn = libvirt.open(self.uri)
        except libvirt.libvirtError as exc:
            raise DriverError(f"cannot connect to libvirt at {self.uri}: {exc.get_error_message()}",
                              temporary=True) from None
        try:
            self._callbacks = [conn.domainEventRegisterAny(None, event, self._event, None) for event in EVENTS]
            conn.registerCloseCallback(self._closed, None)
        except libvirt.libvirtError:
            self._callbacks = []            # a driver without events: the relist keeps the index
        with self._index_lock:
            self._listed_at = None
        return conn

    def _event(self, _conn: libvirt.virConnect, dom: libvirt.virDomain, *_rest: object) -> None:
        uuid = dom.UUIDString()
        with self._index_lock:
            self._stale.add(uuid)
        self.on_change(uuid)

    def _closed(self, _conn: libvirt.virConnect, _reason: int, _opaque: object) -> None:
        with self._index_lock:
            self._listed_at = None
        self.on_change("")

    @property
    def conn(self) -> libvirt.virConnect:
        """The connection, opened again when libvirtd dropped it."""
        with self._lock:
            try:
                alive = bool(self._conn.isAlive())
            except libvirt.libvirtError:
                alive = False
            if not alive:
                self._close()
                self._conn = self._open()
            return self._conn

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        """The connection closed with its callbacks (which would keep it alive); errors of a dead one ignored."""
        for cb in self._callbacks:
            try:
                self._conn.domainEventDeregisterAny(cb)
            except libvirt.libvirtError:
                pass
        try:
            self._conn.unregisterCloseCallback()
        except libvirt.libvirtError:
            pass
        try:
            self._conn.close()
        except libvirt.libvirtError:
            pass

    def _call(self, what: str, fn: Callable[..., T], *args: object) -> T:
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise _error(what, exc) from None

    # ----- the index -----

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

    def _read(self, dom: libvirt.virDomain) -> Seen:
        owner = self._meta(dom)
        if not self._mine(owner):
            return Seen(dom.name(), bool(dom.isActive()), owner)
        disks = []
        desc = self._call("read definition", dom.XMLDesc, libvirt.VIR_DOMAIN_XML_INACTIVE)
        for disk in ET.fromstring(desc).iter("disk"):
            target, addr, src = disk.find("target"), disk.find("address"), disk.find("source")
            if target is not None and target.get("bus") == "scsi" and addr is not None and \
                    disk.get("device", "disk") == "disk":           # a data disk, not the provisioning CD
                identity = (src.get("file") or src.get("dev") or src.get("name") or "") if src is not None else ""
                disks.append((int(addr.get("unit", "0")), identity, ET.tostring(disk).decode()))
        return Seen(dom.name(), bool(dom.isActive()), owner, (self._meta(dom, persistent=True) or {}).get("spec", ""),
                    tuple(sorted(disks)))

    def _index(self) -> dict[str, Seen]:
        """The host's domains by uuid, current: stale entries read again, or all of them at a relist."""
        with self._reading:         # the agent's pass and the diagnostics server's screenshots
            return self._current()

    def _current(self) -> dict[str, Seen]:
        conn = self.conn
        with self._index_lock:
            relist = self._listed_at is None or time.monotonic() - self._listed_at > RELIST_S
            stale, self._stale = self._stale, set()
            if relist:
                self._listed_at = time.monotonic()
        try:
            if relist:
                seen = {}
                for dom in self._call("list domains", conn.listAllDomains):
                    try:
                        seen[dom.UUIDString()] = self._read(dom)
                    except (libvirt.libvirtError, DriverError):
                        stale.add(dom.UUIDString())      # undefined while listed: read again
                self._seen = seen
            again = stale - (set() if not relist else set(self._seen))
            if again:
                seen = dict(self._seen)      # a new dict: one being iterated by another thread never changes
                for uuid in again:
                    self._refresh(conn, uuid, seen)
                self._seen = seen
        except BaseException:
            with self._index_lock:
                self._stale |= stale
                if relist:
                    self._listed_at = None
            raise
        return self._seen

    def _refresh(self, conn: libvirt.virConnect, uuid: str, seen: dict[str, Seen]) -> None:
        try:
            seen[uuid] = self._read(conn.lookupByUUIDString(uuid))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                raise _error("look up", exc) from None
            seen.pop(uuid, None)

    def _changed(self, uuid: str) -> None:
        """Read the domain again at the next look."""
        with self._index_lock:
            self._stale.add(uuid)

    @contextlib.contextmanager
    def _changing(self, uuid: str) -> Iterator[None]:
        """This driver changes the domain: read it again after the call (its event may come later, or never: a
        stopped domain's definition changes without one), whether the call succeeded or not."""
        try:
            yield
        finally:
            self._changed(uuid)

    def _ours(self, uuid: str) -> Seen | None:
        seen = self._index().get(uuid)
        return seen if seen is not None and self._mine(seen.owner) else None

    def _owned(self, uuid: str, what: str) -> libvirt.virDomain:
        if self._ours(uuid) is None:   # undefined under us (a fence, another agent's clean-up): look again
            raise DriverError(f"{what}: domain {uuid} is not defined on node {self.node}", temporary=True)
        try:
            return self.conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError as exc:
            self._changed(uuid)
            raise _error(what, exc) from None

    def instances(self) -> dict[str, Instance]:
        return {uuid: Instance(uuid, s.name, s.active) for uuid, s in self._index().items() if self._mine(s.owner)}

    def instance(self, uuid: str) -> Instance | None:
        seen = self._ours(uuid)
        return None if seen is None else Instance(uuid, seen.name, seen.active)

    def holder(self, uuid: str) -> str:
        """Only a lab whose nodes share one libvirtd sees another holder: a VM moving between nodes waits for
        the old one to let go."""
        seen = self._index().get(uuid)
        if seen is None or self._mine(seen.owner):
            return ""
        return f"node {seen.owner.get('node', '?')}" if seen.owner else "a domain fabriclab does not own"

    # ----- lifecycle -----

    def spawn(self, spec: VmSpec) -> SpawnResult:
        seen = self._ours(spec.uuid)
        fp = fingerprint(spec, self.hypervisor, self.fabric_id, self.node)
        if seen is not None and seen.spec == fp:
            return SpawnResult(Spawned.UNCHANGED)
        kept = None if seen is None else "".join(xml for _, _, xml in seen.disks)
        xml = domain_xml(spec, self.hypervisor, self.fabric_id, self.node, fp, kept_disks=kept)
        with self._changing(spec.uuid):
            self._call("define", self.conn.defineXML, xml)
        return SpawnResult(Spawned.DEFINED if seen is None else Spawned.REDEFINED, xml)

    def destroy(self, uuid: str) -> bool:
        if self._ours(uuid) is None:
            return False
        self.power_off(uuid)
        dom = self._owned(uuid, "undefine")
        with self._changing(uuid):
            try:
                dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_INVALID_ARG:   # a driver without NVRAM (test:///)
                    raise _error("undefine", exc) from None
                self._call("undefine", dom.undefine)
        return True

    def power_on(self, uuid: str) -> None:
        dom = self._owned(uuid, "start")
        if not self._index()[uuid].active:
            with self._changing(uuid):
                self._call("start", dom.create)

    def power_off(self, uuid: str) -> bool:
        seen = self._ours(uuid)
        if seen is None or not seen.active:
            return False
        dom = self._owned(uuid, "destroy")
        with self._changing(uuid):
            self._call("destroy", dom.destroy)
        return True

    # ----- data disks -----

    def data_disks(self, uuid: str) -> dict[int, str]:
        seen = self._ours(uuid)
        return {} if seen is None else {lun: identity for lun, identity, _ in seen.disks}

    def attach_disk(self, uuid: str, lun: int, disk: Disk) -> None:
        dom = self._owned(uuid, "attach disk")
        flags = self._affect(uuid)
        with self._changing(uuid):
            self._call("attach disk", dom.attachDeviceFlags, data_disk_xml(lun, disk), flags)

    def detach_disk(self, uuid: str, lun: int) -> None:
        dom = self._owned(uuid, "detach disk")
        found = [xml for n, _, xml in self._index()[uuid].disks if n == lun]
        if found:
            flags = self._affect(uuid)
            with self._changing(uuid):
                try:
                    dom.detachDeviceFlags(found[0], flags)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_DEVICE_MISSING:    # gone already: detached
                        raise _error("detach disk", exc) from None

    def _affect(self, uuid: str) -> int:
        """The definition, and the running domain when it runs (hot-plug)."""
        seen = self._index().get(uuid)
        return int(libvirt.VIR_DOMAIN_AFFECT_CONFIG) | (int(libvirt.VIR_DOMAIN_AFFECT_LIVE)
                                                        if seen is not None and seen.active else 0)

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
