"""The blob data plane as the reference's own client library (azure-storage-blob, from PyPI) uses it: what a user
does with a SAS URL the fabric gave them. The library reads in ranges (x-ms-range, 206 + Content-Range), in
parallel chunks for a large blob, and an empty blob through a 416."""
from __future__ import annotations

import base64
import datetime as dt
import email.utils
import json
import os
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceModifiedError, ResourceNotFoundError)
from azure.storage.blob import (AccountSasPermissions, BlobBlock, BlobClient, BlobSasPermissions, BlobServiceClient,
                                ContainerClient, ContainerSasPermissions, ContentSettings, ResourceTypes,
                                generate_account_sas, generate_blob_sas, generate_container_sas)

from fabric.storage import sas, shared_key
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES, MAX_BLOCK_BYTES, BlobRecord
from fabric.store import keys
from fabric.v1 import storage_pb2 as pb
from tests.integration.conftest import Api
from tests.integration.storage.conftest import http, key1, upload
from tests.integration.test_cli import fabric

EXPIRY = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)


def sas_url(api: Api, blob: str, perms: str = "r") -> str:
    res = api.blobs.GenerateSas(pb.GenerateSasRequest(account_name="blogacct", container="scripts", name=blob,
                                                      permissions=perms, expiry=EXPIRY.strftime(sas.TIME_FORMAT)))
    return f"{api.storage.config.endpoint}/blogacct/scripts/{blob}?{res.token}"


def test_the_client_library_downloads_through_a_sas_url(acct: Api) -> None:
    client = BlobClient.from_blob_url(sas_url(acct, "simple.sh"))
    assert client.download_blob().readall() == b"echo hello\n"
    assert client.download_blob(offset=5, length=5).readall() == b"hello"
    props = client.get_blob_properties()
    assert props.size == 11 and props.blob_type == "BlockBlob" and props.etag


def test_a_large_blob_comes_in_parallel_ranges(acct: Api) -> None:
    data = os.urandom(9 * 1024 * 1024 + 7)
    upload(acct, "scripts", "big.bin", data)
    client = BlobClient.from_blob_url(sas_url(acct, "big.bin"), max_single_get_size=1024 * 1024,
                                      max_chunk_get_size=1024 * 1024)
    assert client.download_blob(max_concurrency=4).readall() == data
    assert client.download_blob(offset=8 * 1024 * 1024, max_concurrency=2).readall() == data[8 * 1024 * 1024:]


def test_an_empty_blob_downloads_as_nothing(acct: Api) -> None:
    upload(acct, "scripts", "empty", b"")
    assert BlobClient.from_blob_url(sas_url(acct, "empty")).download_blob().readall() == b""


def test_ranges_past_the_end_and_malformed_ones_are_refused_as_the_reference_does(acct: Api) -> None:
    url = sas_url(acct, "simple.sh")
    r = http("GET", url, headers={"x-ms-range": "bytes=11-20"})
    assert (r.status, r.code, r.headers["content-range"]) == (416, "InvalidRange", "bytes */11")
    r = http("GET", url, headers={"x-ms-range": "bytes=5-"})
    assert (r.status, r.body, r.headers["content-range"]) == (206, b"hello\n", "bytes 5-10/11")
    r = http("GET", url, headers={"Range": "bytes=0-3", "x-ms-range": "bytes=5-9"})       # x-ms-range first
    assert (r.status, r.body) == (206, b"hello")
    for bad in ("bytes=9-5", "lines=1-2", "bytes=-3"):
        r = http("GET", url, headers={"x-ms-range": bad})
        assert (r.status, r.code) == (400, "InvalidHeaderValue"), bad
    assert http("GET", url, headers={"Range": "bytes=-3"}).status == 200         # a Range it cannot read: ignored
    with pytest.raises(HttpResponseError) as e:
        BlobClient.from_blob_url(url).download_blob(offset=64).readall()
    assert e.value.status_code == 416


