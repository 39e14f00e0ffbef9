"""Files replaced whole: a reader sees the old content or the new, never half of one.

Each write goes to a temporary file of its own (a unique name beside the target:
two writers of one path never share it), made with the file's final mode, then
renamed over the target. Tenant data and secrets are written 0600 by default;
pass `mode` for what other users (dnsmasq after it drops root) must read.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PRIVATE = 0o600     # tenant data and secrets: root (the fabric's processes) only
SHARED = 0o644      # files a service reads after dropping its privileges


def write_atomic(path: Path, text: str | bytes, mode: int = PRIVATE) -> None:
    """Replace path's content: a uniquely named temporary file beside it, renamed over it."""
    data = text.encode() if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, text: str, mode: int = PRIVATE) -> bool:
    """write_atomic when the content (or the mode) differs; True when the content changed."""
    try:
        same = path.read_text() == text
        if same and (path.stat().st_mode & 0o777) != mode:
            path.chmod(mode)
    except (OSError, ValueError):
        same = False
    if same:
        return False
    write_atomic(path, text, mode)
    return True
