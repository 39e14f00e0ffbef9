"""Where the local lab lives and what it records about itself (lab.json)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fabric.files import SHARED, write_atomic

# Under /var/lib so that libvirt's qemu user can reach disks and consoles.
DEFAULT_LAB_DIR = Path("/var/lib/fabriclab/lab")


def lab_dir() -> Path:
    return Path(os.environ.get("FABRIC_LAB_DIR", DEFAULT_LAB_DIR))


def read_lab(root: Path) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads((root / "lab.json").read_text())
        return data
    except (FileNotFoundError, ValueError):
        return None


def write_lab(root: Path, data: dict[str, Any]) -> None:
    write_atomic(root / "lab.json", json.dumps(data, indent=2) + "\n", SHARED)     # addresses only, no secret