def test_every_answer_names_its_request_and_unknown_versions_are_refused(acct: Api) -> None:
    url = sas_url(acct, "simple.sh")
    r = http("GET", url, headers={"x-ms-client-request-id": "lab-42", "x-ms-version": "2021-08-06"})
    assert r.status == 200 and r.headers["x-ms-client-request-id"] == "lab-42" and r.headers["x-ms-request-id"]
    assert r.headers["accept-ranges"] == "bytes" and r.headers["date"]
    refused = http("GET", url, headers={"x-ms-version": "2999-01-01"})
    assert (refused.status, refused.code) == (400, "InvalidHeaderValue")
    assert refused.headers["x-ms-request-id"] in refused.body.decode()
    assert http("GET", url, headers={"x-ms-version": "yesterday"}).status == 400


def connection_string(api: Api, key: str = "") -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName=blogacct;AccountKey={key or key1(api)};"
            f"BlobEndpoint={api.storage.config.endpoint}/blogacct")


def test_the_client_library_uploads_and_reads_with_the_account_key(acct: Api) -> None:
    printed = fabric(acct.address, "storage", "account", "show-connection-string", "-n", "blogacct")
    assert printed.returncode == 0, printed.stderr
    cs = json.loads(printed.stdout)["connectionString"]
    assert cs == connection_string(acct)                       # the reference CLI's shape, with key1
    service = BlobServiceClient.from_connection_string(cs)
    blob = service.get_blob_client("scripts", "notes/today.txt")
    blob.upload_blob(b"written by the client library\n", overwrite=True,
                     content_settings=ContentSettings(content_type="text/plain"))
    assert blob.download_blob().readall() == b"written by the client library\n"
    assert blob.get_blob_properties().content_settings.content_type == "text/plain"
    shown = acct.blobs.Get(pb.BlobRef(account_name="blogacct", container="scripts", name="notes/today.txt"))
    assert shown.properties.content_length == 30
    blob.delete_blob()
    assert not blob.exists()


def test_a_wrong_key_or_a_stale_date_is_refused(acct: Api) -> None:
    other = base64.b64encode(b"not the account's key, 32 bytes!").decode()
    with pytest.raises(ClientAuthenticationError) as e:
        BlobServiceClient.from_connection_string(connection_string(acct, other)).get_blob_client(
            "scripts", "simple.sh").download_blob().readall()
    assert e.value.status_code == 403 and "AuthenticationFailed" in str(e.value)
    stale = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=20), usegmt=True)
    url = f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh"
    headers = {"x-ms-date": stale, "x-ms-version": "2021-08-06"}
    to_sign = shared_key.string_to_sign("GET", headers.items(), "blogacct", "/blogacct/scripts/simple.sh", "")
    headers["Authorization"] = f"SharedKey blogacct:{sas.hmac_sha256(key1(acct), to_sign)}"
    r = http("GET", url, headers=headers)
    assert (r.status, r.code) == (403, "AuthenticationFailed") and "too old" in r.body.decode()
    headers["x-ms-date"] = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc), usegmt=True)
    assert http("GET", url, headers=headers).status == 403                  # signed for another date
    del headers["Authorization"]
    to_sign = shared_key.string_to_sign("GET", headers.items(), "blogacct", "/blogacct/scripts/simple.sh", "")
    headers["Authorization"] = f"SharedKey blogacct:{sas.hmac_sha256(key1(acct), to_sign)}"
    assert http("GET", url, headers=headers).body == b"echo hello\n"


def test_a_large_upload_goes_in_blocks_and_the_block_list_says_which(acct: Api) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    blob = BlobServiceClient.from_connection_string(connection_string(acct), max_single_put_size=1024 * 1024,
                                                    max_block_size=256 * 1024).get_blob_client("scripts", "big.bin")
    blob.upload_blob(data, overwrite=True, max_concurrency=3)
    assert blob.download_blob().readall() == data
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 13 and sum(b.size for b in committed) == len(data) and uncommitted == []

    # a new version: one block staged (an id of the length of the blob's others; the library Base64s ids), the
    # first committed block kept
    head = "h" * len(committed[0].id)
    blob.stage_block(head, b"new head ")
    assert [b.id for b in blob.get_block_list("uncommitted")[1]] == [head]
    blob.commit_block_list([BlobBlock(head), BlobBlock(committed[0].id)])
    assert blob.download_blob().readall() == b"new head " + data[:256 * 1024]
    assert blob.get_block_list("uncommitted")[1] == []          # a commit drops what it did not name


