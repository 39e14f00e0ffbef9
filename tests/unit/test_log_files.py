"""Logs the fabric writes are bounded (rotated) and private, and a crash traceback still lands in them."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from fabric.files import LOG_BACKUPS, LOG_MAX_BYTES, PRIVATE, rotate

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_limits_are_named() -> None:
    assert LOG_MAX_BYTES >= 1024 * 1024 and LOG_BACKUPS >= 1


def test_rotate_keeps_a_small_log_and_shifts_a_full_one(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    assert not rotate(log, max_bytes=10, backups=2)          # missing: nothing to do
    log.write_text("small")
    assert not rotate(log, max_bytes=10, backups=2) and log.read_text() == "small"
    for text in ("first full log", "second full log", "third full log"):
        log.write_text(text)
        assert rotate(log, max_bytes=10, backups=2)
        assert not log.exists()
    assert (tmp_path / "x.log.1").read_text() == "third full log"
    assert (tmp_path / "x.log.2").read_text() == "second full log"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.log.1", "x.log.2"]   # the oldest went


def test_rotate_in_place_for_a_writer_that_keeps_its_file_open(tmp_path: Path) -> None:
    log = tmp_path / "dnsmasq.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o660)   # as dnsmasq holds it
    os.write(fd, b"a full log\n")
    assert rotate(log, max_bytes=10, backups=2, in_place=True)
    os.write(fd, b"next\n")
    os.close(fd)
    assert log.read_text() == "next\n"                     # the same file, from its start again
    assert (tmp_path / "dnsmasq.log.1").read_text() == "a full log\n"
    assert mode(tmp_path / "dnsmasq.log.1") == PRIVATE


CHILD = textwrap.dedent("""
    import logging, sys
    from pathlib import Path
    from fabric.files import log_to
    log_to(Path(sys.argv[1]), "%(levelname)s %(message)s", max_bytes=4096, backups=2)
    for i in range(1000):
        logging.getLogger("t").info("line %04d %s", i, "x" * 60)
    print("printed to stdout", flush=True)
    raise SystemExit(undefined_name)
""")


def test_a_process_log_is_bounded_private_and_gets_the_crash(tmp_path: Path) -> None:
    log = tmp_path / "p.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)   # the lab's stdout, as a wide mode
    os.fchmod(fd, 0o644)
    r = subprocess.run([sys.executable, "-c", CHILD, str(log)], stdout=fd, stderr=fd, cwd=ROOT, timeout=60)
    os.close(fd)
    assert r.returncode == 1
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["p.log", "p.log.1", "p.log.2"]
    assert all(p.stat().st_size <= 4096 for p in files[1:])
    assert log.stat().st_size <= 4096 + 1024      # + what was written past logging since its last record
    assert all(mode(p) == PRIVATE for p in files)
    text = log.read_text()
    assert "line 0999" in text and "printed to stdout" in text
    assert "Traceback" in text and "NameError: name 'undefined_name' is not defined" in text
    assert "line 0000" not in "".join(p.read_text() for p in files)     # rotated away: bounded
