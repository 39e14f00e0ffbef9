"""A real etcd member of its own, in a folder, on free loopback ports: for tests and benchmarks."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from fabric.hostinfo import free_port
from fabric.store import Store, StoreUnavailable

ETCD_START_TIMEOUT_S = 20.0


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
        deadline = time.monotonic() + ETCD_START_TIMEOUT_S
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
