from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api


@dataclass
class HttpResult:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def code(self) -> str:
        return self.headers.get("x-ms-error-code", "")


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> HttpResult:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return HttpResult(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return HttpResult(e.code, e.read(), {k.lower(): v for k, v in e.headers.items()})


@pytest.fixture
def acct(api: Api) -> Api:
    """An account `blogacct` with a private container `scripts` holding `simple.sh`."""
    api.groups.Create(fpb.CreateResourceGroupRequest(name="RG", location="local"))
    api.accounts.Create(pb.CreateStorageAccountRequest(resource_group="RG", name="blogacct"))
    api.containers.Create(pb.CreateContainerRequest(account_name="blogacct", name="scripts"))
    upload(api, "scripts", "simple.sh", b"echo hello\n")
    return api


def upload(api: Api, container: str, name: str, data: bytes, lease_id: str = "", account: str = "blogacct") -> pb.Blob:
    def parts() -> Iterator[pb.UploadBlobChunk]:
        yield pb.UploadBlobChunk(header=pb.BlobUploadHeader(account_name=account, container=container, name=name,
                                                            content_type="text/x-sh", lease_id=lease_id,
                                                            content_length=len(data)))
        for i in range(0, len(data), 65536):
            yield pb.UploadBlobChunk(data=data[i:i + 65536])
    blob: pb.Blob = api.blobs.Upload(parts())
    return blob


def key1(api: Api, account: str = "blogacct") -> str:
    value: str = api.accounts.ListKeys(pb.StorageAccountRef(name=account)).keys[0].value
    return value
