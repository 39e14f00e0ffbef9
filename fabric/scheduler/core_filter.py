"""Passes nodes with enough vCPUs left (physical cores x CPU_ALLOCATION_RATIO)."""
from __future__ import annotations

from fabric.scheduler.host_state import CPU_ALLOCATION_RATIO, HostState, Request

NAME = "CoreFilter"


def fits(host: HostState, req: Request) -> bool:
    return req.cores <= host.free_vcpus


def check(host: HostState, req: Request) -> tuple[bool, str]:
    free = host.free_vcpus
    if fits(host, req):
        return True, f"{req.cores} of {free:g} free vCPUs"
    return False, (f"needs {req.cores} vCPUs, {free:g} free "
                   f"({host.cores} cores x {CPU_ALLOCATION_RATIO:g} - {host.used_cores} allocated)")
