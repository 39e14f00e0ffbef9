"""The serial console log of each VM, and the boot marker in it.

Each start of a domain records where the log ended (its "boot record"), so
that "the guest reached user space" means the marker appeared after that
offset, in this boot, not in an earlier one. Boot records survive an agent
restart (small JSON files in the agent's state folder, written atomically).

A console holds what the guest prints (secrets too): the folder is PRIVATE_DIR.
qemu never opens the log: with libvirt's default `stdio_handler = "logd"`,
virtlogd (root) writes it, 0600, and rotates it (its max_size, 2 MiB, and
max_backups, 3). With `stdio_handler = "file"` qemu would open it by path and
the folder would need TRAVERSE_DIR.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from fabric.files import PRIVATE_DIR, ensure_dir, write_atomic

TAIL_READ_BYTES = 256 * 1024


@dataclasses.dataclass(frozen=True)
class BootRecord:
    generation: int
    offset: int
    booted: bool = False
    started: float = 0.0      # epoch seconds of this boot's start


class Consoles:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "console"
        self.boots = state_dir / "boot"
        ensure_dir(self.dir, PRIVATE_DIR)
        ensure_dir(self.boots, PRIVATE_DIR)

    def log_path(self, vm_id: str) -> Path:
        return self.dir / f"{vm_id}.log"

    def size(self, vm_id: str) -> int:
        try:
            return self.log_path(vm_id).stat().st_size
        except FileNotFoundError:
            return 0

    def boot(self, vm_id: str) -> BootRecord | None:
        try:
            return BootRecord(**json.loads((self.boots / f"{vm_id}.json").read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None

    def save_boot(self, vm_id: str, rec: BootRecord) -> None:
        write_atomic(self.boots / f"{vm_id}.json", json.dumps(dataclasses.asdict(rec)))

    def find_marker(self, vm_id: str, offset: int, marker: str) -> str | None:
        """The first console line holding marker after offset, or None."""
        try:
            with open(self.log_path(vm_id), "rb") as f:
                f.seek(offset)
                data = f.read().decode(errors="replace")
        except FileNotFoundError:
            return None
        for line in data.splitlines():
            if marker in line:
                return line.strip()
        return None

    def tail(self, vm_id: str, lines: int) -> str:
        try:
            with open(self.log_path(vm_id), "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL_READ_BYTES))
                data = f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(data.replace("\r", "").splitlines()[-lines:]) + "\n"

    def forget(self, vm_id: str) -> None:
        self.log_path(vm_id).unlink(missing_ok=True)
        (self.boots / f"{vm_id}.json").unlink(missing_ok=True)


class MarkerWatch:
    """The consoles of booting guests, each read only where it grew since the last look: which printed the boot
    marker (the agent then converges those VMs, instead of every VM while any guest boots)."""

    def __init__(self, consoles: Consoles) -> None:
        self.consoles = consoles
        self._at: dict[str, tuple[int, int, bytes, bytes]] = {}   # vm id -> (boot's offset, read up to, marker,
        #                                                                      the last bytes read)

    def __bool__(self) -> bool:
        return bool(self._at)

    def watch(self, vm_id: str, offset: int, marker: str) -> None:
        """From the boot's offset; a new boot (another offset) starts again."""
        if self._at.get(vm_id, (-1,))[0] != offset:
            self._at[vm_id] = (offset, offset, marker.encode(), b"")

    def keep(self, vm_ids: set[str]) -> None:
        self._at = {k: v for k, v in self._at.items() if k in vm_ids}

    def discard(self, vm_id: str) -> None:
        """No longer booting (stopped, deallocated, booted, failed): not watched."""
        self._at.pop(vm_id, None)

    def found(self) -> set[str]:
        """The watched VMs whose console now holds the marker (no longer watched)."""
        out = set()
        for vm_id, (start, offset, marker, tail) in list(self._at.items()):
            size = self.consoles.size(vm_id)
            if size < offset:                   # rotated: read the new file from its start
                offset, tail = 0, b""
            if size == offset:
                continue
            try:
                with open(self.consoles.log_path(vm_id), "rb") as f:
                    f.seek(offset)
                    data = tail + f.read(size - offset)
            except FileNotFoundError:
                continue
            if marker in data:
                out.add(vm_id)
                del self._at[vm_id]
            else:
                self._at[vm_id] = (start, size, marker, data[-len(marker):])
        return out