def test_bad_block_lists_are_refused_and_change_nothing(acct: Api) -> None:
    blob = BlobServiceClient.from_connection_string(connection_string(acct)).get_blob_client("scripts", "simple.sh")
    with pytest.raises(HttpResponseError) as e:
        blob.commit_block_list([BlobBlock("never-sent")])
    assert e.value.status_code == 400 and "InvalidBlockList" in str(e.value)
    blob.stage_block("aaaa", b"x")
    with pytest.raises(HttpResponseError) as e:
        blob.stage_block("aaaaaa", b"y")                  # another length than the blob's other block
    assert e.value.status_code == 400 and "InvalidBlobOrBlock" in str(e.value)
    url = sas_url(acct, "simple.sh", "rw")
    for bad_id in ("not%20base64!", base64.b64encode(b"x" * 65).decode()):
        r = http("PUT", url.replace("?", f"?comp=block&blockid={bad_id}&"), body=b"x")
        assert (r.status, r.code) == (400, "InvalidQueryParameterValue"), bad_id
    for body in (b"<BlockList><Latest>YWFhYQ==</Latest>", b"<Blocks><Latest>YWFhYQ==</Latest></Blocks>"):
        r = http("PUT", url.replace("?", "?comp=blocklist&"), body=body)
        assert (r.status, r.code) == (400, "InvalidXmlDocument"), body
    assert blob.download_blob().readall() == b"echo hello\n"


def test_sas_tokens_the_client_library_signs_with_the_account_key(acct: Api) -> None:
    """Service SAS (a blob's, a container's) and account SAS, of the library's own (current) signed version,
    with the response header overrides it can sign."""
    endpoint, key = f"{acct.storage.config.endpoint}/blogacct", key1(acct)
    blob_sas = generate_blob_sas("blogacct", "scripts", "simple.sh", account_key=key,
                                 permission=BlobSasPermissions(read=True), expiry=EXPIRY,
                                 content_type="text/plain", content_disposition="attachment")
    assert parse_qs(blob_sas)["sv"][0] > "2020-12-06"
    r = http("GET", f"{endpoint}/scripts/simple.sh?{blob_sas}")
    assert (r.status, r.body, r.headers["content-type"]) == (200, b"echo hello\n", "text/plain")
    assert r.headers["content-disposition"] == "attachment"
    container_sas = generate_container_sas("blogacct", "scripts", account_key=key, expiry=EXPIRY,
                                           permission=ContainerSasPermissions(read=True, list=True))
    names = [b.name for b in ContainerClient(endpoint, "scripts", credential=container_sas).list_blobs()]
    assert names == ["simple.sh"]
    account_sas = generate_account_sas("blogacct", key, ResourceTypes(object=True),
                                       AccountSasPermissions(read=True, write=True, create=True), EXPIRY)
    client = BlobClient(endpoint, "scripts", "by-account-sas.txt", credential=account_sas)
    client.upload_blob(b"made with an account SAS", overwrite=True)
    assert client.download_blob().readall() == b"made with an account SAS"
    only_containers = generate_account_sas("blogacct", key, ResourceTypes(container=True),
                                           AccountSasPermissions(read=True), EXPIRY)
    r = http("GET", f"{endpoint}/scripts/simple.sh?{only_containers}")
    assert (r.status, r.code) == (403, "AuthorizationResourceTypeMismatch")


