"""Records -> API messages in the ARM shape."""
from __future__ import annotations

from typing import Any

from google.protobuf.struct_pb2 import Struct

from fabric.core import ids
from fabric.compute.extensions import EXTENSION_TYPE, guest_agent
from fabric.compute.vms import os_disk_name
from fabric.model import (EnrollmentRecord, OsProfile, ExtensionStatus, NodeAllocation, NodeRecord, Observed, OperationRecord, PowerState,
                          ResourceGroupRecord, TraceRecord, VmExtension, VmRecord)
from fabric.v1 import fabric_pb2 as pb

POWER_DISPLAY = {
    "starting": "VM starting", "running": "VM running", "stopping": "VM stopping", "stopped": "VM stopped",
    "deallocating": "VM deallocating", "deallocated": "VM deallocated", "unknown": "VM status unknown",
}


def error(body: dict[str, Any] | None) -> pb.ErrorDetail | None:
    if not body:
        return None
    return pb.ErrorDetail(code=body.get("code", ""), message=body.get("message", ""), target=body.get("target", ""),
                          details=[e for e in (error(d) for d in body.get("details") or []) if e is not None])


def resource_group(sub: str, rg: ResourceGroupRecord) -> pb.ResourceGroup:
    return pb.ResourceGroup(id=ids.resource_group_id(sub, rg.name), name=rg.name, type=ids.RG_TYPE,
                            location=rg.location,
                            properties=pb.ResourceGroupProperties(provisioning_state="Succeeded"))


