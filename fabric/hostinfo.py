"""Facts about the machine a process runs on."""
from __future__ import annotations


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
