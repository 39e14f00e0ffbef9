"""Tenant data, secrets and logs on the hosts are the fabric's alone: another local user reads none of them.

Made as the fabric makes them — a blob uploaded through the storage provider, an OS disk (qemu-img overlay),
a resource disk and a boot record by the node agent's code, a process log by the lab — under folders an earlier
run left 0755, then read as user `nobody`: every file and every folder listing is refused, while the public
gallery image and lab.json (addresses only) stay readable, and root reads everything.
"""
from __future__ import annotations

import dataclasses
import glob
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.controller.main import make_state_dir
from fabric.files import PRIVATE, PRIVATE_DIR, TRAVERSE_DIR
from fabric.lab.config import make_lab_dir, write_lab
from fabric.lab.processes import Processes
from fabric.model import ResourceGroupRecord, now
from fabric.storage import disk_blobs
from fabric.storage.provider import StorageConfig, StorageProvider
from fabric.store import Store, keys
from nodeagent import resource_disks
from nodeagent.console import BootRecord, Consoles
from nodeagent.hypervisor import DirectBoot, VmSpec
from nodeagent.hypervisor.domain_xml import domain_xml
from nodeagent.main import make_state_dir as make_node_state_dir
from nodeagent.storage_backends import Disk
from tests.conftest import require
from tests.integration.conftest import publish_image

