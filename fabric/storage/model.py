"""Storage records kept in etcd (blob bodies live on disk, named by the record)."""
from __future__ import annotations

import dataclasses
from typing import Any

from fabric.model import Record
from fabric.storage.leases import Lease

PUBLIC_ACCESS = ("off", "blob", "container")
MAX_BLOCK_BLOB_BYTES = 64 * 1024 * 1024   # the reference's largest Put Blob at version 2015-04-05 (64 MiB)
MAX_BLOCK_BYTES = 100 * 1024 * 1024       # its largest Put Block (before the 4000 MiB of later versions)
MAX_BLOCKS = 50000                        # its committed (and uncommitted) blocks per blob
MAX_COMMITTED_BLOB_BYTES = MAX_BLOCKS * MAX_BLOCK_BYTES    # a block blob made by Put Block List (4.77 TiB)


@dataclasses.dataclass(frozen=True, slots=True)
class StorageAccountRecord(Record):
    name: str
    resource_group: str
    location: str
    key1: str
    key2: str
    created: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class ContainerRecord(Record):
    account: str
    name: str
    public_access: str = "off"
    created: str = ""
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    etag: str = ""
    last_modified: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class BlobRecord(Record):
    account: str
    container: str
    name: str
    blob_type: str               # "BlockBlob" (files) or "PageBlob" (disks)
    size: int
    content_type: str
    content_md5: str             # Base64 of the MD5 of the body ("" for disks, whose body changes in place)
    etag: str
    last_modified: str
    body: str                    # file name under {blob root}/{account}/{container}/
    lease: dict[str, Any] = dataclasses.field(default_factory=dict)
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    copy: dict[str, str] = dataclasses.field(default_factory=dict)   # the Copy Blob that made it: id, source, ...

    def lease_value(self) -> Lease:
        return Lease(**self.lease) if self.lease else Lease()
