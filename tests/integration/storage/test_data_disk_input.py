"""Data disk requests with bad input are refused before anything is looked up or written."""
from __future__ import annotations

import json

import grpc
import pytest

from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api


@pytest.mark.parametrize("name,size_gb,target", [
    ("bad name", 1, "name"), ("-x", 1, "name"), ("disk.", 1, "name"), ("a" * 81, 1, "name"),
    ("data1", 0, "sizeGb"), ("data1", 1024, "sizeGb"),
])
def test_bad_attach_input(api: Api, name: str, size_gb: int, target: str) -> None:
    with pytest.raises(grpc.RpcError) as e:
        api.vms.AttachDisk(pb.AttachDiskRequest(resource_group="nope", vm_name="nope", name=name, size_gb=size_gb,
                                                new=True))
    body = json.loads(dict(e.value.trailing_metadata())["fabric-error"])
    assert (e.value.code(), body["code"], body["target"]) == (grpc.StatusCode.INVALID_ARGUMENT, "InvalidParameter",
                                                              target)
