"""Files replaced whole: a reader sees the old content or the new, never half of one."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Replace path's content: a temp file beside it, renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_if_changed(path: Path, text: str) -> bool:
    """write_atomic when the content differs; True when it changed."""
    if path.exists() and path.read_text() == text:
        return False
    write_atomic(path, text)
    return True
