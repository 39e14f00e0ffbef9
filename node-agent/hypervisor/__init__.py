"""The compute driver seam (`driver`: what the node agent asks of a hypervisor) and its libvirt
implementation, the only package of fabriclab that imports libvirt or reads and writes domain XML."""
from nodeagent.hypervisor.driver import (ComputeDriver, DirectBoot, DriverError, FirmwareBoot, Instance, Nic,
                                         Spawned, SpawnResult, VmSpec)
from nodeagent.hypervisor.libvirt_driver import LibvirtDriver

__all__ = ["ComputeDriver", "DirectBoot", "DriverError", "FirmwareBoot", "Instance", "LibvirtDriver", "Nic", "Spawned",
           "SpawnResult", "VmSpec"]
