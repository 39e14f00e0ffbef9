"""Shared fixtures: real components, started by the tests themselves.

A missing component (etcd, libvirtd, qemu) is a failure under CI=true and a
skip with the reason elsewhere; never a silent pass.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.store import Store, StoreUnavailable

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing (CI must install and start it)")
    pytest.skip(f"{what} is missing")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Etcd:
    """A real etcd member in a temporary folder, on free loopback ports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.peer = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer}"
        self.proc = subprocess.Popen(
            ["etcd", "--name", "t", "--data-dir", str(self.root / "data"), "--listen-client-urls", self.url,
             "--advertise-client-urls", self.url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
             peer, "--initial-cluster", f"t={peer}"],
            stdout=open(self.root / "etcd.log", "ab"), stderr=subprocess.STDOUT)
        store = Store(self.url)
        deadline = time.monotonic() + 20
        while True:
            try:
                store.get_raw("/ping")
                break
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    raise RuntimeError("etcd did not start") from None
                time.sleep(0.1)
        store.close()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="session")
def etcd_server() -> Iterator[Etcd]:
    require(shutil.which("etcd") is not None, "etcd (Debian etcd-server)")
    with tempfile.TemporaryDirectory(prefix="fabriclab-etcd-") as tmp:
        e = Etcd(Path(tmp))
        e.start()
        yield e
        e.stop()


@pytest.fixture
def store(etcd_server: Etcd) -> Iterator[Store]:
    """A store over the session's etcd, emptied of fabriclab keys before each test."""
    s = Store(etcd_server.url)
    s.delete_prefix("/fabriclab/")
    yield s
    s.close()
