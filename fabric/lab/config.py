"""Where the local lab lives and what it records about itself (lab.json)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fabric.files import SHARED, TRAVERSE_DIR, ensure_dir, write_atomic

# Under /var/lib so that libvirt's qemu user can reach disks (make_lab_dir).
DEFAULT_LAB_DIR = Path("/var/lib/fabriclab/lab")
ADMIN_CREDENTIAL = "admin.json"     # the lab's admin credential, 0600 (fabric.pki)


def lab_dir() -> Path:
    return Path(os.environ.get("FABRIC_LAB_DIR", DEFAULT_LAB_DIR))


def make_lab_dir(root: Path) -> None:
    """The lab's folder and its `nodes` folder, TRAVERSE_DIR (made, or tightened from an earlier run's 0755):
    qemu goes through them to disks, dnsmasq to its hosts files, a user's CLI to lab.json (SHARED); nobody
    lists them (see fabric.files)."""
    ensure_dir(root, TRAVERSE_DIR)
    ensure_dir(root / "nodes", TRAVERSE_DIR)


def read_lab(root: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((root / "lab.json").read_text())
        return data
    except (FileNotFoundError, ValueError):
        return None


def write_lab(root: Path, data: dict[str, Any]) -> None:
    write_atomic(root / "lab.json", json.dumps(data, indent=2) + "\n", SHARED)     # addresses only, no secret
