"""Spreads VMs: the node with the larger share of free memory and vCPUs weighs more.

Score in [0, 1]: the mean of the free fractions of memory and vCPUs after placing.
"""
from __future__ import annotations

from fabric.scheduler.host_state import CPU_ALLOCATION_RATIO, RAM_ALLOCATION_RATIO, HostState, Request

NAME = "SpreadWeigher"


def weigh(host: HostState, req: Request) -> float:
    mem_total = host.memory_mb * RAM_ALLOCATION_RATIO
    cpu_total = host.cores * CPU_ALLOCATION_RATIO
    mem = (host.free_memory_mb - req.memory_mb) / mem_total if mem_total else 0.0
    cpu = (host.free_vcpus - req.cores) / cpu_total if cpu_total else 0.0
    return round((mem + cpu) / 2, 4)
