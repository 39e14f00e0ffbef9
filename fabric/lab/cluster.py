"""`fabric cluster init|stop|status`: the control plane of a cluster whose node agents run on other hosts.

    fabric cluster init --address 192.0.2.10       on the control-plane host, as root
        makes the cluster CA, etcd's CA and every control-plane credential (fabric.lab.control_plane),
        the default image when the gallery has none, starts etcd and the controller (with systemd when it
        runs and deploy/install.sh installed the units; else as processes it remembers by pid, like the
        lab), writes the admin's credential where the CLI finds it (~/.fabriclab/credentials.json), and
        prints a join command with a one-time token for the first node.
    fabric cluster stop | status                   the programs `init` started (by their pid files)

Again on a running cluster, `init` changes nothing that fits and prints a new token.
"""
from __future__ import annotations

import argparse
import json
import shlex
import socket
import subprocess
from pathlib import Path

from fabric.cli import output
from fabric.cli.client import USER_CREDENTIAL, CliError, bad_option, duration
from fabric.enrollment import Enrollment
from fabric.files import PRIVATE_EXEC, SHARED, TRAVERSE_DIR, ensure_dir, make_parent, write_atomic
from fabric.gallery import DEFAULT_IMAGE
from fabric.lab.control_plane import ControlPlaneHost
from fabric.lab.lab import ensure_image
from fabric.lab.processes import Processes

DEFAULT_DIR = Path("/var/lib/fabriclab/cluster")
CONFIG_DIR = Path("/etc/fabriclab")
UNITS = ("fabriclab-etcd.service", "fabriclab-controller.service")


def _systemd() -> bool:
    """systemd runs here and deploy/install.sh installed the control plane's units."""
    return Path("/run/systemd/system").is_dir() and all(
        subprocess.run(["systemctl", "cat", u], capture_output=True, check=False).returncode == 0 for u in UNITS)


def _host(a: argparse.Namespace) -> ControlPlaneHost:
    procs = Processes(a.dir)
    return ControlPlaneHost(a.dir, procs, a.address, a.etcd_port, a.controller_port, name=a.name,
                            launch=_start_unit if _systemd() else procs.start)


def _start_unit(name: str, argv: list[str], marker: str) -> None:
    """Under systemd: the same command line, kept as /etc/fabriclab/NAME.run for fabriclab-NAME.service
    (deploy/systemd), which restarts it when it fails."""
    ensure_dir(CONFIG_DIR, TRAVERSE_DIR)
    write_atomic(CONFIG_DIR / f"{name}.run", f"#!/bin/sh\n# written by fabric cluster init\nexec {shlex.join(argv)}\n",
                 PRIVATE_EXEC)
    subprocess.run(["systemctl", "enable", "--now", f"fabriclab-{name}.service"], check=True)


def _init(a: argparse.Namespace) -> int:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in a.address else socket.AF_INET, a.address)
    except OSError:
        raise bad_option("address", "--address: the IP address nodes and users reach this host at") from None
    ensure_dir(a.dir, TRAVERSE_DIR)
    cp = _host(a)
    try:
        image = ensure_image(a.dir / "gallery", a.image)
        cp.start_etcd()
        cp.start_controller(a.dir / "gallery", a.location)
    except RuntimeError as exc:
        raise CliError({"code": "ClusterStartFailed", "message": str(exc)}) from None
    admin = a.admin_credential.expanduser()
    make_parent(admin)
    cp.admin_credential(admin)
    write_atomic(a.dir / "cluster.json", json.dumps({
        "address": a.address, "controller": cp.api, "join": cp.join_address, "etcd": cp.etcd_url,
        "etcd_port": a.etcd_port, "controller_port": a.controller_port, "name": a.name, "image": image}, indent=2)
        + "\n", SHARED)
    store = cp.store()
    try:
        token, rec = Enrollment(store, cp.cluster_ca()).create_token(a.token_ttl, "fabric cluster init")
    finally:
        store.close()
    print(f"control plane up in {a.dir}: controller {cp.api} (join endpoint {cp.join_address}), etcd {cp.etcd_url}\n"
          f"cluster CA {cp.cluster_ca().fingerprint}\n"
          f"admin credential: {admin}"
          f"{' (the CLI reads it by default)' if admin == USER_CREDENTIAL.expanduser() else ' (FABRIC_CREDENTIALS=' + str(admin) + ' for the CLI)'}\n"
          f"join a node (token {rec.id}, one node, until {rec.expires}; more with `fabric node join-token create`):\n"
          f"  sudo fabric-node-agent join {cp.join_address} --token {token}")
    return 0


def _stop(a: argparse.Namespace) -> int:
    if _systemd():
        subprocess.run(["systemctl", "stop", *reversed(UNITS)], check=True)
        print(f"cluster stopped: {', '.join(reversed(UNITS))}")
        return 0
    procs = Processes(a.dir)
    stopped = [n for n in ("controller", "etcd") if procs.stop(n)]
    print(f"cluster stopped: {', '.join(stopped) or 'nothing (not running)'}")
    return 0


def _status(a: argparse.Namespace) -> int:
    if _systemd():
        rows = [[u, "-", subprocess.run(["systemctl", "is-active", u], capture_output=True, text=True,
                                        check=False).stdout.strip(), "journalctl -u " + u] for u in UNITS]
        print(output.table(rows, ["Component", "Pid", "State", "Log"]))
        return 0
    procs = Processes(a.dir)
    rows = [[n, str(procs.pid(n) or "-"), "running" if procs.alive(n) else "stopped", str(procs.log_path(n))]
            for n in ("etcd", "controller")]
    print(output.table(rows, ["Component", "Pid", "State", "Log"]))
    return 0


def add_cluster_commands(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    cluster = groups.add_parser("cluster", help="the control plane of a cluster on several hosts").add_subparsers(
        dest="cmd", required=True)
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the control plane's folder (%(default)s)")
    p = cluster.add_parser("init", parents=[common, where], help="start a cluster's control plane on this host")
    p.add_argument("--address", required=True, help="this host's IP address, which nodes and users reach")
    p.add_argument("--name", default=socket.gethostname().split(".")[0], help="the controller's name")
    p.add_argument("--etcd-port", type=int, default=2379)
    p.add_argument("--controller-port", type=int, default=7450, help="the API; +1 blob data plane, +2 join, +3 blob data plane over TLS")
    p.add_argument("--location", default="local")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="an image to have in the gallery (default %(default)s)")
    p.add_argument("--admin-credential", type=Path, default=USER_CREDENTIAL,
                   help="where to write the admin's credential (default %(default)s)")
    p.add_argument("--token-ttl", type=duration, default=3600, help="the first join token's lifetime (1h)")
    p.set_defaults(fn=_init, local=True)
    cluster.add_parser("stop", parents=[common, where]).set_defaults(fn=_stop, local=True)
    cluster.add_parser("status", parents=[common, where]).set_defaults(fn=_status, local=True)
