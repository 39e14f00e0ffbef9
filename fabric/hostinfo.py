"""Facts about the machine a process runs on."""
from __future__ import annotations

import os
import random
import socket
from pathlib import Path

FREE_PORT_FLOOR = 20000


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


def source_address(host: str) -> str:
    """The address this host sends from toward `host` (an IPv4 literal), by the routing table: a UDP socket
    connected, nothing sent. "" for a loopback destination or no route."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, 9))
            src = str(s.getsockname()[0])
    except OSError:
        return ""
    return "" if src.startswith("127.") else src


def _local_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(span: int = 1) -> int:
    """The first of `span` consecutive TCP ports on 127.0.0.1 that are free now (for a test's, a lab's or a
    benchmark's own servers; a lab uses a port and the next). They lie below the kernel's ephemeral range,
    where no outgoing connection takes its local port: a port from that range can be in use by one by the
    time the server binds it."""
    low, _ = _local_port_range()
    for _ in range(1000):
        base = random.randrange(FREE_PORT_FLOOR, low - span)
        socks = [socket.socket() for _ in range(span)]
        try:
            for i, s in enumerate(socks):
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {span} free consecutive ports between {FREE_PORT_FLOOR} and {low}")


def running_pid(pid_file: Path, program: str) -> int:
    """The pid a pid file names while that process still runs `program` (by its executable's name): 0 when the
    file is missing or the pid is gone or recycled by another program."""
    try:
        pid = int(pid_file.read_text().split()[0])
        exe = os.readlink(f"/proc/{pid}/exe")
    except (OSError, ValueError, IndexError):
        return 0
    return pid if os.path.basename(exe) == program else 0
