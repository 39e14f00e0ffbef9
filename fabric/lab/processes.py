"""Processes the lab starts: detached, logged, remembered by pid file.

The lab stops only the processes it started: a pid is signalled only when its
pid file exists and /proc/PID/cmdline still holds the command the lab ran
(so a recycled pid is never signalled).

Logs: each process's stdout and stderr go to logs/NAME.log (0600, folder 0700),
rotated at each start once it reaches LOG_MAX_BYTES. The controller and the node
agents are also given `--log-file` with the same path: they rotate it while they
run and keep their stdout and stderr on the current file (fabric.files.log_to),
so a crash traceback lands in it. etcd (3.4 cannot rotate its own log) is bounded
at each start only; it logs little once it runs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from fabric.files import PRIVATE_DIR, ensure_dir, private_opener, rotate, write_atomic

STOP_GRACE_S = 15.0


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [p.decode(errors="replace") for p in raw.split(b"\0") if p]


class Processes:
    def __init__(self, root: Path) -> None:
        self.pids = root / "pids"
        self.logs = root / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of a running process the lab started under `name`, else None."""
        try:
            pid, marker = (self.pids / f"{name}.pid").read_text().split("\n", 1)
        except (FileNotFoundError, ValueError):
            return None
        cmd = _cmdline(int(pid))
        return int(pid) if cmd and marker.strip() in " ".join(cmd) else None

    def start(self, name: str, argv: list[str], marker: str) -> int:
        """Start argv detached unless already running; `marker` must appear in its command line."""
        running = self.pid(name)
        if running:
            return running
        ensure_dir(self.pids, PRIVATE_DIR)
        ensure_dir(self.logs, PRIVATE_DIR)
        rotate(self.log_path(name))
        with open(self.log_path(name), "ab", opener=private_opener) as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        write_atomic(self.pids / f"{name}.pid", f"{proc.pid}\n{marker}")
        return proc.pid

    def alive(self, name: str) -> bool:
        return self.pid(name) is not None

    def stop(self, name: str, grace_s: float = STOP_GRACE_S) -> bool:
        """SIGTERM, then SIGKILL after grace_s. True when a process was stopped."""
        pid = self.pid(name)
        if pid is None:
            (self.pids / f"{name}.pid").unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self.pid(name):
            _reap(pid)
            time.sleep(0.05)
        if self.pid(name):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid)
        (self.pids / f"{name}.pid").unlink(missing_ok=True)
        return True

    def kill(self, name: str) -> None:
        """SIGKILL (for fault tests): the pid file stays, as after a crash."""
        pid = self.pid(name)
        if pid:
            os.kill(pid, signal.SIGKILL)
            _wait_gone(pid)


def pid_alive(pid: int) -> bool:
    """Whether the process still holds what it had. Its cmdline empties early in its exit, before its sockets
    close; its main thread is a zombie while its other threads still exit, holding the files they share. Only
    a zombie with no other thread left (or no process) has let go of everything, its ports too."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X") or threads != [str(pid)]


def _wait_gone(pid: int) -> None:
    while pid_alive(pid):
        _reap(pid)
        time.sleep(0.02)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
