"""A real lab (etcd, controller, two node agents, libvirt, qemu) for end-to-end tests."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fabric.hostinfo import free_port
from fabric.lab.lab import Lab
from fabric.store import Store
from tests.conftest import require

E2E_ROOT = Path("/var/lib/fabriclab")
EXTENSION_TIMEOUT_S = 20       # short, so that a hanging extension command is killed within the test


def _libvirt_ok() -> bool:
    if shutil.which("virsh") is None or shutil.which("qemu-system-x86_64") is None:
        return False
    r = subprocess.run(["virsh", "-c", "qemu:///system", "version"], capture_output=True, timeout=30)
    return r.returncode == 0


class LabHandle:
    def __init__(self, root: Path, etcd_port: int, controller_port: int) -> None:
        self.root = root
        self.etcd_port = etcd_port
        self.controller_port = controller_port
        self.lab = Lab(root)
        self.env = {**os.environ, "FABRIC_LAB_DIR": str(root)}
        self.env.pop("FABRIC_CONTROLLER", None)
        self.env.pop("FABRIC_CREDENTIALS", None)        # the lab's own admin credential, found by default

    def up(self) -> dict[str, Any]:
        return self.lab.up(2, "fabriclab:busybox:lab:latest", "auto", self.etcd_port, self.controller_port, "local",
                           extension_timeout_s=EXTENSION_TIMEOUT_S)

    def fabric(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([sys.executable, "-m", "fabric.cli.main", *args], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"fabric {' '.join(args)} failed:\n{r.stderr}")
        return r

    def json(self, *args: str) -> Any:
        return json.loads(self.fabric(*args).stdout)

    def os_disk_bodies(self, vm_id: str) -> list[Path]:
        """The files holding this VM's OS disk blob (its body) in the controller's blob folder."""
        return sorted(self.root.glob(f"controller/blobs/*/vhds/*{vm_id.replace('-', '')}*"))

    def store(self) -> Store:
        return self.lab.store()


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    require(shutil.which("etcd") is not None, "etcd (Debian etcd-server)")
    require(_libvirt_ok(), "libvirtd answering on qemu:///system, with qemu-system-x86_64")
    require(any(Path("/boot").glob("vmlinuz-*-cloud-amd64")), "the guest kernel (linux-image-cloud-amd64)")
    root = E2E_ROOT / f"test-{os.getpid()}"
    ports = free_port(span=6)                     # etcd client and peer; the controller API, data plane, join, TLS data plane
    h = LabHandle(root, ports, ports + 2)
    try:
        h.up()
        h.fabric("group", "create", "-n", "E2E", "-l", "local")
        yield h
    finally:
        h.lab.down(purge=True)
