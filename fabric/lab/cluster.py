"""`fabric cluster init|stop|status`: the control plane of a cluster whose node agents run on other hosts.

    fabric cluster init --address 192.0.2.10       on the control-plane host, as root
        makes the cluster CA, etcd's CA and every control-plane credential (fabric.lab.control_plane),
        the default image when the gallery has none, starts etcd and the controller (with systemd when it
        runs and deploy/install.sh installed the units; else as processes it remembers by pid, like the
        lab), writes the admin's credential where the CLI finds it (~/.fabriclab/credentials.json), and
        prints a join command with a one-time token for the first node.
    fabric cluster add-controller --address B --name hb --out FILE
                                                   on a control-plane host: announces an etcd member for host
                                                   B and writes a bundle (the CA keys, B's certificates) for it
    fabric cluster join-controller --bundle FILE   on host B: its etcd member and a controller
    fabric cluster stop | status                   the programs `init` started (by their pid files)

Again on a running cluster, `init` changes nothing that fits and prints a new token.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from fabric.cli import output
from fabric.cli.client import USER_CREDENTIAL, CliError, bad_option, duration
from fabric.enrollment import Enrollment
from fabric.files import PRIVATE, PRIVATE_DIR, PRIVATE_EXEC, SHARED, TRAVERSE_DIR, ensure_dir, make_parent, write_atomic
from fabric.gallery import DEFAULT_IMAGE
from fabric.lab.control_plane import ControlPlaneHost
from fabric.lab.etcd import EtcdCa, Member
from fabric.lab.lab import ensure_image
from fabric.lab.processes import Processes
from fabric.store import StoreUnavailable
from fabric.pki import CONTROLLERS, Authority, Credential, Identity, key_pem, load_key

DEFAULT_DIR = Path("/var/lib/fabriclab/cluster")
CONFIG_DIR = Path("/etc/fabriclab")
UNITS = ("fabriclab-etcd.service", "fabriclab-controller.service")
MEMBER_ADD_WAIT_S = 60.0


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
    cp.members = _members(_config(a.dir)) or [cp.member]
    try:
        image = ensure_image(a.dir / "gallery", a.image)
        cp.start_etcd()
        cp.start_controller(a.dir / "gallery", a.location)
    except RuntimeError as exc:
        raise CliError({"code": "ClusterStartFailed", "message": str(exc)}) from None
    admin = a.admin_credential.expanduser()
    make_parent(admin)
    cp.admin_credential(admin)
    _write_config(a.dir, cp, a.location, image)
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


def _config(folder: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((folder / "cluster.json").read_text())
        return data
    except (OSError, ValueError):
        return {}


def _members(cfg: dict[str, Any]) -> list[Member]:
    return [Member(**m) for m in cfg.get("members", [])]


def _write_config(folder: Path, cp: ControlPlaneHost, location: str, image: str) -> None:
    """What `add-controller` and `status` read: addresses and ports, no secret."""
    write_atomic(folder / "cluster.json", json.dumps({
        "address": cp.address, "controller": cp.api, "join": cp.join_address, "etcd": cp.etcd_url,
        "etcd_port": cp.member.client_port, "controller_port": cp.controller_port, "name": cp.name,
        "location": location, "image": image, "members": [dataclasses.asdict(m) for m in cp.members]},
        indent=2) + "\n", SHARED)


def _add_controller(a: argparse.Namespace) -> int:
    """On a control-plane host: a bundle for another host to run an etcd member and a controller of this
    cluster (announced to etcd now: start it soon, etcd waits for it to count it in its quorum)."""
    cfg = _config(a.dir)
    if not cfg:
        raise CliError({"code": "NoControlPlane", "message": f"no control plane in {a.dir}: run `fabric cluster "
                                                             f"init` there first"})
    cp = ControlPlaneHost(a.dir, Processes(a.dir), cfg["address"], cfg["etcd_port"], cfg["controller_port"],
                          name=cfg["name"])
    cp.members = _members(cfg)
    new = Member(a.name, a.address, a.etcd_port, a.etcd_port + 1)
    if any(m.name == new.name or m.client_url == new.client_url for m in cp.members):
        raise bad_option("name", f"--name/--address: {a.name} or {a.address} is a member already")
    etcd_ca = EtcdCa(cp.pki / "etcd")
    etcd_ca.member_files(new)
    member = Credential(controller="", ca=etcd_ca.ca.cert_pem.decode(),
                        certificate=(etcd_ca.folder / f"{new.name}.pem").read_text(),
                        key=(etcd_ca.folder / f"{new.name}.key").read_text())
    ca = cp.cluster_ca()
    api = f"{a.address}:{a.controller_port}"
    bundle = {"name": new.name, "controller_port": a.controller_port, "location": cfg.get("location", "local"),
              "members": [dataclasses.asdict(m) for m in [*cp.members, new]],
              "cluster_ca": {"certificate": ca.cert_pem.decode(), "key": key_pem(ca.key).decode()},
              "etcd_ca": {"certificate": etcd_ca.ca.cert_pem.decode(), "key": key_pem(etcd_ca.ca.key).decode()},
              "etcd_member": dataclasses.asdict(member),
              "controller": dataclasses.asdict(ca.credential(Identity(f"controller:{new.name}", CONTROLLERS), api,
                                                             (a.address, "localhost")))}
    store = cp.store()
    deadline = time.monotonic() + MEMBER_ADD_WAIT_S
    try:
        while True:           # etcd refuses while the last member added has not caught up (its quorum at stake)
            try:
                store.add_member(new.peer_url)
                break
            except StoreUnavailable as exc:
                if time.monotonic() > deadline:
                    raise CliError({"code": "EtcdUnavailable", "message": f"{exc}; no member added"}) from None
                time.sleep(1.0)
    finally:
        store.close()
    make_parent(a.out)
    write_atomic(a.out, json.dumps(bundle, indent=1) + "\n", PRIVATE)
    cp.members = [*cp.members, new]
    _write_config(a.dir, cp, cfg.get("location", "local"), cfg.get("image", ""))
    print(f"etcd member {new.name} ({new.peer_url}) announced; its bundle is {a.out} (it holds the cluster's CA "
          f"keys: copy it to {a.address} as root only, and remove it once used). There:\n"
          f"  sudo fabric cluster join-controller --bundle FILE")
    return 0


def _join_controller(a: argparse.Namespace) -> int:
    """On a new control-plane host: this host's etcd member and controller, from the bundle."""
    try:
        b = json.loads(a.bundle.read_text())
        members = [Member(**m) for m in b["members"]]
        me = next(m for m in members if m.name == b["name"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        raise bad_option("bundle", f"--bundle: not a bundle of `fabric cluster add-controller` ({exc})") from None
    ensure_dir(a.dir, TRAVERSE_DIR)
    pki = ensure_dir(a.dir / "pki", PRIVATE_DIR)
    Authority(b["cluster_ca"]["certificate"].encode(), load_key(b["cluster_ca"]["key"].encode())).save(pki)
    Authority(b["etcd_ca"]["certificate"].encode(), load_key(b["etcd_ca"]["key"].encode())).save(
        ensure_dir(pki / "etcd", PRIVATE_DIR))
    Credential(**b["etcd_member"]).save_pem(pki / "etcd", me.name)
    Credential(**b["controller"]).save(pki / "controller.json")
    cp = ControlPlaneHost(a.dir, Processes(a.dir), me.host, me.client_port, b["controller_port"], name=me.name)
    cp.members = members
    try:
        image = ensure_image(a.dir / "gallery", DEFAULT_IMAGE)
        cp.start_etcd(state="existing")
        cp.start_controller(a.dir / "gallery", b["location"])
    except RuntimeError as exc:
        raise CliError({"code": "ClusterStartFailed", "message": str(exc)}) from None
    _write_config(a.dir, cp, b["location"], image)
    print(f"etcd member {me.name} and controller {cp.api} up in {a.dir}; etcd members: {cp.etcd_url}")
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
    p = cluster.add_parser("add-controller", parents=[common, where],
                           help="a bundle for another host to run an etcd member and a controller")
    p.add_argument("--address", required=True, help="the other host's IP address")
    p.add_argument("--name", required=True, help="its controller's and etcd member's name")
    p.add_argument("--etcd-port", type=int, default=2379)
    p.add_argument("--controller-port", type=int, default=7450)
    p.add_argument("--out", type=Path, required=True, help="where to write the bundle (0600)")
    p.set_defaults(fn=_add_controller, local=True)
    p = cluster.add_parser("join-controller", parents=[common, where],
                           help="run an etcd member and a controller here, from add-controller's bundle")
    p.add_argument("--bundle", type=Path, required=True)
    p.set_defaults(fn=_join_controller, local=True)
    cluster.add_parser("stop", parents=[common, where]).set_defaults(fn=_stop, local=True)
    cluster.add_parser("status", parents=[common, where]).set_defaults(fn=_status, local=True)
