"""Passes nodes with enough memory left for the VM."""
from __future__ import annotations

from fabric.scheduler.host_state import HostState, Request

NAME = "RamFilter"


def fits(host: HostState, req: Request) -> bool:
    return req.memory_mb <= host.free_memory_mb


def check(host: HostState, req: Request) -> tuple[bool, str]:
    free = host.free_memory_mb
    if fits(host, req):
        return True, f"{req.memory_mb} of {free:g} MB free"
    return False, f"needs {req.memory_mb} MB memory, {free:g} MB free"