OTHER_USER = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
SECRET = "tenant-secret-7f3a"
RESOURCE_DISK_MB = 8
DOMAIN_MEMORY_MB = 128
LIBVIRT_URI = "qemu:///system"


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTHER_USER, *argv], capture_output=True, text=True, timeout=30)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def base() -> Iterator[Path]:
    """A folder every user may enter (unlike pytest's own 0700 tmp_path), so that only the fabric's modes
    stand between `nobody` and the files."""
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "root and setpriv (to read as nobody)")
    d = Path(tempfile.mkdtemp(prefix="fabriclab-modes-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


@dataclasses.dataclass(frozen=True)
class Made:
    lab: Path
    gallery_disk: Path
    body: Path            # a block blob's body
    os_disk: Path         # a qcow2 overlay over gallery_disk
    resource: Path        # a resource disk
    boot: Path            # a boot record
    console: Path
    log: Path             # a process log
    pid: Path


@pytest.fixture
def made(store: Store, base: Path) -> Made:
    """The files of one VM and its lab, made by the fabric's own code under folders an earlier run left 0755."""
    lab = base / "lab"
    node = lab / "nodes" / "node-1"
    for old in (lab / "controller" / "blobs", lab / "logs", lab / "pids", node / "console", node / "boot",
                node / "resource-disks"):
        old.mkdir(parents=True, mode=0o755)
        old.chmod(0o755)
    (lab / "logs" / "tenant.log").write_text("an old log\n")
    (lab / "logs" / "tenant.log").chmod(0o644)

    # the lab: its folder, lab.json, the gallery, a process log
    make_lab_dir(lab)
    write_lab(lab, {"controller": "127.0.0.1:7450"})
    publish_image(lab / "gallery")
    procs = Processes(lab)
    procs.start("tenant", [sys.executable, "-c", f"print('{SECRET}')"], marker=SECRET)
    log = procs.log_path("tenant")
    deadline = time.monotonic() + 30
    while SECRET not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)

    # the controller: a block blob uploaded through the provider, an OS disk made by qemu-img
    store.put(keys.resource_group("RG"), ResourceGroupRecord(name="RG", location="local", created=now()))
    provider = StorageProvider(store, StorageConfig(make_state_dir(lab / "controller"), "local",
                                                    "http://127.0.0.1:1"))
    provider.create_account("RG", "tenantacct")
    provider.create_container("tenantacct", "private")
    body = provider.body_path(provider.put_blob("tenantacct", "private", "secret.txt", [SECRET.encode()]))
    account = disk_blobs.ensure_vm_storage(provider, "sub", "RG", "tenantacct")
    gallery_disk = lab / "gallery" / "fabriclab" / "busybox" / "lab" / "1.0.0" / "disk.vhd"
    os_disk = disk_blobs.prepare_os_disk(provider, account, "vm1-os.vhd", str(gallery_disk), "vpc", "vm-id",
                                         "/subscriptions/sub/resourceGroups/RG/vms/vm1").path

    # the node agent: its state folder, a resource disk, a boot record, a console log (virtlogd makes it 0600;
    # here 0644, to show the folder alone keeps it)
    make_node_state_dir(node)
    resource = node / "resource-disks" / "vm-id.raw"
    resource_disks.ensure_resource_disk(resource, RESOURCE_DISK_MB)
    consoles = Consoles(node)
    consoles.save_boot("vm-id", BootRecord(generation=1, offset=0))
    console = consoles.log_path("vm-id")
    console.write_text(f"login: {SECRET}\n")
    console.chmod(0o644)
    return Made(lab, gallery_disk, body, os_disk, resource, consoles.boots / "vm-id.json", console, log,
                procs.pids / "tenant.pid")


def test_nobody_reads_no_tenant_file_and_lists_no_folder(made: Made) -> None:
    lab, node = made.lab, made.lab / "nodes" / "node-1"
    body, os_disk, resource, boot, console = made.body, made.os_disk, made.resource, made.boot, made.console
    files = [body, os_disk, resource, boot, console, made.log, made.pid]
    folders = {lab: TRAVERSE_DIR, lab / "controller": TRAVERSE_DIR, lab / "controller" / "blobs": TRAVERSE_DIR,
               body.parent.parent: TRAVERSE_DIR, body.parent: TRAVERSE_DIR, os_disk.parent: TRAVERSE_DIR,
               lab / "nodes": TRAVERSE_DIR, node: TRAVERSE_DIR, resource.parent: TRAVERSE_DIR,
               console.parent: PRIVATE_DIR, boot.parent: PRIVATE_DIR, lab / "logs": PRIVATE_DIR,
               lab / "pids": PRIVATE_DIR}
    assert {str(f): mode(f) for f in files if f != console} == {str(f): PRIVATE for f in files if f != console}
    assert {str(d): mode(d) for d in folders} == {str(d): m for d, m in folders.items()}

    for f in files:
        assert subprocess.run(["cat", str(f)], capture_output=True).returncode == 0, f    # root reads them
        r = as_nobody("cat", str(f))
        assert r.returncode != 0 and "Permission denied" in r.stderr, f
    for d in folders:
        r = as_nobody("ls", str(d))
        assert r.returncode != 0 and "Permission denied" in r.stderr, d
    # what is public stays readable through the same folders: the test is not passing on a closed door above
    assert as_nobody("cat", str(lab / "lab.json")).returncode == 0
    assert as_nobody("head", "-c", "1", str(made.gallery_disk)).returncode == 0


def test_qemu_still_opens_the_private_disks_through_the_folders(made: Made) -> None:
    """libvirt chowns a domain's disks to its qemu user, which opens them by path: through TRAVERSE_DIR folders
    it can, where 0700 ones fail ("Cannot access storage file ... as uid:64055"). The console folder is private:
    virtlogd (root) writes the console, not qemu."""
    kernels = sorted(glob.glob("/boot/vmlinuz-*"))
    require(shutil.which("virsh") is not None and bool(kernels), "libvirt (virsh) and a kernel in /boot")
    probe = subprocess.run(["virsh", "-c", LIBVIRT_URI, "version"], capture_output=True, text=True, timeout=30)
    require(probe.returncode == 0, f"a running libvirtd ({probe.stderr.strip()})")
    kernel = made.gallery_disk.with_name("vmlinuz")
    shutil.copy(kernels[-1], kernel)
    kernel.chmod(0o644)
    name = f"fabriclab-modes-{os.getpid()}"
    spec = VmSpec(uuid=str(uuid.uuid4()), name=name, resource_group="RG", vm_name="vm1", cores=1,
                  memory_mb=DOMAIN_MEMORY_MB, boot=DirectBoot(str(kernel), "", "console=ttyS0"),
                  os_disk=Disk("file", str(made.os_disk)), resource_disk=Disk("file", str(made.resource), "raw"),
                  console_log=str(made.console))
    xml = made.lab / "domain.xml"
    xml.write_text(domain_xml(spec, "qemu", "test-file-modes", "modes"))
    r = subprocess.run(["virsh", "-c", LIBVIRT_URI, "create", str(xml)], capture_output=True, text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        state = subprocess.run(["virsh", "-c", LIBVIRT_URI, "domstate", name], capture_output=True, text=True)
        assert state.stdout.strip() == "running"
    finally:
        if r.returncode == 0:
            subprocess.run(["virsh", "-c", LIBVIRT_URI, "destroy", name], capture_output=True, timeout=60)
    assert {str(p): mode(p) for p in (made.os_disk, made.resource)} == {str(made.os_disk): PRIVATE,
                                                                        str(made.resource): PRIVATE}
