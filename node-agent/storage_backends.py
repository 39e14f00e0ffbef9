"""How a node reaches a disk blob: the storage backend interface.

The controller hands the node a disk reference (`{"backend": NAME, ...}`); the
backend turns it into the libvirt <disk> source. The compute code knows
nothing else about where disks live, so that a Ceph RBD backend (libvirt's
`<disk type='network'><source protocol='rbd' name='pool/image'>`) is one more
class here.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Protocol
from xml.sax.saxutils import quoteattr


class BackendError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class DiskSource:
    disk_type: str      # libvirt <disk type=...>: "file", "network", "block"
    source_xml: str     # the <source .../> element
    driver_type: str    # "qcow2", "raw"
    identity: str       # what libvirt reports as the source's file or name


class StorageBackend(Protocol):
    def source(self, ref: dict[str, Any]) -> DiskSource: ...
    def check(self, ref: dict[str, Any]) -> None: ...


class LocalPathBackend:
    """Disk bodies on a path this node can open: one host, or a shared file system mounted on every host."""

    def source(self, ref: dict[str, Any]) -> DiskSource:
        return DiskSource("file", f"<source file={quoteattr(ref['path'])}/>", ref.get("format", "qcow2"), ref["path"])

    def check(self, ref: dict[str, Any]) -> None:
        if not os.path.exists(ref["path"]):
            raise BackendError(f"disk {ref.get('uri', '')} is not reachable from this node: "
                               f"{ref['path']} does not exist")


BACKENDS: dict[str, StorageBackend] = {"localpath": LocalPathBackend()}


def backend_for(ref: dict[str, Any]) -> StorageBackend:
    name = ref.get("backend", "")
    if name not in BACKENDS:
        raise BackendError(f"no storage backend '{name}' on this node (has: {', '.join(BACKENDS)})")
    return BACKENDS[name]
