"""Bring your own image: a disk file imported into the gallery as PUBLISHER:OFFER:SKU:VERSION, and a version
unpublished again (deleted, or excluded from latest).

An imported image boots the way real images do, from its own bootloader through the VM's firmware
(generation V1: SeaBIOS). What is checked before anything is published, each refusal naming the field:
  - the format, as qemu-img reads it: VHD (vpc), VHDX or qcow2; raw data, or an image with a backing or
    external data file (it would read files of the controller's host), is refused;
  - the virtual size, at most MAX_IMAGE_BYTES;
  - that it is whole: qemu-img check (qcow2, VHDX), and no data extent past the end of the file (a VHD cut
    short);
  - a partition table (MBR or GPT) at its start: the disk a firmware boots. A bare filesystem has no
    bootloader to boot from.
The upload is written in a hidden folder of the gallery (.imports, kept) and renamed into place complete, with its sha256
(nodes and `vm image list` show it), so that a failed or refused import leaves nothing.

Deleting a version unpublishes it (`vm create` and `latest` no longer see it) and keeps its disk: the OS disks of
VMs made from it are overlays on that file, and they keep running, as the reference's VMs do.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fabric.core.errors import ArmError, exactly, invalid
from fabric.files import SHARED, write_atomic
from fabric.gallery import NAME_FORMAT, VERSION_FORMAT, Gallery, digest

MAX_IMAGE_BYTES = 1 << 40          # 1 TiB: the virtual size of an imported disk, as the reference's OS disks
FORMATS = {"vpc": "disk.vhd", "vhdx": "disk.vhdx", "qcow2": "disk.qcow2"}
FORMAT_NAMES = {"vpc": "VHD", "vhdx": "VHDX", "qcow2": "qcow2", "raw": "raw data (no disk image format)"}
HEAD_BYTES = 4096


def _name_checks(publisher: str, offer: str, sku: str, version: str) -> None:
    for field, value in (("publisher", publisher), ("offer", offer), ("sku", sku)):
        if not NAME_FORMAT.match(value or ""):
            raise invalid(field, "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if not VERSION_FORMAT.match(version or ""):
        raise invalid("version", "a version is a.b.c (digits)")


def check_request(gallery: Gallery, publisher: str, offer: str, sku: str, version: str, os_type: str,
                  generation: str, length: int) -> None:
    """Everything about an import that is known before its body: refused before a byte is written."""
    _name_checks(publisher, offer, sku, version)
    if os_type != "Linux":
        raise invalid("osType", "Linux (the guests this fabric runs)")
    if generation != "V1":
        raise invalid("hyperVGeneration", "V1 (BIOS boot through SeaBIOS); V2 (UEFI) is not offered by this fabric")
    if not 0 < length <= MAX_IMAGE_BYTES:
        raise invalid("contentLength", f"the file's size in bytes, 1 to {MAX_IMAGE_BYTES}")
    if (gallery.root / publisher / offer / sku / version).exists():
        raise ArmError("Conflict", f"Image version '{publisher}:{offer}:{sku}:{version}' already exists (also "
                                   f"after a delete: a version is never published twice). Import a new version.",
                       "version")


QEMU_IMG_TIMEOUT_S = 300


def _qemu_img(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=QEMU_IMG_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise invalid("file", f"qemu-img {args[0]} did not finish within {QEMU_IMG_TIMEOUT_S} s on this "
                              f"file") from None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise invalid("file", "qemu-img's description of the image could not be read") from None


def inspect(path: Path) -> dict[str, Any]:
    """qemu-img's view of an uploaded disk, refused (InvalidParameter 'file') when it is not one to publish."""
    r = _qemu_img("info", "--output=json", str(path))
    if r.returncode != 0:
        raise invalid("file", f"not a disk image qemu-img can read: {r.stderr.strip()[-300:]}")
    info: dict[str, Any] = _json(r.stdout)
    fmt = str(info.get("format", ""))
    if fmt not in FORMATS:
        raise invalid("file", f"a VHD, VHDX or qcow2 disk image; this file is {FORMAT_NAMES.get(fmt, fmt)} "
                              f"(a VHD cut short loses its footer and reads as raw data)")
    data_file = ((info.get("format-specific") or {}).get("data") or {}).get("data-file")
    if info.get("backing-filename") or info.get("full-backing-filename") or data_file:
        raise invalid("file", "a self-contained image: this one names a backing or data file")
    size = int(info.get("virtual-size", 0))
    if not 0 < size <= MAX_IMAGE_BYTES:
        raise invalid("file", f"a virtual size of at most {MAX_IMAGE_BYTES} bytes (1 TiB); this one is {size}")
    if fmt in ("qcow2", "vhdx"):
        c = _qemu_img("check", "-f", fmt, str(path))
        if c.returncode not in (0, 3):              # 3: leaked clusters only, harmless
            raise invalid("file", f"the image is damaged (qemu-img check): {(c.stdout + c.stderr).strip()[-300:]}")
    m = _qemu_img("map", "--output=json", "-f", fmt, str(path))
    if m.returncode != 0:
        raise invalid("file", f"the image cannot be read: {m.stderr.strip()[-300:]}")
    end = path.stat().st_size
    for extent in _json(m.stdout):
        if extent.get("data") and "offset" in extent and int(extent["offset"]) + int(extent["length"]) > end:
            raise invalid("file", f"the image is truncated: its data runs to byte "
                                  f"{int(extent['offset']) + int(extent['length'])} of a {end}-byte file")
    return info


