"""Files the network services read: replaced whole, never seen half-written."""
from __future__ import annotations

import os
from pathlib import Path


def write_if_changed(path: Path, text: str) -> bool:
    """Replace path's content atomically (temp file + rename) when it differs; True when it changed."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True
