"""ARM-style errors, with no transport: what providers raise and records keep.

    ArmError(code, message, target, details)
      - raised by providers for bad input or refused actions (nothing written);
      - recorded on a resource/operation for terminal failures;
      - carried to the CLI as JSON in the trailing metadata key "fabric-error" (fabric.arm.errors maps each
        error's Kind to its gRPC status: the one place a transport meets them).

What an error echoes of a request is bounded here, for every error at once: a
long run of characters in the message (a name, a location, an id, a URL) is cut
to MAX_ECHO_CHARS with "…" and its length, as is the target; the message in all
to MAX_MESSAGE_CHARS, the details to MAX_DETAILS. A 100 KB location or a 1 MB
operation id once came back whole and pushed the reply past gRPC's metadata
limit (RESOURCE_EXHAUSTED, and no ARM body).
"""
from __future__ import annotations

import enum
from collections.abc import Iterator
import json
import re
from typing import Any

ERROR_METADATA_KEY = "fabric-error"
MAX_ECHO_CHARS = 200        # a value from a request (or a target) shown in an error
MAX_MESSAGE_CHARS = 2000    # one error message (AllocationFailed names every node's verdict)
MAX_DETAILS = 20            # details kept on one error, at each level
# the JSON body in the trailing metadata: gRPC refuses trailers over its 8 KiB default (with the status message)
MAX_ERROR_BYTES = 4096
_LONG_RUN = re.compile(r"[^\s'\"]{%d,}" % (MAX_ECHO_CHARS + 1))   # an echoed value: no spaces, no quotes

class Kind(enum.Enum):
    """What kind of failure an error is, whatever carries it (gRPC status, HTTP status, a deployment's
    statusCode)."""
    INVALID = "invalid"
    NOT_FOUND = "not-found"
    EXISTS = "exists"
    DENIED = "denied"
    ABORTED = "aborted"
    PRECONDITION = "precondition"
    EXHAUSTED = "exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


# code -> kind; codes not listed go by their HTTP status (_BY_HTTP), else PRECONDITION.
_KINDS: dict[str, Kind] = {
    "InvalidParameter": Kind.INVALID,
    "SkuNotAvailable": Kind.INVALID,
    "ImageNotFound": Kind.NOT_FOUND,
    "ImageVersionNotFound": Kind.NOT_FOUND,
    "LocationNotAvailable": Kind.INVALID,
    "ResourceGroupNotFound": Kind.NOT_FOUND,
    "ResourceNotFound": Kind.NOT_FOUND,
    "OperationNotFound": Kind.NOT_FOUND,
    "Conflict": Kind.EXISTS,
    "OperationNotAllowed": Kind.PRECONDITION,
    "AllocationFailed": Kind.EXHAUSTED,
    "StoreUnavailable": Kind.UNAVAILABLE,
    "StorageAccountNotFound": Kind.NOT_FOUND,
    "ContainerNotFound": Kind.NOT_FOUND,
    "BlobNotFound": Kind.NOT_FOUND,
    "StorageAccountAlreadyTaken": Kind.EXISTS,
    "ContainerAlreadyExists": Kind.EXISTS,
    "InternalError": Kind.INTERNAL,
    "InvalidTemplate": Kind.INVALID,
    "NoRegisteredProviderFound": Kind.INVALID,
    "DeploymentNotFound": Kind.NOT_FOUND,
    "DeploymentActive": Kind.EXISTS,
    "ArtifactNotFound": Kind.NOT_FOUND,
    "ArtifactVersionNotFound": Kind.NOT_FOUND,
    "PropertyChangeNotAllowed": Kind.PRECONDITION,
}


_BY_HTTP = {400: Kind.INVALID, 403: Kind.DENIED,
            404: Kind.NOT_FOUND, 409: Kind.ABORTED, 412: Kind.PRECONDITION}


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
    def kind(self) -> Kind:
        return _KINDS.get(self.code) or _BY_HTTP.get(self.http_status, Kind.PRECONDITION)

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


def check_location(location: str, served: str) -> None:
    """A location this fabric serves (one, compared without case), or LocationNotAvailable naming both."""
    if location.lower() != served.lower():
        raise ArmError("LocationNotAvailable", f"Location '{location}' is not served by this fabric; it serves "
                                               f"'{served}'.", "location")


def invalid(target: str, rule: str) -> ArmError:
    """Bad input: names the field and the rule it broke."""
    return ArmError("InvalidParameter", f"Invalid value for '{target}': {rule}", target)


def exactly(length: int, chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The body, refused (ArmError InvalidInput) when it ends before or runs past its declared length."""
    got = 0
    for chunk in chunks:
        got += len(chunk)
        if got > length:
            raise invalid("contentLength", f"the body runs past the {length} bytes its contentLength declares")
        yield chunk
    if got != length:
        raise ArmError("InvalidInput", f"One of the request inputs is not valid: the body ended after {got} of the "
                                       f"{length} bytes its contentLength declares.", "contentLength")
