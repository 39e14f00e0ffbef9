"""Node-local resource (temporary) disks.

Files appear atomically: created under a temporary name in the same folder,
then renamed, so a killed agent leaves no half-made disk under the real name
(a stray `.tmp-*` is removed on the next attempt). A disk holds a tenant's
data: 0600 (libvirt chowns it to its qemu user while the domain runs), in a
folder qemu may pass through but no one list. OS disks are blobs of the
storage service, reached through `storage_backends`.
"""
from __future__ import annotations

import os
from pathlib import Path

from fabric.files import TRAVERSE_DIR, ensure_dir, private_opener


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


def _clear_stale(path: Path) -> None:
    for stale in path.parent.glob(f".tmp-*-{path.name}"):
        stale.unlink(missing_ok=True)


def ensure_resource_disk(path: Path, size_mb: int) -> bool:
    """A sparse raw file of the size's resourceDiskSizeInMB; True when created."""
    if path.exists():
        return False
    ensure_dir(path.parent, TRAVERSE_DIR)      # qemu opens the disk by path (see fabric.files)
    _clear_stale(path)
    tmp = _tmp(path)
    with open(tmp, "wb", opener=private_opener) as f:
        f.truncate(size_mb * 1024 * 1024)
    os.replace(tmp, path)
    return True


def remove(path: Path) -> bool:
    """Remove a disk file this agent made; True when something was removed."""
    _clear_stale(path)
    if path.exists():
        path.unlink()
        return True
    return False
