"""Images users bring, through the CLI as they run it: a disk with a partition table imported as a gallery version
(VHD, VHDX or qcow2, stored with its sha256), listed in the reference's shape, resolved by `latest` unless
excluded from it, unpublished by a delete that leaves VMs made from it alone; and every bad file refused by
name with nothing written."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabric.model import VmRecord
from fabric.store import keys
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api, register_node


def fabric(api: Api, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fabric.cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, "FABRIC_CONTROLLER": api.address}, timeout=120)


def disk(tmp: Path, name: str, fmt: str, head: bytes = b"", size: str = "8M", mkfs: bool = False) -> Path:
    """A disk image of `fmt` whose first bytes are `head` (a partition table) or an ext4 filesystem."""
    raw = tmp / f"{name}.raw"
    subprocess.run(["truncate", "-s", size, str(raw)], check=True)
    if mkfs:
        subprocess.run(["mkfs.ext4", "-q", "-F", str(raw)], check=True)
    with open(raw, "r+b") as f:
        f.write(head)
    if fmt == "raw":
        return raw
    out = tmp / f"{name}.{fmt}"
    subprocess.run(["qemu-img", "convert", "-q", "-f", "raw", "-O", fmt, str(raw), str(out)], check=True)
    return out


MBR = b"\0" * 446 + bytes([0x80, 0, 2, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little") + \
    (14336).to_bytes(4, "little") + b"\0" * 48 + b"\x55\xaa"


def import_(api: Api, path: Path, version: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return fabric(api, "image", "import", "--publisher", "Contoso", "--offer", "lab-linux", "--sku", "1",
                  "--version", version, "--file", str(path), *extra)


def gallery_files(api: Api) -> list[str]:
    """Every file and folder of the gallery but its (kept) staging folder and lock: an upload left there shows."""
    return sorted(str(p.relative_to(api.compute.gallery.root)) for p in api.compute.gallery.root.rglob("*")
                  if str(p.relative_to(api.compute.gallery.root)) not in (".imports", ".imports/lock"))


@pytest.fixture
def group(api: Api) -> Api:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", memory_mb=16384)
    return api


def test_an_imported_disk_is_listed_resolved_excluded_and_unpublished(group: Api, tmp_path: Path) -> None:
    api = group
    for version, fmt in (("1.0.0", "vpc"), ("1.1.0", "qcow2"), ("2.0.0", "vhdx")):
        r = import_(api, disk(tmp_path, version, fmt, MBR), version)
        assert r.returncode == 0, r.stderr
        shown = json.loads(r.stdout)
        assert shown["urn"] == f"Contoso:lab-linux:1:{version}" and shown["boot"] == "firmware"
        assert shown["diskFormat"] == fmt and len(shown["sha256"]) == 64
    listed = json.loads(fabric(api, "vm", "image", "list", "--publisher", "contoso").stdout)
    assert listed == [{"architecture": "x64", "offer": "lab-linux", "publisher": "Contoso", "sku": "1",
                       "urn": "Contoso:lab-linux:1:2.0.0", "version": "2.0.0", "osType": "Linux",
                       "hyperVGeneration": "V1", "boot": "firmware", "diskFormat": "vhdx",
                       "sha256": listed[0]["sha256"], "excludeFromLatest": False}]
    every = json.loads(fabric(api, "vm", "image", "list", "--all", "--offer", "lab-linux").stdout)
    assert [i["version"] for i in every] == ["1.0.0", "1.1.0", "2.0.0"]
    table = fabric(api, "vm", "image", "list", "-o", "table").stdout
    assert "Contoso:lab-linux:1:2.0.0" in table and "fabriclab:busybox:lab" in table

    def create(name: str, urn: str) -> subprocess.CompletedProcess[str]:
        return fabric(api, "vm", "create", "-g", "RG", "-n", name, "--image", urn, "--size", "Lab_A0", "--no-wait")

    def image_of(name: str) -> str:
        vm = api.store.get(keys.vm("RG", name), VmRecord)
        assert vm is not None
        return vm.value.image.exact_version

    assert create("pinned", "Contoso:lab-linux:1:2.0.0").returncode == 0
    assert create("latest1", "Contoso:lab-linux:1:latest").returncode == 0 and image_of("latest1") == "2.0.0"
    r = fabric(api, "image", "update", "--urn", "Contoso:lab-linux:1:2.0.0", "--exclude-from-latest", "true")
    assert r.returncode == 0 and json.loads(r.stdout)["excludeFromLatest"] is True
    assert create("latest2", "Contoso:lab-linux:1:latest").returncode == 0 and image_of("latest2") == "1.1.0"

    assert fabric(api, "image", "delete", "--urn", "Contoso:lab-linux:1:2.0.0").returncode == 0
    r = create("again", "Contoso:lab-linux:1:2.0.0")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["code"] == "ImageVersionNotFound"
    assert "Versions: 1.0.0, 1.1.0" in err["message"]
    assert [i["version"] for i in json.loads(fabric(api, "vm", "image", "list", "--all").stdout)
            if i["offer"] == "lab-linux"] == ["1.0.0", "1.1.0"]
    # the VM made from the deleted version is untouched, its OS disk's backing file still there
    pinned = api.store.get(keys.vm("RG", "pinned"), VmRecord)
    assert pinned is not None and Path(pinned.value.image.disk).is_file()
    # a version is never published twice, not even after its delete
    r = import_(api, disk(tmp_path, "again", "qcow2", MBR), "2.0.0")
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["code"] == "Conflict"


def test_bad_files_are_refused_by_name_and_nothing_is_written(group: Api, tmp_path: Path) -> None:
    api = group
    before = gallery_files(api)
    text = tmp_path / "notes.txt"
    text.write_text("not a disk\n" * 1000)
    truncated = disk(tmp_path, "cut", "vpc", MBR)
    os.truncate(truncated, truncated.stat().st_size - 4096)
    cut_qcow = tmp_path / "cut.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(cut_qcow), "64M"], check=True)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 8M", str(cut_qcow)], capture_output=True, check=True)
    os.truncate(cut_qcow, cut_qcow.stat().st_size // 2)
    huge = tmp_path / "huge.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(huge), "2T"], check=True)
    backed = tmp_path / "backed.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(backed)],
                   check=True)
    cases = [(text, "a VHD, VHDX or qcow2 disk image"),
             (disk(tmp_path, "raw", "raw", MBR), "this file is raw data"),
             (truncated, "truncated"),
             (cut_qcow, "the image is"),
             (huge, "a virtual size of at most"),
             (backed, "names a backing or data file"),
             (disk(tmp_path, "fs", "qcow2", mkfs=True), "a bare filesystem"),
             (disk(tmp_path, "blank", "vpc"), "a partition table (MBR or GPT) at its start: none found")]
    for path, rule in cases:
        r = import_(api, path, "3.0.0")
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        err = json.loads(r.stderr)["error"]
        assert err["target"] == "file" and rule in err["message"], (path.name, err)
    r = import_(api, disk(tmp_path, "ok", "qcow2", MBR), "3.0", )
    assert json.loads(r.stderr)["error"]["target"] == "version"
    r = import_(api, disk(tmp_path, "ok2", "qcow2", MBR), "3.0.0", "--hyper-v-generation", "V2")
    assert json.loads(r.stderr)["error"]["target"] == "hyperVGeneration"
    assert gallery_files(api) == before


def test_a_blob_of_this_fabric_is_imported_by_its_url(group: Api, tmp_path: Path) -> None:
    api = group
    api.storage.create_account("RG", "images1")
    api.storage.create_container("images1", "vhds")
    api.storage.put_blob("images1", "vhds", "lab.qcow2", [disk(tmp_path, "blob", "qcow2", MBR).read_bytes()])
    for version, url in (("1.0.0", api.storage.url("images1", "vhds", "lab.qcow2")),
                         ("1.0.1", api.storage.guest_url("images1", "vhds", "lab.qcow2"))):
        r = fabric(api, "image", "import", "--publisher", "Contoso", "--offer", "from-blob", "--sku", "1",
                   "--version", version, "--source", url)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["urn"] == f"Contoso:from-blob:1:{version}"
    before = gallery_files(api)
    for url, code, target in (("http://elsewhere.example/images1/vhds/lab.qcow2", "InvalidParameter", "sourceBlobUrl"),
                              (api.storage.url("images1", "vhds", "gone.qcow2"), "BlobNotFound", None)):
        r = fabric(api, "image", "import", "--publisher", "Contoso", "--offer", "from-blob", "--sku", "1",
                   "--version", "2.0.0", "--source", url)
        err = json.loads(r.stderr)["error"]
        assert r.returncode == 1 and err["code"] == code and (target is None or err["target"] == target), err
    r = fabric(api, "image", "import", "--publisher", "Contoso", "--offer", "from-blob", "--sku", "1", "--version",
               "2.0.0", "--source", api.storage.url("images1", "vhds", "lab.qcow2"), "--file", str(tmp_path))
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["target"] == "file"
    assert gallery_files(api) == before
