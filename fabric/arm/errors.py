"""The one mapping of the fabric's errors (fabric.core.errors) to gRPC status codes."""
from __future__ import annotations

import grpc

from fabric.core.errors import ArmError, Kind

GRPC_CODES: dict[Kind, grpc.StatusCode] = {
    Kind.INVALID: grpc.StatusCode.INVALID_ARGUMENT, Kind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Kind.EXISTS: grpc.StatusCode.ALREADY_EXISTS, Kind.DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Kind.ABORTED: grpc.StatusCode.ABORTED, Kind.PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Kind.EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED, Kind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Kind.INTERNAL: grpc.StatusCode.INTERNAL,
}


def grpc_code(err: ArmError) -> grpc.StatusCode:
    return GRPC_CODES[err.kind]