@pytest.mark.parametrize("change,code", [
    (lambda q: q.replace("sp=r", "sp=rw"), "AuthenticationFailed"),           # tampered
    (lambda q: q.replace("sr=b", "sr=c"), "AuthenticationFailed"),
    (lambda q: q + "&skoid=00000000-0000-0000-0000-000000000000", "AuthenticationFailed"),   # user delegation
    (lambda q: q + "&si=policy", "AuthenticationFailed"),                     # a stored access policy
])
def test_a_tampered_or_unoffered_library_sas_is_refused(acct: Api, change: Callable[[str], str], code: str) -> None:
    token = generate_blob_sas("blogacct", "scripts", "simple.sh", account_key=key1(acct),
                              permission=BlobSasPermissions(read=True), expiry=EXPIRY)
    r = http("GET", f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh?{change(token)}")
    assert (r.status, r.code) == (403, code), r.body
    expired = generate_blob_sas("blogacct", "scripts", "simple.sh", account_key=key1(acct),
                                permission=BlobSasPermissions(read=True),
                                expiry=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    r = http("GET", f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh?{expired}")
    assert (r.status, r.code) == (403, "AuthenticationFailed")


def test_containers_and_metadata_through_the_client_library(acct: Api) -> None:
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    made = service.create_container("photos", metadata={"owner": "lab1"}, public_access="blob")
    props = made.get_container_properties()
    assert props.metadata == {"owner": "lab1"} and props.public_access == "blob"
    assert sorted(c.name for c in service.list_containers()) == ["photos", "scripts"]
    assert [c.name for c in service.list_containers(name_starts_with="ph", include_metadata=True)] == ["photos"]
    assert next(iter(service.list_containers(include_metadata=True, name_starts_with="ph"))).metadata == \
        {"owner": "lab1"}
    made.set_container_metadata({"owner": "lab2", "course": "dc101"})
    assert made.get_container_properties().metadata == {"owner": "lab2", "course": "dc101"}
    made.set_container_access_policy({}, public_access="container")
    assert made.get_container_access_policy()["public_access"] == "container"
    with pytest.raises(ResourceExistsError):
        service.create_container("photos")

    for name in ("2026/01/a.jpg", "2026/01/b.jpg", "2026/02/c.jpg", "index.html"):
        made.upload_blob(name, b"x", metadata={"camera": "lab"})
    assert [b.name for b in made.walk_blobs(delimiter="/")] == ["2026/", "index.html"]
    assert [b.name for b in made.walk_blobs(name_starts_with="2026/", delimiter="/")] == ["2026/01/", "2026/02/"]
    listed = list(made.list_blobs(include=["metadata"], results_per_page=2))
    assert [b.name for b in listed] == ["2026/01/a.jpg", "2026/01/b.jpg", "2026/02/c.jpg", "index.html"]
    assert all(b.metadata == {"camera": "lab"} for b in listed)
    blob = made.get_blob_client("index.html")
    blob.set_blob_metadata({"checked": "yes"})
    blob.set_http_headers(ContentSettings(content_type="text/html"))
    props_b = blob.get_blob_properties()
    assert props_b.metadata == {"checked": "yes"} and props_b.content_settings.content_type == "text/html"
    assert http("GET", f"{acct.storage.config.endpoint}/blogacct/photos/index.html").body == b"x"    # public

    made.delete_container()
    assert sorted(c.name for c in service.list_containers()) == ["scripts"]
    assert acct.store.list(keys.blobs_of("blogacct", "photos"), BlobRecord) == []      # its blobs went with it


def test_a_container_holding_a_leased_blob_is_not_deleted(acct: Api) -> None:
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    service.get_blob_client("scripts", "simple.sh").acquire_lease()
    with pytest.raises(HttpResponseError) as e:
        service.delete_container("scripts")
    assert e.value.status_code == 409 and "lease" in str(e.value)
    assert service.get_blob_client("scripts", "simple.sh").download_blob().readall() == b"echo hello\n"


def test_managing_containers_takes_the_key_and_bad_metadata_is_refused(acct: Api) -> None:
    container_sas = sas_url(acct, "simple.sh").split("?", 1)[1]
    r = http("PUT", f"{acct.storage.config.endpoint}/blogacct/other?restype=container&{container_sas}")
    assert (r.status, r.code) == (403, "AuthorizationFailure")
    r = http("PUT", f"{acct.storage.config.endpoint}/blogacct/other?restype=container")
    assert r.status == 404
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    with pytest.raises(HttpResponseError) as e:
        service.get_blob_client("scripts", "simple.sh").set_blob_metadata({"1st": "no"})
    assert e.value.status_code == 400 and "InvalidMetadata" in str(e.value)
    assert sorted(c.name for c in service.list_containers()) == ["scripts"]


def test_conditional_requests_answer_304_412_and_an_upload_does_not_overwrite_unasked(acct: Api) -> None:
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    blob = service.get_blob_client("scripts", "simple.sh")
    with pytest.raises(ResourceExistsError):
        blob.upload_blob(b"replaced?")                          # the library's default: If-None-Match: *
    assert blob.download_blob().readall() == b"echo hello\n"
    etag = blob.get_blob_properties().etag
    with pytest.raises(ResourceModifiedError):
        blob.download_blob(etag='"0x0"', match_condition=MatchConditions.IfNotModified).readall()
    assert blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified).readall() == \
        b"echo hello\n"
    # 304 Not Modified, with the ConditionNotMet code the reference's service gives it (which the library
    # raises as ResourceModifiedError)
    with pytest.raises(ResourceModifiedError) as not_modified:
        blob.get_blob_properties(etag=etag, match_condition=MatchConditions.IfModified)
    assert not_modified.value.status_code == 304
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)
    with pytest.raises(ResourceModifiedError) as not_modified:
        blob.download_blob(if_modified_since=later).readall()
    assert not_modified.value.status_code == 304
    with pytest.raises(ResourceModifiedError):
        blob.delete_blob(etag='"0x0"', match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):
        blob.set_blob_metadata({"a": "b"}, if_unmodified_since=dt.datetime.now(dt.timezone.utc) -
                               dt.timedelta(days=1))
    assert blob.exists() and blob.get_blob_properties().metadata == {}
    blob.upload_blob(b"replaced", overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified)
    assert blob.download_blob().readall() == b"replaced"


def test_a_block_blob_grows_past_the_single_put_limit_and_a_block_has_its_own(acct: Api) -> None:
    """Put Blob stops at 64 MiB (the reference's at this service version); a blob made of blocks does not, and
    one block stops at 100 MiB, refused on its Content-Length before its body is read."""
    data = os.urandom(MAX_BLOCK_BLOB_BYTES + 3)
    blob = BlobServiceClient.from_connection_string(connection_string(acct), max_single_put_size=8 * 1024 * 1024,
                                                    max_block_size=8 * 1024 * 1024).get_blob_client("scripts", "65m")
    blob.upload_blob(data, overwrite=True, max_concurrency=2)
    assert blob.get_blob_properties().size == len(data)
    assert blob.download_blob(offset=MAX_BLOCK_BLOB_BYTES - 2).readall() == data[-5:]
    url = sas_url(acct, "other", "cw")
    r = http("PUT", url.replace("?", "?comp=block&blockid=YWFhYQ==&"),
             headers={"Content-Length": str(MAX_BLOCK_BYTES + 1)})
    assert (r.status, r.code) == (413, "RequestBodyTooLarge")


def test_copy_blob_from_a_url_of_this_fabric(acct: Api) -> None:
    service = BlobServiceClient.from_connection_string(connection_string(acct))
    dest = service.get_blob_client("scripts", "copies/simple.sh")
    done = dest.start_copy_from_url(f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh")     # same account
    assert done["copy_status"] == "success"
    assert dest.download_blob().readall() == b"echo hello\n"
    props = dest.get_blob_properties()
    assert props.copy.status == "success" and (props.copy.source or "").endswith("/blogacct/scripts/simple.sh")
    assert props.content_settings.content_type == "text/x-sh"

    # another account's blob: readable through the SAS in its URL, not through this account's key
    acct.accounts.Create(pb.CreateStorageAccountRequest(resource_group="RG", name="otheracct"))
    acct.containers.Create(pb.CreateContainerRequest(account_name="otheracct", name="src"))
    upload(acct, "src", "notes.txt", b"from the other account", account="otheracct")
    bare = f"{acct.storage.config.endpoint}/otheracct/src/notes.txt"
    with pytest.raises(ResourceNotFoundError) as unreadable:
        dest.start_copy_from_url(bare)
    assert "CannotVerifyCopySource" in str(unreadable.value)
    token = acct.blobs.GenerateSas(pb.GenerateSasRequest(account_name="otheracct", container="src", name="notes.txt",
                                                         permissions="r", expiry=EXPIRY.strftime(sas.TIME_FORMAT)))
    dest.start_copy_from_url(f"{bare}?{token.token}")
    assert dest.download_blob().readall() == b"from the other account"
    with pytest.raises(HttpResponseError) as e:
        dest.start_copy_from_url("http://elsewhere.invalid/a/b/c")
    assert e.value.status_code == 400
