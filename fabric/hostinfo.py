"""Facts about the machine a process runs on."""
from __future__ import annotations

import socket


def host_memory_mb() -> int:
    """Physical memory in MiB, from /proc/meminfo (0 when it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a test's or a benchmark's own server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
