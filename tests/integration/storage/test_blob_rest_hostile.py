"""The blob REST calls against a client that bends the protocol: each way a review found to reach further than
its credential, to make the server hold memory, or to leave data behind, refused or closed."""
from __future__ import annotations

import datetime as dt
import email.utils
from http.client import HTTPConnection
from urllib.parse import urlsplit

import pytest
from azure.storage.blob import AccountSasPermissions, BlobBlock, BlobServiceClient, ResourceTypes, generate_account_sas
from azure.core.exceptions import HttpResponseError, ResourceExistsError

from fabric.storage import sas, shared_key
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api
from tests.integration.storage.conftest import http, key1, upload
from tests.integration.storage.test_sdk_clients import EXPIRY, connection_string

SIMPLE = "/blogacct/scripts/simple.sh"


def signed(api: Api, method: str, path: str, query: str = "", headers: dict[str, str] | None = None) -> dict[str, str]:
    """Headers of a request signed with the account key for exactly this path and query."""
    h = {"x-ms-date": email.utils.format_datetime(dt.datetime.now(dt.timezone.utc), usegmt=True),
         "x-ms-version": "2021-08-06", **(headers or {})}
    to_sign = shared_key.string_to_sign(method, h.items(), "blogacct", path, query)
    return {**h, "Authorization": f"SharedKey blogacct:{sas.hmac_sha256(key1(api), to_sign)}"}


def test_an_account_sas_sets_no_response_headers(acct: Api) -> None:
    token = generate_account_sas("blogacct", key1(acct), ResourceTypes(object=True), AccountSasPermissions(read=True),
                                 EXPIRY)
    r = http("GET", f"{acct.storage.config.endpoint}{SIMPLE}?{token}&rsct=text/html&rscd=inline%0d%0aSet-Cookie:%20x=1")
    assert r.status == 200 and r.headers["content-type"] == "text/x-sh"
    assert "set-cookie" not in r.headers and "content-disposition" not in r.headers


def test_a_repeated_header_or_a_query_in_another_spelling_is_refused(acct: Api) -> None:
    endpoint = acct.storage.config.endpoint
    conn = HTTPConnection(urlsplit(endpoint).netloc, timeout=10)
    path = "/blogacct/scripts?restype=container&comp=acl"
    headers = signed(acct, "PUT", "/blogacct/scripts", "restype=container&comp=acl",
                     {"x-ms-blob-public-access": "blob", "Content-Length": "0"})
    conn.putrequest("PUT", path)
    conn.putheader("x-ms-blob-public-access", "container")            # before the signed copy
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 400 and r.getheader("x-ms-error-code") == "InvalidHeaderValue"
    assert acct.storage.container("blogacct", "scripts").value.public_access == "off"
    conn.close()
    meta = signed(acct, "GET", SIMPLE, "comp=metadata")
    assert http("GET", f"{endpoint}{SIMPLE}?comp=metadata", headers=meta).status == 200
    assert http("GET", f"{endpoint}{SIMPLE}?COMP=metadata", headers=meta).status == 400
    assert http("GET", f"{endpoint}{SIMPLE}?comp=%256detadata", headers=meta).status == 403


def test_a_container_acl_body_is_bounded_before_it_is_read(acct: Api) -> None:
    h = signed(acct, "PUT", "/blogacct/scripts", "restype=container&comp=acl",
               {"Content-Length": str(1024 * 1024 * 1024)})
    r = http("PUT", f"{acct.storage.config.endpoint}/blogacct/scripts?restype=container&comp=acl", headers=h)
    assert (r.status, r.code) == (413, "RequestBodyTooLarge")


def test_anonymous_readers_see_no_more_than_public_access_gives(acct: Api) -> None:
    acct.containers.SetPermission(pb.SetContainerPermissionRequest(account_name="blogacct", name="scripts",
                                                                    public_access="blob"))
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    service.get_container_client("scripts").set_container_metadata({"secret": "kept"})
    service.get_blob_client("scripts", "upload.bin").stage_block("aaaa", b"in progress")
    endpoint = acct.storage.config.endpoint
    r = http("GET", f"{endpoint}/blogacct/scripts?restype=container")
    assert r.status == 404 and "x-ms-meta-secret" not in r.headers        # 'blob' access: blobs only
    r = http("GET", f"{endpoint}/blogacct/scripts/upload.bin?comp=blocklist&blocklisttype=all")
    assert r.status == 404                                               # an upload going on is its writer's
    assert http("GET", f"{endpoint}{SIMPLE}").status == 200


def test_staged_blocks_go_with_their_container_and_ids_have_one_spelling(acct: Api) -> None:
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    acct.containers.Create(pb.CreateContainerRequest(account_name="blogacct", name="temp"))
    blob = service.get_blob_client("temp", "x")
    blob.stage_block("aaaa", b"old data")
    service.delete_container("temp")
    acct.containers.Create(pb.CreateContainerRequest(account_name="blogacct", name="temp"))
    with pytest.raises(HttpResponseError) as e:
        blob.commit_block_list([BlobBlock("aaaa")])
    assert e.value.status_code == 400 and "InvalidBlockList" in str(e.value)
    h = signed(acct, "PUT", "/blogacct/temp/x", "comp=block&blockid=QR==",
               {"Content-Length": "1", "Content-Type": "application/octet-stream"})
    r = http("PUT", f"{acct.storage.config.endpoint}/blogacct/temp/x?comp=block&blockid=QR==", body=b"z", headers=h)
    assert (r.status, r.code) == (400, "InvalidQueryParameterValue")


def test_an_upload_that_must_not_overwrite_is_checked_at_its_commit(acct: Api) -> None:
    """Two writers both passing `If-None-Match: *` before either commits: the second commit is refused."""
    acct.storage.put_blob("blogacct", "scripts", "race", [b"first"], if_absent=True)
    with pytest.raises(Exception) as e:
        acct.storage.put_blob("blogacct", "scripts", "race", [b"second"], if_absent=True)
    assert getattr(e.value, "code", "") == "BlobAlreadyExists"
    upload(acct, "scripts", "race2", b"x")
    blob = BlobServiceClient.from_connection_string(connection_string(acct)).get_blob_client("scripts", "race2")
    with pytest.raises(ResourceExistsError):
        blob.upload_blob(b"y")
    assert acct.storage.put_blob("blogacct", "scripts", "race", [b"third"]).size == 5