def _gib(size_bytes: int) -> int:
    return -(-size_bytes // (1024 ** 3))


def instance_view(vm: VmRecord, obs: Observed | None, node: NodeRecord | None) -> pb.VirtualMachineInstanceView:
    """Power state as the node observed it; the controller's word while no node holds the VM."""
    power: str = vm.power_state
    if vm.node and obs is not None and not vm.power_state.endswith("ing") and obs.power != PowerState.DELETED:
        power = obs.power
    if vm.node and node is None:
        power = "unknown"   # the node's heartbeat lease has expired
    statuses = [
        pb.InstanceViewStatus(code=f"ProvisioningState/{vm.provisioning_state.lower()}",
                              level="Error" if vm.provisioning_state == "Failed" else "Info",
                              display_status=f"Provisioning {vm.provisioning_state.lower()}",
                              message=(vm.error or {}).get("message", ""), time=obs.time if obs else ""),
        pb.InstanceViewStatus(code=f"PowerState/{power}", level="Info", display_status=POWER_DISPLAY[power]),
    ]
    agent = None
    health = obs.agent if obs is not None and power == PowerState.RUNNING else None
    if health is not None:
        ready = health.status == "Ready"
        heard = f"last heard {health.time}" if health.time else "never heard from"
        agent = pb.VirtualMachineAgentInstanceView(
            vm_agent_version=health.version or "Unknown",
            statuses=[pb.InstanceViewStatus(code="ProvisioningState/succeeded" if ready else "ProvisioningState/Unavailable",
                                            level="Info" if ready else "Warning",
                                            display_status="Ready" if ready else "Not Ready",
                                            message="Guest Agent is running" if ready else
                                            f"VM Agent is unresponsive ({heard})", time=health.time)])
    disk = None
    if health is not None and health.resource_disk:
        fresh = health.resource_disk == "formatted"
        disk = pb.ResourceDiskInstanceView(
            state="Fresh" if fresh else "Kept", mount_point="/mnt/resource",
            message="formatted at this boot: a new, empty temporary disk (first boot, deallocation, redeploy or a "
                    "move to another node)" if fresh else "kept from before: the VM restarted on the same node")
    exts = [extension_view(e, obs.extensions.get(e.name) if obs else None) for e in vm.extensions]
    return pb.VirtualMachineInstanceView(
        vm_agent=agent, extensions=exts, resource_disk=disk,
        computer_name=vm.name, platform_fault_domain=node.fault_domain if node else 0, node_name=vm.node,
        hypervisor=obs.hypervisor if obs else "", domain_name=obs.domain if obs else "", statuses=statuses)


_EXT_LEVEL = {"success": ("succeeded", "Info", "Provisioning succeeded"),
              "error": ("failed", "Error", "Provisioning failed"),
              "transitioning": ("transitioning", "Info", "Transitioning")}


def extension_view(e: VmExtension, st: ExtensionStatus | None) -> pb.VirtualMachineExtensionInstanceView:
    """An extension's instance view from the guest agent's last status for its current sequence number."""
    view = pb.VirtualMachineExtensionInstanceView(name=e.name, type=f"{e.publisher}.{e.type}",
                                                  type_handler_version=e.handler_version)
    if st is None or st.seq != e.seq:
        view.statuses.append(pb.InstanceViewStatus(
            code="ProvisioningState/transitioning", level="Info", display_status="Transitioning",
            message=f"waiting for the guest agent to run sequence {e.seq}"))
        return view
    word, level, display = _EXT_LEVEL.get(st.status, _EXT_LEVEL["transitioning"])
    view.statuses.append(pb.InstanceViewStatus(code=f"ProvisioningState/{word}", level=level,
                                               display_status=display, message=st.message, time=st.time))
    for sub in st.substatuses:
        sw, sl, sd = _EXT_LEVEL.get(sub.status, _EXT_LEVEL["transitioning"])
        view.substatuses.append(pb.InstanceViewStatus(code=f"ComponentStatus/{sub.name}/{sw}",
                                                      level=sl, display_status=sd, message=sub.message))
    return view


def extension(sub: str, vm: VmRecord, e: VmExtension, st: ExtensionStatus | None = None,
              with_view: bool = False, with_log: bool = False) -> pb.VirtualMachineExtension:
    settings = Struct()
    settings.update(e.settings or {})
    props = pb.VirtualMachineExtensionProperties(
        publisher=e.publisher, type=e.type, type_handler_version=e.type_handler_version,
        auto_upgrade_minor_version=e.auto_upgrade_minor_version, settings=settings,
        provisioning_state=e.provisioning_state, force_update_tag=e.force_update_tag,
        error=error(e.error), last_operation_id=e.operation_id, sequence_number=e.seq,
        instance_view=extension_view(e, st) if with_view else None,
        handler_log=st.log if st is not None and with_log else "")
    return pb.VirtualMachineExtension(id=f"{ids.vm_id(sub, vm.resource_group, vm.name)}/extensions/{e.name}",
                                      name=e.name, type=EXTENSION_TYPE, location=vm.location, properties=props)


def vm(sub: str, rec: VmRecord, view: pb.VirtualMachineInstanceView | None = None) -> pb.VirtualMachine:
    img, os_disk = rec.image, rec.os_disk
    profile = rec.os_profile or OsProfile(computer_name=rec.name)
    props = pb.VirtualMachineProperties(
        vm_id=rec.vm_id,
        hardware_profile=pb.HardwareProfile(vm_size=rec.size),
        storage_profile=pb.StorageProfile(
            image_reference=pb.ImageReference(publisher=img.publisher, offer=img.offer, sku=img.sku,
                                              version=img.version, exact_version=img.exact_version),
            os_disk=pb.OsDisk(os_type="Linux", name=os_disk_name(rec.name, rec.vm_id), create_option="FromImage",
                              caching="ReadWrite", disk_size_gb=_gib(os_disk.size_bytes if os_disk else 0),
                              vhd=pb.VirtualHardDisk(uri=os_disk.uri if os_disk else ""),
                              delete_option=os_disk.delete_option if os_disk else ""),
            data_disks=[pb.DataDisk(lun=d.lun, name=d.name, vhd=pb.VirtualHardDisk(uri=d.uri),
                                    create_option=d.create_option or "Attach", caching="None",
                                    disk_size_gb=_gib(d.size_bytes)) for d in rec.data_disks]),
        os_profile=pb.OsProfile(computer_name=profile.computer_name, admin_username=profile.admin_username,
                                linux_configuration=pb.LinuxConfiguration(
                                    provision_vm_agent=rec.provision_vm_agent,
                                    disable_password_authentication=not profile.password_authentication,
                                    ssh=pb.SshConfiguration(public_keys=[
                                        pb.SshPublicKey(path=k.path, key_data=k.key_data)
                                        for k in profile.ssh_keys]))),
        network_profile=pb.NetworkProfile(network_interfaces=[pb.NetworkInterfaceReference(id=n.id)
                                                              for n in rec.nics]),
        provisioning_state=rec.provisioning_state,
        guest_agent=guest_agent(rec),
        instance_view=view,
        last_operation_id=rec.operation_id,
        error=error(rec.error))
    return pb.VirtualMachine(id=ids.vm_id(sub, rec.resource_group, rec.name), name=rec.name, type=ids.VM_TYPE,
                             location=rec.location, properties=props,
                             resources=[extension(sub, rec, e) for e in rec.extensions])


def candidate(r: dict[str, Any]) -> pb.PlacementCandidate:
    return pb.PlacementCandidate(node=r["node"], fault_domain=r["faultDomain"], weight=r["weight"],
                                 chosen=r["chosen"], filters=[pb.FilterVerdict(filter=f["filter"], passed=f["passed"],
                                                                               reason=f["reason"])
                                                              for f in r["filters"]])


def operation(op: OperationRecord, trace: list[TraceRecord] | None = None) -> pb.Operation:
    steps = []
    for t in trace or []:
        rows = [candidate(r) for r in t.placement]
        summary = None
        if t.placement_summary:
            sm, req = t.placement_summary, t.placement_summary.get("request", {})
            summary = pb.PlacementSummary(nodes=sm["nodes"], considered=sm["considered"], feasible=sm["feasible"],
                                          rejected=[pb.FilterCount(filter=r["filter"], nodes=r["nodes"])
                                                    for r in sm.get("rejected", [])],
                                          cores=req.get("cores", 0), memory_mb=req.get("memoryMb", 0),
                                          resource_disk_mb=req.get("resourceDiskMb", 0))
        steps.append(pb.TraceStep(time=t.time, source=t.source, step=t.step, message=t.message, detail=t.detail,
                                  placement=rows, placement_summary=summary))
    return pb.Operation(id=op.id, name=op.name, status=op.status, start_time=op.start_time, end_time=op.end_time,
                        target=op.target, error=error(op.error), trace=steps)


def node(name: str, n: NodeRecord | None, alloc: NodeAllocation | None,
         enrolled: EnrollmentRecord | None) -> pb.Node:
    """A node as `fabric node list` shows it: Ready while registered (its agent heartbeats), NotReady while
    only enrolled."""
    c, m, d = alloc.totals() if alloc else (0, 0, 0)
    serial = enrolled.serial if enrolled else ""
    if n is None:
        return pb.Node(name=name, state="NotReady", allocated_cores=c, allocated_memory_mb=m,
                       allocated_local_disk_mb=d, vm_count=alloc.count() if alloc else 0, certificate_serial=serial)
    return pb.Node(name=n.name, state="Ready", fault_domain=n.fault_domain, hypervisor=n.hypervisor, cores=n.cores,
                   memory_mb=n.memory_mb, local_disk_mb=n.local_disk_mb, allocated_cores=c, allocated_memory_mb=m,
                   allocated_local_disk_mb=d, vm_count=alloc.count() if alloc else 0,
                   registered_time=n.registered, address=n.underlay_ip, certificate_serial=serial)
