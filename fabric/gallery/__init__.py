"""The image gallery: `publisher:offer:sku:version` over a folder of built images.

Layout: GALLERY/{publisher}/{offer}/{sku}/{version}/image.json (+ the files it
names). A version folder is complete when image.json exists (the builder
renames it into place as its last step). `latest` resolves to the highest
version, compared numerically part by part.

Each file of a version is published with its sha256 (`digest`, kept beside it in FILE.sha256 with the size
and time it was computed for): nodes fetch the files they boot from the controller's HTTPS endpoint and
check them against it (`file_for` says which files a request may name).
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from fabric.core.errors import ArmError, invalid
from fabric.files import SHARED, write_atomic
from fabric.model import ImageRecord

DEFAULT_IMAGE = "fabriclab:busybox:lab:latest"
DEFAULT_VERSION = "1.0.0"
VERSION_FORMAT = re.compile(r"^\d+\.\d+\.\d+$")
NAME_FORMAT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
# the images a lab builds itself: the default one (busybox, seconds) and a Debian 12 cloud image provisioned by
# its own cloud-init and waagent (debootstrap from this host's Debian mirror, a few minutes; root)
BUILDERS = {("fabriclab", "busybox", "lab"): IMAGES_DIR / "busybox-lab" / "build.sh",
            ("fabriclab", "debian", "12"): IMAGES_DIR / "debian-12" / "build.sh"}


def publish_blank(root: Path, version: str = DEFAULT_VERSION) -> None:
    """fabriclab:busybox:lab:VERSION as an empty 16 MiB VHD and placeholder kernel files: what tests and
    benchmarks make OS disk overlays over and place VMs from, never booted."""
    d = root / "fabriclab" / "busybox" / "lab" / version
    d.mkdir(parents=True, exist_ok=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "vpc", str(d / "disk.vhd"), "16M"], check=True)
    (d / "vmlinuz").write_bytes(b"a kernel " + version.encode())
    (d / "initrd.img").write_bytes(b"an initrd " + version.encode())
    (d / "image.json").write_text(json.dumps({"disk": "disk.vhd", "diskFormat": "vpc", "kernel": "vmlinuz",
                                              "initrd": "initrd.img", "cmdline": "console=ttyS0",
                                              "bootMarker": "fabriclab-guest: reached user space"}))


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def parse_urn(urn: str) -> tuple[str, str, str, str]:
    parts = (urn or "").split(":")
    if len(parts) != 4 or not all(NAME_FORMAT.match(p) for p in parts):
        raise invalid("storageProfile.imageReference",
                      "an image is PUBLISHER:OFFER:SKU:VERSION, VERSION a.b.c or 'latest'")
    version = parts[3]
    if version.lower() != "latest" and not VERSION_FORMAT.match(version):
        raise invalid("storageProfile.imageReference.version", "a version is a.b.c (digits) or 'latest'")
    return parts[0], parts[1], parts[2], version


class Gallery:
    def __init__(self, root: Path) -> None:
        self.root = root

    def meta(self, publisher: str, offer: str, sku: str, version: str) -> dict[str, Any] | None:
        """A version's image.json, or None for a version that is not there (or not complete)."""
        try:
            meta = json.loads((self.root / publisher / offer / sku / version / "image.json").read_text())
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def published(self, publisher: str, offer: str, sku: str) -> list[tuple[str, dict[str, Any]]]:
        """Each published version with its image.json, lowest first (a deleted one is gone): one read of each."""
        if not all(NAME_FORMAT.match(p) for p in (publisher, offer, sku)):
            return []
        sku_dir = self.root / publisher / offer / sku
        if not sku_dir.is_dir():
            return []
        found = []
        for d in sku_dir.iterdir():
            meta = self.meta(publisher, offer, sku, d.name) if VERSION_FORMAT.match(d.name) else None
            if meta is not None and not meta.get("deleted"):
                found.append((d.name, meta))
        return sorted(found, key=lambda vm: _version_key(vm[0]))

    def versions(self, publisher: str, offer: str, sku: str) -> list[str]:
        """The published versions, lowest first."""
        return [v for v, _ in self.published(publisher, offer, sku)]

    def resolve(self, urn: str) -> ImageRecord:
        """The image version a create uses; ImageNotFound / ImageVersionNotFound otherwise."""
        publisher, offer, sku, version = parse_urn(urn)
        published = dict(self.published(publisher, offer, sku))
        versions = list(published)
        if not versions:
            raise ArmError("ImageNotFound",
                           f"The platform image '{publisher}:{offer}:{sku}' is not available in the gallery.",
                           "storageProfile.imageReference")
        latest = [v for v in versions if not published[v].get("excludeFromLatest")]
        if version.lower() == "latest" and not latest:
            raise ArmError("ImageVersionNotFound",
                           f"The platform image '{publisher}:{offer}:{sku}:latest' is not available: every version "
                           f"is excluded from latest. Versions: {', '.join(versions)}.",
                           "storageProfile.imageReference.version")
        exact = latest[-1] if version.lower() == "latest" else version
        if exact not in published:
            raise ArmError("ImageVersionNotFound",
                           f"The platform image '{publisher}:{offer}:{sku}:{version}' is not available (a template "
                           f"that pins a version fails once it is deleted; 'latest' moves on). Versions: "
                           f"{', '.join(versions)}.", "storageProfile.imageReference.version")
        folder = self.root / publisher / offer / sku / exact
        meta = published[exact]
        kernel = folder / meta["kernel"] if meta.get("kernel") else None
        initrd = folder / meta["initrd"] if meta.get("initrd") else None
        return ImageRecord(publisher=publisher, offer=offer, sku=sku, version=version, exact_version=exact,
                           disk=str(folder / meta["disk"]), disk_format=meta["diskFormat"],
                           kernel=str(kernel or ""), initrd=str(initrd or ""), cmdline=meta.get("cmdline", ""),
                           boot_marker=meta.get("bootMarker", ""), kernel_sha256=digest(kernel) if kernel else "",
                           initrd_sha256=digest(initrd) if initrd else "")

    def images(self, publisher: str = "", offer: str = "", sku: str = "", every_version: bool = False
               ) -> list[dict[str, Any]]:
        """The gallery as `vm image list` shows it: each SKU at its latest version, or `every_version`."""
        out = []
        for sku_dir in sorted(self.root.glob("*/*/*")):
            p, o, s = sku_dir.relative_to(self.root).parts
            if any(want and want.lower() != have.lower() for want, have in ((publisher, p), (offer, o), (sku, s))):
                continue
            published = self.published(p, o, s)
            chosen = published if every_version else \
                [vm for vm in published if not vm[1].get("excludeFromLatest")][-1:]
            for v, meta in chosen:
                out.append({"architecture": "x64", "publisher": p, "offer": o, "sku": s, "version": v,
                            "urn": f"{p}:{o}:{s}:{v}", "osType": meta.get("osType", "Linux"),
                            "hyperVGeneration": meta.get("hyperVGeneration", "V1"),
                            "excludeFromLatest": bool(meta.get("excludeFromLatest")),
                            "boot": "firmware" if not meta.get("kernel") else "direct kernel",
                            "diskFormat": meta.get("diskFormat", ""), "sha256": meta.get("sha256", "")})
        return out

    def file_for(self, publisher: str, offer: str, sku: str, version: str, name: str) -> Path | None:
        """A file of a published version, by the name its image.json gives it; None for anything else."""
        if not all(NAME_FORMAT.match(p) for p in (publisher, offer, sku, version, name)):
            return None
        folder = self.root / publisher / offer / sku / version
        meta = self.meta(publisher, offer, sku, version)
        if meta is None:
            return None
        files = {meta.get(k) for k in ("disk", "kernel", "initrd")} - {"", None}
        return folder / name if name in files and (folder / name).is_file() else None

    def build_default(self, version: str = DEFAULT_VERSION) -> Path:
        """Build fabriclab:busybox:lab:VERSION when missing; returns its folder."""
        return self.build(("fabriclab", "busybox", "lab"), version)

    def build(self, image: tuple[str, str, str], version: str) -> Path:
        """Build one of BUILDERS' images as VERSION when missing; returns its folder."""
        script = BUILDERS[image]
        subprocess.run(["bash", str(script), str(self.root), version, source_hash(script.parent)], check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return self.root.joinpath(*image, version)

    def built_from(self, publisher: str, offer: str, sku: str, version: str) -> str:
        """The source hash a built version records ("" for images built before it was recorded)."""
        return str((self.meta(publisher, offer, sku, version) or {}).get("sourceHash", ""))


def digest(path: Path) -> str:
    """The file's sha256 (hex), from FILE.sha256 while the file's size and time are those it was computed for;
    "" for a file that is not there."""
    try:
        st = path.stat()
    except OSError:
        return ""
    stamp = f"{st.st_size} {st.st_mtime_ns}"
    side = path.with_name(path.name + ".sha256")
    try:
        known, known_stamp = side.read_text().split("\n", 1)
        if known_stamp.strip() == stamp:
            return known
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    write_atomic(side, f"{h.hexdigest()}\n{stamp}\n", SHARED)
    return h.hexdigest()


def source_hash(folder: Path) -> str:
    """What an image is built from (every file's path, mode and content), to tell a stale image from a
    current one."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(folder)}\0{f.stat().st_mode & 0o777:o}\0".encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_source_hash(image: tuple[str, str, str] = ("fabriclab", "busybox", "lab")) -> str:
    return source_hash(BUILDERS[image].parent)
