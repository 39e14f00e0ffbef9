"""Shared fixtures: real components, started by the tests themselves.

A missing component (etcd, libvirtd, qemu) is a failure under CI=true and a
skip with the reason elsewhere; never a silent pass.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.lab.etcd import Etcd
from fabric.store import Store

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(ok: bool, what: str) -> None:
    if ok:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing (CI must install and start it)")
    pytest.skip(f"{what} is missing")


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
