"""ARM-style errors and their one mapping to gRPC status codes.

    ArmError(code, message, target, details)
      - raised by providers for bad input or refused actions (nothing written);
      - recorded on a resource/operation for terminal failures;
      - carried to the CLI as JSON in the trailing metadata key "fabric-error".

What an error echoes of a request is bounded here, for every error at once: a
long run of characters in the message (a name, a location, an id, a URL) is cut
to MAX_ECHO_CHARS with "…" and its length, as is the target; the message in all
to MAX_MESSAGE_CHARS, the details to MAX_DETAILS. A 100 KB location or a 1 MB
operation id once came back whole and pushed the reply past gRPC's metadata
limit (RESOURCE_EXHAUSTED, and no ARM body).
"""
from __future__ import annotations

import json
import re
from typing import Any

import grpc

ERROR_METADATA_KEY = "fabric-error"
MAX_ECHO_CHARS = 200        # a value from a request (or a target) shown in an error
MAX_MESSAGE_CHARS = 2000    # one error message (AllocationFailed names every node's verdict)
MAX_DETAILS = 20            # details kept on one error, at each level
# the JSON body in the trailing metadata: gRPC refuses trailers over its 8 KiB default (with the status message)
MAX_ERROR_BYTES = 4096
_LONG_RUN = re.compile(r"[^\s'\"]{%d,}" % (MAX_ECHO_CHARS + 1))   # an echoed value: no spaces, no quotes

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


def shorten(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text`, or as much of it as fits in `limit` characters with "…" and its whole length."""
    if len(text) <= limit:
        return text
    tail = f"… ({len(text)} characters)"
    return text[:max(0, limit - len(tail))] + tail


def _capped_message(message: str) -> str:
    return shorten(_LONG_RUN.sub(lambda m: shorten(m.group()), message), MAX_MESSAGE_CHARS)


def _capped_details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for d in details[:MAX_DETAILS]:
        d = dict(d)
        if isinstance(d.get("message"), str):
            d["message"] = _capped_message(d["message"])
        if isinstance(d.get("target"), str):
            d["target"] = shorten(d["target"])
        if isinstance(d.get("details"), list):
            d["details"] = _capped_details(d["details"])
        kept.append(d)
    if len(details) > MAX_DETAILS:
        kept.append({"code": "DetailsOmitted", "message": f"{len(details) - MAX_DETAILS} more details omitted."})
    return kept


class ArmError(Exception):
    def __init__(self, code: str, message: str, target: str = "",
                 details: list[dict[str, Any]] | None = None, http_status: int = 0) -> None:
        message = _capped_message(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.target = shorten(target)
        self.details = _capped_details(details or [])
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
        """The body as ASCII JSON of at most MAX_ERROR_BYTES: when the details (or a message of wide
        characters) do not fit, the message is cut to MAX_ECHO_CHARS and the details replaced by a note."""
        text = json.dumps(self.body())
        if len(text) > MAX_ERROR_BYTES:
            omitted = [{"code": "DetailsOmitted", "message": f"{len(self.details)} details did not fit."}]
            text = json.dumps({**self.body(), "message": shorten(self.message),
                               "details": omitted if self.details else []})
        return ((ERROR_METADATA_KEY, text),)


def invalid(target: str, rule: str) -> ArmError:
    """Bad input: names the field and the rule it broke."""
    return ArmError("InvalidParameter", f"Invalid value for '{target}': {rule}", target)