def boot_sector(path: Path, fmt: str, work: Path) -> bytes:
    """The disk's first HEAD_BYTES as the guest sees them."""
    head = work / "head"
    r = _qemu_img("dd", "-f", fmt, "-O", "raw", f"bs={HEAD_BYTES}", "count=1", f"if={path}", f"of={head}")
    if r.returncode != 0:
        raise invalid("file", f"the image cannot be read: {r.stderr.strip()[-300:]}")
    data = head.read_bytes()
    head.unlink()
    return data


def check_bootable(head: bytes) -> str:
    """The partition table a firmware boots from (MBR or GPT), else refused."""
    if head[512:520] == b"EFI PART":
        return "GPT"
    if head[510:512] == b"\x55\xaa":
        return "MBR"
    if head[1080:1082] == b"\x53\xef" or head[:4] == b"XFSB":
        raise invalid("file", "a disk with a partition table (MBR or GPT) and a bootloader: this one is a bare "
                              "filesystem, which no firmware can boot")
    raise invalid("file", "a disk with a partition table (MBR or GPT) at its start: none found (not an OS disk)")


def import_version(gallery: Gallery, publisher: str, offer: str, sku: str, version: str, body: Iterable[bytes],
                   length: int, os_type: str = "Linux", generation: str = "V1",
                   exclude_from_latest: bool = False) -> dict[str, Any]:
    """Publish the uploaded disk as a new version; what `vm image list --all` shows of it."""
    check_request(gallery, publisher, offer, sku, version, os_type, generation, length)
    sku_dir = gallery.root / publisher / offer / sku
    staging = gallery.root / ".imports"
    staging.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{publisher}:{offer}:{sku}:{version}.", dir=staging))
    try:
        upload = work / "upload"
        with open(upload, "wb") as f:
            for chunk in exactly(length, iter(body)):
                f.write(chunk)
        info = inspect(upload)
        fmt = str(info["format"])
        table = check_bootable(boot_sector(upload, fmt, work))
        disk = work / FORMATS[fmt]
        upload.rename(disk)
        os.chmod(disk, 0o644)
        meta = {"disk": disk.name, "diskFormat": fmt, "diskSizeBytes": disk.stat().st_size,
                "virtualSizeBytes": int(info["virtual-size"]), "partitionTable": table, "kernel": "", "initrd": "",
                "cmdline": "", "bootMarker": "", "osType": os_type, "hyperVGeneration": generation,
                "excludeFromLatest": exclude_from_latest, "sha256": digest(disk), "imported": True}
        write_atomic(work / "image.json", json.dumps(meta, indent=1), SHARED)
        os.chmod(work, 0o755)
        sku_dir.mkdir(parents=True, exist_ok=True)
        try:
            work.rename(sku_dir / version)          # complete, or not there at all
        except OSError:
            raise ArmError("Conflict", f"Image version '{publisher}:{offer}:{sku}:{version}' already exists.",
                           "version") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return next(i for i in gallery.images(publisher, offer, sku, every_version=True) if i["version"] == version)


def _existing(gallery: Gallery, publisher: str, offer: str, sku: str, version: str) -> dict[str, Any]:
    _name_checks(publisher, offer, sku, version)
    meta = gallery.meta(publisher, offer, sku, version)
    if meta is None or meta.get("deleted"):
        held = gallery.versions(publisher, offer, sku)
        raise ArmError("ImageVersionNotFound", f"The image version '{publisher}:{offer}:{sku}:{version}' is not "
                                               f"in the gallery. Versions: {', '.join(held) or 'none'}.", "version")
    return meta


@contextlib.contextmanager
def _changing(gallery: Gallery) -> Iterator[None]:
    """One change of a version's image.json at a time (a read, then a write), across the controller's threads
    and processes: an exclude racing a delete would otherwise publish the deleted version again."""
    staging = gallery.root / ".imports"
    staging.mkdir(parents=True, exist_ok=True)
    with open(staging / "lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def set_exclude_from_latest(gallery: Gallery, publisher: str, offer: str, sku: str, version: str,
                            exclude: bool) -> dict[str, Any]:
    with _changing(gallery):
        meta = _existing(gallery, publisher, offer, sku, version)
        write_atomic(gallery.root / publisher / offer / sku / version / "image.json",
                     json.dumps({**meta, "excludeFromLatest": exclude}, indent=1), SHARED)
    return next(i for i in gallery.images(publisher, offer, sku, every_version=True) if i["version"] == version)


def delete_version(gallery: Gallery, publisher: str, offer: str, sku: str, version: str) -> None:
    """Unpublish: gone for `vm create`, `latest` and the list; its disk stays for the VMs made from it."""
    with _changing(gallery):
        meta = _existing(gallery, publisher, offer, sku, version)
        write_atomic(gallery.root / publisher / offer / sku / version / "image.json",
                     json.dumps({**meta, "deleted": True}, indent=1), SHARED)
