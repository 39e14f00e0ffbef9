"""Passes nodes with enough local disk for the VM's resource (temporary) disk.

The OS disk lives in storage, not on the node, so it is not counted here.
"""
from __future__ import annotations

from fabric.scheduler.host_state import HostState, Request

NAME = "DiskFilter"


def fits(host: HostState, req: Request) -> bool:
    return req.resource_disk_mb <= host.free_disk_mb


def check(host: HostState, req: Request) -> tuple[bool, str]:
    free = host.free_disk_mb
    if fits(host, req):
        return True, f"{req.resource_disk_mb} of {free:g} MB local disk free"
    return False, f"needs {req.resource_disk_mb} MB local disk for the resource disk, {free:g} MB free"
