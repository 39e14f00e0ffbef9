"""The node's image cache keeps a file no VM uses for a while after its last use, then evicts it."""
from __future__ import annotations

import os
from pathlib import Path

from fabric.pki import Authority, node_identity
from nodeagent.images import ImageCache


def test_an_unused_file_is_evicted_only_after_the_keep_time(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path, Authority.create("t").credential(node_identity("n"), ""), lambda: "", keep_s=600)
    for name in ("used", "recent", "old", "old.part"):
        (tmp_path / name).write_bytes(b"x")
    os.utime(tmp_path / "old", (1000, 1000))
    os.utime(tmp_path / "recent", (1000 + 500, 1000 + 500))
    os.utime(tmp_path / "used", (1000, 1000))
    gone = cache.evict({"used"}, now=1000 + 601)
    assert sorted(gone) == ["old", "old.part"]                      # a partial download no fetch writes goes too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent", "used"]
