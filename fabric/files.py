"""Files on the fabric's hosts: replaced whole, private by default, logs bounded.

Files replaced whole: a reader sees the old content or the new, never half of one.
Each write goes to a temporary file of its own (a unique name beside the target:
two writers of one path never share it), made with the file's final mode, then
renamed over the target. Tenant data and secrets are written 0600 by default;
pass `mode` for what other users (dnsmasq after it drops root) must read.

Folders: PRIVATE_DIR (0700) for what only the fabric's processes open;
TRAVERSE_DIR (0711) for the folders on the path from / to a file that another
user opens by its name: libvirt runs qemu as its own user (`libvirt-qemu` on
Debian), chowns a domain's disk images to it when the domain starts, and qemu
then opens them by path, so every folder above an OS disk, a data disk or a
resource disk must let that user through (0700 fails: "Cannot access storage
file ... as uid:64055"); dnsmasq, as `nobody`, reads its hosts files the same
way. 0711 lets anyone through but no one list: every file below is 0600 (or
public, like the gallery's images), and the names that matter are not
guessable (blob bodies carry a random etag). A group instead (chgrp
libvirt-qemu, 0710) would hide even a file's existence, but ties the fabric to
the user and group libvirt is configured with (qemu.conf), which it does not
own; 0711 works with any.

Logs: a file reaching LOG_MAX_BYTES is rotated to NAME.1 … NAME.{LOG_BACKUPS}
(the oldest dropped). `log_to` sets up a process's own logging so (and sends its
stdout and stderr to the same file, so that a crash traceback lands there too);
`rotate` serves logs opened anew at each start (the lab's process logs) and,
in place, logs another process keeps open (dnsmasq's).
"""
from __future__ import annotations

import logging
import logging.handlers
import os
import shutil
import sys
import tempfile
from io import TextIOWrapper
from pathlib import Path

PRIVATE = 0o600     # tenant data and secrets: root (the fabric's processes) only
SHARED = 0o644      # files a service reads after dropping its privileges
PRIVATE_EXEC = 0o700   # a program only root runs (a unit's command line, written by fabric cluster init)
PRIVATE_DIR = 0o700     # folders only the fabric's processes open
TRAVERSE_DIR = 0o711    # folders above a file another user (qemu, dnsmasq) opens by name: no listing
LOG_MAX_BYTES = 10 * 1024 * 1024    # one log file, before it is rotated
LOG_BACKUPS = 3                     # rotated files kept beside it: a log takes at most 40 MiB


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


def make_parent(path: Path) -> None:
    """The folder a file the user named goes in: made PRIVATE_DIR when missing, left as it is when it exists
    (never tightened: it may be /tmp or a home folder others use)."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)


def ensure_dir(path: Path, mode: int = PRIVATE_DIR) -> Path:
    """`path` as a folder of `mode`: made (missing parents as `mkdir -p` makes them), or tightened when an
    earlier run made it with a wider mode."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def private_opener(path: str, flags: int) -> int:
    """For `open(path, mode, opener=private_opener)`: the file is made 0600, or tightened to 0600 when an
    earlier run made it with a wider mode (a log opened for appending)."""
    fd = os.open(path, flags, PRIVATE)
    os.fchmod(fd, PRIVATE)
    return fd


def rotate(path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS, in_place: bool = False) -> bool:
    """When `path` has reached max_bytes: NAME.1 … NAME.{backups-1} move up by one (NAME.{backups} is
    dropped) and `path` becomes NAME.1, so that the next writer starts a new file. True when it rotated.

    in_place: `path` is copied to NAME.1 (0600) and truncated instead, for a writer that keeps it open
    with O_APPEND and could not make it again (dnsmasq writes its log as `nobody` in a folder of root's);
    what it writes between the copy and the truncation is lost."""
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    for i in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{i}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{i + 1}"))
    first = path.with_name(f"{path.name}.1")
    if backups > 0 and in_place:
        with open(path, "rb") as src, open(first, "wb", opener=private_opener) as dst:
            shutil.copyfileobj(src, dst)
    elif backups > 0:
        os.replace(path, first)
    if in_place or backups == 0:
        os.truncate(path, 0)
    return True


class BoundedLog(logging.handlers.RotatingFileHandler):
    """A process's log file: 0600, rotated by `rotate` before a record would take it past max_bytes.

    With capture_std the process's stdout and stderr (descriptors 1 and 2) point at the current file, and
    follow it at each rotation: what escapes logging (a crash traceback, a thread's unhandled exception, a
    library's own message) lands in the same bounded log. Such writes are not counted before they happen:
    the current file may pass max_bytes by what was written past logging since its last record."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES, backups: int = LOG_BACKUPS,
                 capture_std: bool = False) -> None:
        self.capture_std = capture_std
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")

    def _open(self) -> TextIOWrapper:
        fd = private_opener(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        if self.capture_std:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(fd, 1)
            os.dup2(fd, 2)
        return os.fdopen(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:  # noqa: N802 - logging's name
        if self.stream:
            self.stream.close()
        rotate(Path(self.baseFilename), 0, self.backupCount)
        self.stream = self._open()


def log_to(path: Path | None, fmt: str, level: int = logging.INFO, max_bytes: int = LOG_MAX_BYTES,
           backups: int = LOG_BACKUPS) -> None:
    """The process's logging: into `path`, bounded, with the process's stdout and stderr (BoundedLog), or to
    stderr when `path` is None (run by hand)."""
    handler: logging.Handler = (BoundedLog(path, max_bytes, backups, capture_std=True) if path is not None
                                else logging.StreamHandler())
    logging.basicConfig(level=level, format=fmt, handlers=[handler])
