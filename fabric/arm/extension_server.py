"""gRPC servicer for VM extensions (Microsoft.Compute/virtualMachines/extensions)."""
from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from fabric.arm import convert
from fabric.arm.server import _unary
from fabric.compute import extensions
from fabric.compute.vms import ComputeProvider
from fabric.model import ExtensionStatus, Observed, VmRecord
from fabric.store import Store, keys
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc


def struct_dict(s: Struct) -> dict[str, Any]:
    """A Struct as plain JSON values; whole numbers come back as ints (a Struct holds only doubles)."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v
    out: dict[str, Any] = fix(MessageToDict(s))
    return out


class VirtualMachineExtensions(rpc.VirtualMachineExtensionsServicer):
    def __init__(self, store: Store, compute: ComputeProvider) -> None:
        self.store, self.compute = store, compute

    def _status(self, vm: VmRecord, name: str) -> ExtensionStatus | None:
        if not vm.node:
            return None
        obs = self.store.get(keys.observed(vm.node, vm.vm_id), Observed)
        return obs.value.extensions.get(name) if obs else None

    @_unary
    def Set(self, req: pb.SetExtensionRequest, ctx: grpc.ServicerContext) -> pb.Operation:
        auto = req.auto_upgrade_minor_version if req.HasField("auto_upgrade_minor_version") else True
        op = extensions.set_extension(self.compute, req.resource_group, req.vm_name, req.name, req.publisher,
                                      req.type, req.type_handler_version, auto,
                                      struct_dict(req.settings) if req.HasField("settings") else None,
                                      struct_dict(req.protected_settings) if req.HasField("protected_settings")
                                      else None, req.force_update_tag)
        return convert.operation(op)

    @_unary
    def Delete(self, req: pb.ExtensionRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return convert.operation(extensions.delete_extension(self.compute, req.resource_group, req.vm_name,
                                                             req.name))

    @_unary
    def Get(self, req: pb.ExtensionRef, ctx: grpc.ServicerContext) -> pb.VirtualMachineExtension:
        vm, e = extensions.get(self.compute, req.resource_group, req.vm_name, req.name)
        return convert.extension(self.compute.config.subscription, vm, e, self._status(vm, e.name),
                                 with_view=req.instance_view or req.logs, with_log=req.logs)

    @_unary
    def List(self, req: pb.ListExtensionsRequest, ctx: grpc.ServicerContext) -> pb.ListExtensionsResponse:
        vm = self.compute.get(req.resource_group, req.vm_name).value
        return pb.ListExtensionsResponse(value=[
            convert.extension(self.compute.config.subscription, vm, e, self._status(vm, e.name), with_view=True)
            for e in vm.extensions])

    @_unary
    def ListImages(self, req: pb.ListExtensionImagesRequest,
                   ctx: grpc.ServicerContext) -> pb.ListExtensionImagesResponse:
        return pb.ListExtensionImagesResponse(value=[
            pb.ExtensionImage(publisher=h.publisher, type=h.type, version=v, description=h.description)
            for h in extensions.CATALOGUE for v in h.versions
            if (not req.publisher or req.publisher.lower() == h.publisher.lower())
            and (not req.type or req.type.lower() == h.type.lower())])
