"""One libvirt connection and the domains this node owns on it.

Ownership: a domain is this node's when its fabriclab metadata names this
node and this fabric. Nothing here lists, stops or removes any other domain.
"""
from __future__ import annotations

import dataclasses
import threading
import xml.etree.ElementTree as ET

import libvirt

from nodeagent.hypervisor.domain_xml import METADATA_NS

libvirt.registerErrorHandler(lambda *_: None, None)  # errors come back as exceptions, not stderr noise


class HypervisorError(Exception):
    """A libvirt call failed; the message is libvirt's."""


@dataclasses.dataclass(frozen=True)
class OwnedDomain:
    uuid: str
    name: str
    active: bool
    domain_type: str


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class Host:
    def __init__(self, uri: str, node: str, fabric_id: str) -> None:
        self.uri = uri
        self.node = node
        self.fabric_id = fabric_id
        self._lock = threading.Lock()
        try:
            self._conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"cannot connect to libvirt at {uri}: {exc.get_error_message()}") from None

    def close(self) -> None:
        self._conn.close()

    def domain_types(self) -> set[str]:
        caps = ET.fromstring(self._conn.getCapabilities())
        return {d.get("type", "") for d in caps.iter("domain")}

    def _owner(self, dom: libvirt.virDomain) -> dict[str, str] | None:
        try:
            raw = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
        except libvirt.libvirtError:
            return None
        return {_local(e.tag): (e.text or "") for e in ET.fromstring(raw)}

    def _mine(self, meta: dict[str, str] | None) -> bool:
        return bool(meta) and meta.get("node") == self.node and meta.get("fabric") == self.fabric_id  # type: ignore[union-attr]

    def owned(self) -> dict[str, OwnedDomain]:
        """uuid -> domain, for every domain whose metadata names this node."""
        out = {}
        for dom in self._conn.listAllDomains():
            meta = self._owner(dom)
            if not self._mine(meta):
                continue
            dtype = ET.fromstring(dom.XMLDesc()).get("type", "")
            out[dom.UUIDString()] = OwnedDomain(dom.UUIDString(), dom.name(), bool(dom.isActive()), dtype)
        return out

    def _lookup(self, uuid: str) -> libvirt.virDomain | None:
        try:
            dom = self._conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:
            return None
        meta = self._owner(dom)
        return dom if self._mine(meta) else None

    def holder(self, uuid: str) -> str:
        """Who else holds a domain with this UUID on this libvirtd ("" when nobody does, or we do). Only a lab
        whose nodes share one libvirtd sees this: a VM moving between nodes waits for the old one to let go."""
        try:
            dom = self._conn.lookupByUUIDString(uuid)
        except libvirt.libvirtError:
            return ""
        meta = self._owner(dom)
        if self._mine(meta):
            return ""
        return f"node {(meta or {}).get('node', '?')}" if meta else "a domain fabriclab does not own"

    def _call(self, what: str, fn: object, *args: object) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except libvirt.libvirtError as exc:
            raise HypervisorError(f"{what}: {exc.get_error_message()}") from None

    def define(self, xml: str) -> None:
        self._call("define", self._conn.defineXML, xml)

    def start(self, uuid: str) -> None:
        dom = self._lookup(uuid)
        if dom is None:
            raise HypervisorError(f"start: domain {uuid} is not defined on node {self.node}")
        if not dom.isActive():
            self._call("start", dom.create)

    def destroy(self, uuid: str) -> None:
        dom = self._lookup(uuid)
        if dom is not None and dom.isActive():
            self._call("destroy", dom.destroy)

    def undefine(self, uuid: str) -> None:
        dom = self._lookup(uuid)
        if dom is None:
            return
        if dom.isActive():
            self._call("destroy", dom.destroy)
        self._call("undefine", dom.undefineFlags, libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)

    def scsi_luns(self, uuid: str) -> dict[int, tuple[str, str]]:
        """LUN -> (the <disk> element, its source file or name) for the data disks of the domain's definition."""
        dom = self._lookup(uuid)
        if dom is None:
            return {}
        out = {}
        for disk in ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)).iter("disk"):
            target, addr, src = disk.find("target"), disk.find("address"), disk.find("source")
            if target is not None and target.get("bus") == "scsi" and addr is not None:
                source = (src.get("file") or src.get("name") or "") if src is not None else ""
                out[int(addr.get("unit", "0"))] = (ET.tostring(disk).decode(), source)
        return out

    def attach_device(self, uuid: str, xml: str) -> None:
        """Attach to the definition, and to the running domain when it runs (hot-plug)."""
        self._device("attach", uuid, xml)

    def detach_device(self, uuid: str, xml: str) -> None:
        self._device("detach", uuid, xml)

    def _device(self, verb: str, uuid: str, xml: str) -> None:
        dom = self._lookup(uuid)
        if dom is None:
            raise HypervisorError(f"{verb}: domain {uuid} is not defined on node {self.node}")
        flags = libvirt.VIR_DOMAIN_AFFECT_CONFIG | (libvirt.VIR_DOMAIN_AFFECT_LIVE if dom.isActive() else 0)
        fn = dom.attachDeviceFlags if verb == "attach" else dom.detachDeviceFlags
        self._call(f"{verb} device", fn, xml, flags)

    def xml(self, uuid: str, persistent: bool = False) -> str:
        """The domain's XML as it runs (or its persistent definition), "" when it is not defined."""
        dom = self._lookup(uuid)
        if dom is None:
            return ""
        return str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE if persistent else 0))
