"""ARM-style errors and their one mapping to gRPC status codes.

    ArmError(code, message, target, details)
      - raised by providers for bad input or refused actions (nothing written);
      - recorded on a resource/operation for terminal failures;
      - carried to the CLI as JSON in the trailing metadata key "fabric-error".
"""
from __future__ import annotations

import json
from typing import Any

import grpc

ERROR_METADATA_KEY = "fabric-error"

# code -> gRPC status; codes not listed map by their HTTP status (_BY_HTTP), else FAILED_PRECONDITION.
_GRPC_CODES: dict[str, grpc.StatusCode] = {
    "InvalidParameter": grpc.StatusCode.INVALID_ARGUMENT,
    "SkuNotAvailable": grpc.StatusCode.INVALID_ARGUMENT,
    "ImageNotFound": grpc.StatusCode.NOT_FOUND,
    "ImageVersionNotFound": grpc.StatusCode.NOT_FOUND,
    "LocationNotAvailable": grpc.StatusCode.INVALID_ARGUMENT,
    "ResourceGroupNotFound": grpc.StatusCode.NOT_FOUND,
    "ResourceNotFound": grpc.StatusCode.NOT_FOUND,
    "OperationNotFound": grpc.StatusCode.NOT_FOUND,
    "Conflict": grpc.StatusCode.ALREADY_EXISTS,
    "OperationNotAllowed": grpc.StatusCode.FAILED_PRECONDITION,
    "AllocationFailed": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "StoreUnavailable": grpc.StatusCode.UNAVAILABLE,
    "StorageAccountNotFound": grpc.StatusCode.NOT_FOUND,
    "ContainerNotFound": grpc.StatusCode.NOT_FOUND,
    "BlobNotFound": grpc.StatusCode.NOT_FOUND,
    "StorageAccountAlreadyTaken": grpc.StatusCode.ALREADY_EXISTS,
    "ContainerAlreadyExists": grpc.StatusCode.ALREADY_EXISTS,
    "InternalError": grpc.StatusCode.INTERNAL,
    "InvalidTemplate": grpc.StatusCode.INVALID_ARGUMENT,
    "NoRegisteredProviderFound": grpc.StatusCode.INVALID_ARGUMENT,
    "DeploymentNotFound": grpc.StatusCode.NOT_FOUND,
    "DeploymentActive": grpc.StatusCode.ALREADY_EXISTS,
    "ArtifactNotFound": grpc.StatusCode.NOT_FOUND,
    "ArtifactVersionNotFound": grpc.StatusCode.NOT_FOUND,
    "PropertyChangeNotAllowed": grpc.StatusCode.FAILED_PRECONDITION,
}


_BY_HTTP = {400: grpc.StatusCode.INVALID_ARGUMENT, 403: grpc.StatusCode.PERMISSION_DENIED,
            404: grpc.StatusCode.NOT_FOUND, 409: grpc.StatusCode.ABORTED, 412: grpc.StatusCode.FAILED_PRECONDITION}


class ArmError(Exception):
    def __init__(self, code: str, message: str, target: str = "",
                 details: list[dict[str, Any]] | None = None, http_status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = target
        self.details = details or []
        self.http_status = http_status   # set by services with an HTTP face (the blob data plane)

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "target": self.target,
                "details": self.details}

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return _GRPC_CODES.get(self.code) or _BY_HTTP.get(self.http_status, grpc.StatusCode.FAILED_PRECONDITION)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ArmError:
        return cls(body.get("code", "InternalError"), body.get("message", ""),
                   body.get("target", ""), body.get("details") or [])

    def to_metadata(self) -> tuple[tuple[str, str], ...]:
        return ((ERROR_METADATA_KEY, json.dumps(self.body())),)


def invalid(target: str, rule: str) -> ArmError:
    """Bad input: names the field and the rule it broke."""
    return ArmError("InvalidParameter", f"Invalid value for '{target}': {rule}", target)
