"""The VM sizes catalogue, per location.

`Standard_*` sizes have the reference's shape and numbers; `Lab_*` sizes are
small so that several VMs fit on one lab host.
"""
from __future__ import annotations

import dataclasses

from fabric.core.errors import ArmError

MAX_OS_DISK_MB = 1047552  # 1 TiB - 1 GiB, the reference's osDiskSizeInMB


@dataclasses.dataclass(frozen=True)
class VmSize:
    name: str
    number_of_cores: int
    memory_in_mb: int
    os_disk_size_in_mb: int
    resource_disk_size_in_mb: int
    max_data_disk_count: int


SIZES: tuple[VmSize, ...] = (
    VmSize("Lab_A0", 1, 256, MAX_OS_DISK_MB, 512, 1),
    VmSize("Lab_A1", 1, 512, MAX_OS_DISK_MB, 1024, 2),
    VmSize("Lab_A2", 2, 1024, MAX_OS_DISK_MB, 2048, 4),
    VmSize("Standard_DS1_v2", 1, 3584, MAX_OS_DISK_MB, 7168, 2),
    VmSize("Standard_DS2_v2", 2, 7168, MAX_OS_DISK_MB, 14336, 8),
    VmSize("Standard_DS3_v2", 4, 14336, MAX_OS_DISK_MB, 28672, 16),
)


def sizes_for(location: str) -> tuple[VmSize, ...]:
    """Every location a controller serves offers the whole catalogue."""
    return SIZES


def find_size(location: str, name: str) -> VmSize:
    """The size called `name` (case-insensitive), or SkuNotAvailable listing what exists."""
    for size in sizes_for(location):
        if size.name.lower() == (name or "").lower():
            return size
    names = ", ".join(s.name for s in sizes_for(location))
    raise ArmError("SkuNotAvailable",
                   f"The requested size '{name}' is not available in location '{location}'. "
                   f"Available sizes: {names}.", "hardwareProfile.vmSize")
