"""gRPC servicer for template deployments (Microsoft.Resources/deployments)."""
from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct, Value

from fabric.arm import convert, paging
from fabric.arm.extension_server import struct_dict
from fabric.arm.server import _unary
from fabric.deployments.engine import (DEPLOYMENT_TYPE, DeploymentProvider, DeploymentRecord, ResourceState,
                                       duration)
from fabric.store import keys
from fabric.v1 import deployment_pb2 as pb
from fabric.v1 import deployment_pb2_grpc as rpc


def deployment(p: DeploymentProvider, d: DeploymentRecord) -> pb.Deployment:
    params = Struct()
    params.update({k: {"value": v} if k not in d.secure else {"type": "SecureString"}
                   for k, v in d.parameters.items()})
    by_key = {r.key: r for r in d.resources}
    props = pb.DeploymentProperties(
        provisioning_state=d.provisioning_state, timestamp=d.timestamp, duration=duration(d),
        correlation_id=d.correlation_id, parameters=params, template_hash=d.template_hash, mode="Incremental",
        output_resources=[pb.ResourceReference(id=r.id) for r in d.resources if r.state == ResourceState.SUCCEEDED],
        error=convert.error(d.error), last_operation_id=d.operation_id,
        dependencies=[pb.Dependency(id=r.id, resource_type=r.type, resource_name=r.name,
                                    depends_on=[pb.BasicDependency(id=by_key[k].id, resource_type=by_key[k].type,
                                                                   resource_name=by_key[k].name)
                                                for k in r.depends_on])
                      for r in d.resources if r.depends_on])
    return pb.Deployment(id=p.deployment_id(d.resource_group, d.name), name=d.name, type=DEPLOYMENT_TYPE,
                         properties=props)


def _value(v: Any) -> Value | None:
    return json_format.ParseDict(v, Value()) if v is not None else None


def deployment_operations(p: DeploymentProvider, d: DeploymentRecord) -> list[pb.DeploymentOperation]:
    out = []
    for r in d.resources:
        if r.state in (ResourceState.PENDING, ResourceState.SKIPPED):
            continue
        op_id = (r.tracking_id or r.key).replace("-", "").upper()[:16]
        props = pb.DeploymentOperationProperties(
            provisioning_operation="Create", provisioning_state=r.state, timestamp=r.end or r.start,
            duration=duration(r), tracking_id=r.tracking_id, status_code=r.status_code,
            status_message=_value(r.status_message),
            target_resource=pb.TargetResource(id=r.id, resource_type=r.type, resource_name=r.name),
            resource_operation_id=r.operation_id)
        out.append(pb.DeploymentOperation(id=f"{p.deployment_id(d.resource_group, d.name)}/operations/{op_id}",
                                          operation_id=op_id, properties=props))
    return out


class Deployments(rpc.DeploymentsServicer):
    def __init__(self, provider: DeploymentProvider) -> None:
        self.p = provider

    @_unary
    def Create(self, req: pb.CreateDeploymentRequest, ctx: grpc.ServicerContext) -> Any:
        return convert.operation(self.p.create(req.resource_group, req.name, req.template_json,
                                               struct_dict(req.parameters)))

    @_unary
    def Get(self, req: pb.DeploymentRef, ctx: grpc.ServicerContext) -> pb.Deployment:
        return deployment(self.p, self.p.get(req.resource_group, req.name))

    @_unary
    def List(self, req: pb.ListDeploymentsRequest, ctx: grpc.ServicerContext) -> pb.ListDeploymentsResponse:
        found, next_link = paging.page(self.p.list_in(req.resource_group), lambda d: d.key, req.max_items,
                                       req.next_token, keys.deployments_in(req.resource_group))
        return pb.ListDeploymentsResponse(value=[deployment(self.p, d.value) for d in found], next_link=next_link)

    @_unary
    def ListOperations(self, req: pb.DeploymentRef,
                       ctx: grpc.ServicerContext) -> pb.ListDeploymentOperationsResponse:
        return pb.ListDeploymentOperationsResponse(
            value=deployment_operations(self.p, self.p.get(req.resource_group, req.name)))
