"""`fabric cluster init` on this host's loopback, a node joining with the token it printed through
`fabric-node-agent join`, and init again on the running cluster: the same CA, a new token."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.hostinfo import free_port
from fabric.pki import Credential, node_identity
from tests.conftest import require


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[list[str]]:
    require(subprocess.run(["which", "etcd"], capture_output=True).returncode == 0, "etcd (Debian etcd-server)")
    ports = free_port(span=6)
    init = ["-m", "fabric.cli.main", "cluster", "init", "--address", "127.0.0.1", "--dir", str(tmp_path / "cp"),
            "--etcd-port", str(ports), "--controller-port", str(ports + 2), "--name", "ctl-a",
            "--admin-credential", str(tmp_path / "admin.json")]
    try:
        yield init
    finally:
        run("-m", "fabric.cli.main", "cluster", "stop", "--dir", str(tmp_path / "cp"))


def join_command(out: str) -> list[str]:
    line = out.strip().splitlines()[-1].split()
    assert line[:3] == ["sudo", "fabric-node-agent", "join"], out
    return line[3:]


def test_init_then_a_node_joins_with_the_printed_command(cluster: list[str], tmp_path: Path) -> None:
    first = run(*cluster)
    assert first.returncode == 0, first.stderr
    address, _, token = join_command(first.stdout)
    shared = tmp_path / "shared"                  # a folder others use (as /tmp): left as it is
    shared.mkdir()
    shared.chmod(0o1777)
    cred = shared / "node.json"
    joined = run("-m", "nodeagent.main", "join", address, "--token", token, "--name", "host-b",
                 "--credential", str(cred), "--no-start")
    assert joined.returncode == 0, joined.stderr
    assert Credential.load(cred).identity == node_identity("host-b") and oct(cred.stat().st_mode)[-3:] == "600"
    assert oct(shared.stat().st_mode)[-4:] == "1777"
    again = run("-m", "nodeagent.main", "join", address, "--token", token, "--name", "host-c",
                "--credential", str(tmp_path / "c.json"), "--no-start")
    assert again.returncode == 1 and "was already used, by node host-b" in again.stderr
    admin = {"FABRIC_CREDENTIALS": str(tmp_path / "admin.json")}
    nodes = json.loads(run("-m", "fabric.cli.main", "node", "list", env=admin).stdout)
    assert [(n["name"], n["state"]) for n in nodes] == [("host-b", "NotReady")]

    second = run(*cluster)
    assert second.returncode == 0, second.stderr
    assert first.stdout.splitlines()[1] == second.stdout.splitlines()[1]          # the same cluster CA
    assert join_command(second.stdout)[2] != token                                # a new token


def test_init_refuses_an_address_that_is_not_one(cluster: list[str]) -> None:
    bad = run(*[a if a != "127.0.0.1" else "not-an-address" for a in cluster])
    assert bad.returncode == 1 and "--address: the IP address" in bad.stderr
