"""OS disk overlays and node-local resource disks.

The OS disk is a qcow2 overlay whose backing file is the gallery VHD (format
`vpc`), never a copy. Files appear atomically: created under a temporary name
in the same folder, then renamed, so a killed agent leaves no half-made disk
under the real name (a stray `.tmp-*` is removed on the next attempt).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

QEMU_IMG_TIMEOUT_S = 60


class DiskError(Exception):
    pass


def _run(args: list[str]) -> str:
    try:
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise DiskError(f"{' '.join(args[:2])}: {exc.stderr.strip()}") from None
    except FileNotFoundError:
        raise DiskError(f"{args[0]} is not installed (qemu-utils)") from None
    return out.stdout


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp-{os.getpid()}-{path.name}")


def _clear_stale(path: Path) -> None:
    for stale in path.parent.glob(f".tmp-*-{path.name}"):
        stale.unlink(missing_ok=True)


def ensure_overlay(path: Path, backing: str, backing_format: str) -> bool:
    """Create the overlay if missing. True when this call created it."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    tmp = _tmp(path)
    _run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", backing_format, "-b", backing, str(tmp)])
    os.replace(tmp, path)
    return True


def backing_chain(path: Path) -> str:
    return _run(["qemu-img", "info", "--backing-chain", "-U", str(path)]).strip()


def ensure_resource_disk(path: Path, size_mb: int) -> bool:
    """A sparse raw file of the size's resourceDiskSizeInMB; True when created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    tmp = _tmp(path)
    with open(tmp, "wb") as f:
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
