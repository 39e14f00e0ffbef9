"""The HTTP data plane: SAS checks, public access levels, leases, in the service's error shape."""
from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabric.storage import sas
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api
from tests.integration.storage.conftest import http, key1, upload

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def sas_url(api: Api, blob: str = "simple.sh", perms: str = "r", container: str = "scripts",
            signed_blob: str | None = None, expiry: dt.datetime | None = None) -> str:
    t = sas.sign(key1(api), "blogacct", container, blob if signed_blob is None else signed_blob, perms,
                 expiry or NOW + dt.timedelta(hours=1))
    return f"{api.storage.config.endpoint}/blogacct/{container}/{blob}?{t.query()}"


def test_read_with_a_sas(acct: Api) -> None:
    r = http("GET", sas_url(acct))
    assert (r.status, r.body) == (200, b"echo hello\n")
    assert r.headers["x-ms-blob-type"] == "BlockBlob" and r.headers["content-type"] == "text/x-sh"
    assert r.headers["x-ms-lease-state"] == "available"


def test_a_generated_container_sas_reads_any_blob_of_the_container(acct: Api) -> None:
    res = acct.blobs.GenerateSas(pb.GenerateSasRequest(account_name="blogacct", container="scripts", permissions="r",
                                                       expiry=(NOW + dt.timedelta(hours=24)).strftime(sas.TIME_FORMAT)))
    q = parse_qs(res.token)
    assert q["sr"] == ["c"] and q["sp"] == ["r"] and q["sv"] == ["2015-04-05"]
    r = http("GET", f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh?{res.token}")
    assert r.status == 200


@pytest.mark.parametrize("case,status,code", [
    ("wrong-signature", 403, "AuthenticationFailed"),
    ("expired", 403, "AuthenticationFailed"),
    ("missing-permission", 403, "AuthorizationPermissionMismatch"),
    ("other-blob", 403, "AuthenticationFailed"),
    ("other-container", 403, "AuthenticationFailed"),
])
def test_sas_refusals(acct: Api, case: str, status: int, code: str) -> None:
    acct.containers.Create(pb.CreateContainerRequest(account_name="blogacct", name="secrets"))
    upload(acct, "secrets", "simple.sh", b"secret")
    method = "GET"
    if case == "wrong-signature":
        url = sas_url(acct).replace("sig=", "sig=x")
    elif case == "expired":
        url = sas_url(acct, expiry=NOW - dt.timedelta(seconds=1))
    elif case == "missing-permission":
        url, method = sas_url(acct, perms="r"), "DELETE"
    elif case == "other-blob":
        url = sas_url(acct, blob="simple.sh", signed_blob="other.sh")
    else:   # a blob SAS of container scripts used on container secrets
        url = sas_url(acct).replace("/scripts/", "/secrets/")
    r = http(method, url)
    assert (r.status, r.code) == (status, code)
    assert f"<Code>{code}</Code>" in r.body.decode()


def test_public_access_levels(acct: Api) -> None:
    base = f"{acct.storage.config.endpoint}/blogacct/scripts"
    assert (http("GET", f"{base}/simple.sh").status, http("GET", f"{base}/simple.sh").code) == (404, "ResourceNotFound")
    acct.containers.SetPermission(pb.SetContainerPermissionRequest(account_name="blogacct", name="scripts",
                                                                   public_access="blob"))
    assert http("GET", f"{base}/simple.sh").body == b"echo hello\n"
    assert http("GET", f"{base}?restype=container&comp=list").status == 404     # 'blob' allows no listing
    assert http("DELETE", f"{base}/simple.sh").status == 404                    # nor anonymous writes
    acct.containers.SetPermission(pb.SetContainerPermissionRequest(account_name="blogacct", name="scripts",
                                                                   public_access="container"))
    listing = http("GET", f"{base}?restype=container&comp=list")
    assert listing.status == 200 and b"<Name>simple.sh</Name>" in listing.body
    upload(acct, "scripts", "two.sh", b"echo 2\n")
    first = http("GET", f"{base}?restype=container&comp=list&maxresults=1")     # paged as the reference's
    assert b"<Name>simple.sh</Name>" in first.body and b"<NextMarker>simple.sh</NextMarker>" in first.body
    rest = http("GET", f"{base}?restype=container&comp=list&maxresults=1&marker=simple.sh")
    assert b"<Name>two.sh</Name>" in rest.body and b"<NextMarker></NextMarker>" in rest.body
    assert http("GET", f"{base}?restype=container&comp=list&maxresults=x").status == 400
    acct.containers.SetPermission(pb.SetContainerPermissionRequest(account_name="blogacct", name="scripts",
                                                                   public_access="off"))
    assert http("GET", f"{base}/simple.sh").status == 404


def test_upload_over_http_with_a_sas(acct: Api) -> None:
    url = sas_url(acct, blob="new.sh", perms="c")
    r = http("PUT", url, b"echo new\n", {"x-ms-blob-type": "BlockBlob", "Content-Type": "text/x-sh"})
    assert r.status == 201
    assert http("GET", sas_url(acct, blob="new.sh")).body == b"echo new\n"
    # replacing needs 'w', not only 'c'
    assert http("PUT", url, b"x", {"x-ms-blob-type": "BlockBlob"}).code == "AuthorizationPermissionMismatch"


def lease_rpc(api: Api, action: str, **kw: Any) -> pb.LeaseResponse:
    r: pb.LeaseResponse = api.blobs.Lease(pb.LeaseRequest(account_name="blogacct", container="scripts",
                                                          name="simple.sh", action=action, **kw))
    return r


def test_leases_guard_writes_and_deletes(acct: Api) -> None:
    lease_id = lease_rpc(acct, "acquire", duration=-1).lease_id
    b = acct.blobs.Get(pb.BlobRef(account_name="blogacct", container="scripts", name="simple.sh"))
    assert (b.properties.lease.state, b.properties.lease.status, b.properties.lease.duration) == \
        ("leased", "locked", "infinite")
    with pytest.raises(grpc.RpcError) as e:
        lease_rpc(acct, "acquire", duration=-1)
    assert e.value.code() == grpc.StatusCode.ABORTED
    assert json.loads(dict(e.value.trailing_metadata())["fabric-error"])["code"] == "LeaseAlreadyPresent"
    with pytest.raises(grpc.RpcError) as e:
        upload(acct, "scripts", "simple.sh", b"overwrite")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert json.loads(dict(e.value.trailing_metadata())["fabric-error"])["code"] == "LeaseIdMissing"
    r = http("DELETE", sas_url(acct, perms="d"))
    assert (r.status, r.code) == (412, "LeaseIdMissing")
    r = http("DELETE", sas_url(acct, perms="d"), headers={"x-ms-lease-id": "00000000-0000-0000-0000-000000000000"})
    assert (r.status, r.code) == (412, "LeaseIdMismatchWithBlobOperation")
    assert http("GET", sas_url(acct)).body == b"echo hello\n"          # reads need no lease
    upload(acct, "scripts", "simple.sh", b"v2", lease_id=lease_id)       # with the lease id: allowed
    r = http("DELETE", sas_url(acct, perms="d"), headers={"x-ms-lease-id": lease_id})
    assert r.status == 202
    assert http("GET", sas_url(acct)).status == 404


def test_lease_over_http_acquire_break_release(acct: Api) -> None:
    url = sas_url(acct, perms="w").replace("?", "?comp=lease&", 1)
    r = http("PUT", url, headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "15"})
    assert r.status == 201 and r.headers["x-ms-lease-id"]
    lease_id = r.headers["x-ms-lease-id"]
    r = http("PUT", url, headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "15"})
    assert (r.status, r.code) == (409, "LeaseAlreadyPresent")
    r = http("PUT", url, headers={"x-ms-lease-action": "acquire", "x-ms-lease-duration": "61",
                                  "x-ms-proposed-lease-id": lease_id})
    assert (r.status, r.code) == (400, "InvalidHeaderValue")
    r = http("PUT", url, headers={"x-ms-lease-action": "break", "x-ms-lease-break-period": "0"})
    assert r.status == 202 and r.headers["x-ms-lease-time"] == "0"
    head = http("HEAD", sas_url(acct))
    assert head.headers["x-ms-lease-state"] == "broken" and head.headers["x-ms-lease-status"] == "unlocked"
    r = http("PUT", url, headers={"x-ms-lease-action": "release", "x-ms-lease-id": lease_id})
    assert r.status == 200
    assert http("HEAD", sas_url(acct)).headers["x-ms-lease-state"] == "available"


SIGNED = ["sv", "sr", "sp", "se", "st", "sip", "spr", "sig"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(SIGNED),
       value=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30))
def test_any_change_to_a_signed_field_is_refused_over_http(acct: Api, field: str, value: str) -> None:
    url = sas_url(acct, perms="r")
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if q.get(field) == value:
        return
    q[field] = value
    r = http("GET", f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(q)}")
    assert (r.status, r.code) == (403, "AuthenticationFailed")        # the signature covers every field
