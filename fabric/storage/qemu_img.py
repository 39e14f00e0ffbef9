"""qemu-img, as the storage service uses it to make disk blob bodies."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

QEMU_IMG_TIMEOUT_S = 60


class QemuImgError(Exception):
    pass


def _run(args: list[str]) -> str:
    try:
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
    except subprocess.CalledProcessError as exc:
        raise QemuImgError(f"{' '.join(args[:2])}: {exc.stderr.strip()}") from None
    except FileNotFoundError:
        raise QemuImgError("qemu-img is not installed (Debian qemu-utils)") from None
    return out.stdout


def _created(args: list[str]) -> tuple[int, str]:
    """`qemu-img create`, one process: the virtual size in bytes and the line it printed ("Formatting 'X',
    fmt=qcow2 ... size=N backing_file=..."), which says what was made."""
    line = _run(args).strip()
    size = re.search(r"\bsize=(\d+)", line)
    if size is None:
        raise QemuImgError(f"qemu-img create printed no size: {line!r}")
    return int(size.group(1)), line


def create_overlay(path: Path, backing: str, backing_format: str) -> tuple[int, str]:
    """A qcow2 overlay whose backing file is `backing` (never a copy): its virtual size in bytes and what
    qemu-img said it made. `path` must not exist (the caller picks a fresh name)."""
    return _created(["qemu-img", "create", "-f", "qcow2", "-F", backing_format, "-b", backing, str(path)])


def create_empty(path: Path, size_bytes: int) -> tuple[int, str]:
    """An empty qcow2 disk of size_bytes (sparse: it grows as the guest writes): its size and what qemu-img
    said it made."""
    return _created(["qemu-img", "create", "-f", "qcow2", str(path), str(size_bytes)])


def chain_info(path: Path) -> list[dict[str, Any]]:
    """`qemu-img info` of the image and each image under it (force-share: it may be in use)."""
    out: list[dict[str, Any]] = json.loads(_run(["qemu-img", "info", "-U", "--backing-chain", "--output=json",
                                                 str(path)]))
    return out


def extents(path: Path) -> list[dict[str, Any]]:
    """`qemu-img map`: for each extent of the disk, the layer (depth) and offset holding it, or zeros."""
    out: list[dict[str, Any]] = json.loads(_run(["qemu-img", "map", "-U", "--output=json", str(path)]))
    return out
