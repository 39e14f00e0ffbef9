"""`fabric lab ...` commands (run locally, no controller needed)."""
from __future__ import annotations

import argparse
import json
import sys

from fabric.cli import output
from fabric.cli.client import CliError, bad_option
from fabric.gallery import DEFAULT_IMAGE
from fabric.lab.config import lab_dir
from fabric.lab.lab import DEFAULTS, Lab


def _up(a: argparse.Namespace) -> int:
    if a.nodes < 1 or a.nodes > 16:
        raise bad_option("nodes", "--nodes: 1 to 16")
    try:
        cfg = Lab(lab_dir()).up(a.nodes, a.image, a.hypervisor, a.etcd_port, a.controller_port, a.location)
    except RuntimeError as exc:
        raise CliError({"code": "LabStartFailed", "message": str(exc)}) from None
    if a.output == "json":
        json.dump(cfg, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"lab up in {lab_dir()}: controller {cfg['controller']}, etcd {cfg['etcd']}, "
              f"location '{cfg['location']}', image {cfg['image']}, nodes {', '.join(cfg['nodes'])}")
    return 0


def _down(a: argparse.Namespace) -> int:
    stopped = Lab(lab_dir()).down(a.purge)
    print(f"lab down: stopped {', '.join(stopped) or 'nothing (not running)'}"
          + (f"; removed {lab_dir()}" if a.purge else ""))
    return 0


def _status(a: argparse.Namespace) -> int:
    try:
        rows = Lab(lab_dir()).status()
    except PermissionError:
        raise CliError({"code": "AuthorizationFailed",
                        "message": f"{lab_dir()} is root's (its pid files and logs are private): "
                                   f"run `sudo fabric lab status`"}) from None
    if a.output == "json":
        json.dump([dict(zip(["name", "pid", "state", "log"], r)) for r in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(output.table(rows, ["Component", "Pid", "State", "Log"]))
    return 0


def add_lab_commands(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    lab = groups.add_parser("lab", help="the local lab").add_subparsers(dest="cmd", required=True)
    p = lab.add_parser("up", parents=[common])
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--image", default=DEFAULT_IMAGE, help="image to have in the gallery (default %(default)s)")
    p.add_argument("--hypervisor", choices=("auto", "kvm", "qemu"), default="auto")
    p.add_argument("--etcd-port", type=int, default=DEFAULTS["etcd_port"])
    p.add_argument("--controller-port", type=int, default=DEFAULTS["controller_port"])
    p.add_argument("--location", default=DEFAULTS["location"])
    p.set_defaults(fn=_up, local=True)
    p = lab.add_parser("down", parents=[common])
    p.add_argument("--purge", action="store_true", help="also remove the lab folder (etcd data, disks, images)")
    p.set_defaults(fn=_down, local=True)
    lab.add_parser("status", parents=[common]).set_defaults(fn=_status, local=True)
