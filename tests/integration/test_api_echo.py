"""A huge value in a request is echoed short: the ARM error body still fits gRPC's metadata limit.

A 100 KB location or a 1 MB operation id once came back whole in the error, and the reply exceeded
gRPC's limit (RESOURCE_EXHAUSTED, no ARM body); now the field is named and the value cut, with its length.
"""
from __future__ import annotations

import grpc

from fabric.core.errors import MAX_ECHO_CHARS, MAX_MESSAGE_CHARS
from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api
from tests.integration.test_api_errors import arm_error

HUGE_LOCATION = "x" * (100 * 1024)
HUGE_OPERATION_ID = "o" * (1024 * 1024)


def test_a_100_kb_location_is_named_and_cut(api: Api) -> None:
    status, body = arm_error(lambda: api.groups.Create(pb.CreateResourceGroupRequest(name="RG",
                                                                                    location=HUGE_LOCATION)))
    assert (status, body["code"], body["target"]) == (grpc.StatusCode.INVALID_ARGUMENT, "LocationNotAvailable",
                                                      "location")
    assert len(body["message"]) < MAX_ECHO_CHARS + 200
    assert f"{len(HUGE_LOCATION)} characters" in body["message"] and "it serves 'local'" in body["message"]


def test_a_1_mb_operation_id_is_named_and_cut(api: Api) -> None:
    status, body = arm_error(lambda: api.ops.Get(pb.GetOperationRequest(id=HUGE_OPERATION_ID)))
    assert (status, body["code"], body["target"]) == (grpc.StatusCode.NOT_FOUND, "OperationNotFound", "id")
    assert len(body["message"]) <= MAX_MESSAGE_CHARS
    assert f"{len(HUGE_OPERATION_ID)} characters" in body["message"]


def test_the_streamed_watch_of_a_1_mb_operation_id_is_cut_too(api: Api) -> None:
    status, body = arm_error(lambda: list(api.ops.Watch(pb.GetOperationRequest(id=HUGE_OPERATION_ID))))
    assert (status, body["code"], body["target"]) == (grpc.StatusCode.NOT_FOUND, "OperationNotFound", "id")
