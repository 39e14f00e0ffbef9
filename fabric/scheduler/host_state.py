"""What the scheduler knows of one node and of the VM it must place."""
from __future__ import annotations

import dataclasses

# Overcommit, as a lab host allows: vCPUs per physical core; memory and local disk are not overcommitted.
CPU_ALLOCATION_RATIO = 4.0
RAM_ALLOCATION_RATIO = 1.0
DISK_ALLOCATION_RATIO = 1.0


@dataclasses.dataclass(frozen=True)
class Request:
    cores: int
    memory_mb: int
    resource_disk_mb: int


@dataclasses.dataclass(frozen=True)
class HostState:
    name: str
    fault_domain: int
    cores: int
    memory_mb: int
    local_disk_mb: int
    used_cores: int
    used_memory_mb: int
    used_disk_mb: int
    vm_count: int

    @property
    def free_vcpus(self) -> float:
        return self.cores * CPU_ALLOCATION_RATIO - self.used_cores

    @property
    def free_memory_mb(self) -> float:
        return self.memory_mb * RAM_ALLOCATION_RATIO - self.used_memory_mb

    @property
    def free_disk_mb(self) -> float:
        return self.local_disk_mb * DISK_ALLOCATION_RATIO - self.used_disk_mb
