"""The data plane against hostile or broken requests: lengths, short bodies, page blob reads, SAS sip/spr."""
from __future__ import annotations

import datetime as dt
import shutil
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fabric.model import VmRecord
from fabric.storage import sas
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES
from fabric.store import keys
from fabric.v1 import fabric_pb2 as fpb
from tests.conftest import require
from tests.integration.conftest import Api, register_node
from tests.integration.storage.conftest import HttpResult, http

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def sas_query(api: Api, blob: str, perms: str, account: str = "blogacct", container: str = "scripts",
              ip: str = "", protocol: str = "") -> str:
    key = api.storage.account(account).key1
    return sas.sign(key, account, container, blob, perms, NOW + dt.timedelta(hours=1), ip=ip,
                    protocol=protocol).query()


def raw(api: Api, request: bytes, timeout: float = 10) -> HttpResult:
    """Send bytes as they are, half-close, and read the answer until the server closes."""
    url = urlsplit(api.storage.config.endpoint)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=timeout) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return HttpResult(int(lines[0].split()[1]), body, headers)


def put_head(api: Api, blob: str, length: str | None, extra: str = "") -> bytes:
    cl = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"PUT /blogacct/scripts/{blob}?{sas_query(api, blob, 'cw')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"x-ms-blob-type: BlockBlob\r\n{cl}{extra}\r\n").encode()


def files(api: Api) -> list[str]:
    return sorted(p.name for p in (api.storage.config.blob_root / "blogacct" / "scripts").iterdir())


def read(api: Api, blob: str) -> HttpResult:
    return http("GET", f"{api.storage.config.endpoint}/blogacct/scripts/{blob}?{sas_query(api, blob, 'r')}")


def test_a_body_shorter_than_its_content_length_stores_nothing(acct: Api) -> None:
    before, old = files(acct), read(acct, "simple.sh")
    r = raw(acct, put_head(acct, "new.sh", str(1024 * 1024)) + b"0123456789")
    assert (r.status, r.code) == (400, "InvalidInput") and "10 of the 1048576" in r.body.decode()
    assert read(acct, "new.sh").code == "BlobNotFound"
    r = raw(acct, put_head(acct, "simple.sh", "100") + b"echo replaced")     # an existing blob stays as it was
    assert r.status == 400
    now = read(acct, "simple.sh")
    assert (now.body, now.headers["etag"]) == (b"echo hello\n", old.headers["etag"])
    assert files(acct) == before                                            # no body, no temporary file


def test_a_put_over_the_largest_block_blob_is_refused_before_its_body(acct: Api) -> None:
    r = raw(acct, put_head(acct, "big.bin", str(1024 ** 3)), timeout=5)      # the 1 GiB; no body sent
    assert (r.status, r.code) == (413, "RequestBodyTooLarge")
    assert str(MAX_BLOCK_BLOB_BYTES) in r.body.decode()
    assert read(acct, "big.bin").code == "BlobNotFound"


def test_a_client_expecting_100_continue_is_refused_before_it_sends_the_body(acct: Api) -> None:
    url = urlsplit(acct.storage.config.endpoint)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=5) as s:
        s.sendall(put_head(acct, "big.bin", str(1024 ** 3), extra="Expect: 100-continue\r\n"))
        assert s.recv(65536).startswith(b"HTTP/1.1 413 ")
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=5) as s:
        s.sendall(put_head(acct, "new.sh", "6", extra="Expect: 100-continue\r\n"))
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        s.sendall(b"echo x")
        assert s.recv(65536).startswith(b"HTTP/1.1 201 ")
    assert read(acct, "new.sh").body == b"echo x"


@pytest.mark.parametrize("value", ["-1", "abc", "1e3", "0x10", "+5", "99999999999999999999999", "5, 5"])
@pytest.mark.parametrize("kind", ["upload", "lease", "read"])
def test_a_content_length_that_is_not_a_length_is_refused_naming_the_header(acct: Api, value: str, kind: str) -> None:
    if kind == "upload":
        req = put_head(acct, "new.sh", value)
    elif kind == "lease":
        req = (f"PUT /blogacct/scripts/simple.sh?comp=lease&{sas_query(acct, 'simple.sh', 'w')} HTTP/1.1\r\n"
               f"Host: x\r\nx-ms-lease-action: acquire\r\nContent-Length: {value}\r\n\r\n").encode()
    else:
        req = (f"GET /blogacct/scripts/simple.sh?{sas_query(acct, 'simple.sh', 'r')} HTTP/1.1\r\n"
               f"Host: x\r\nContent-Length: {value}\r\n\r\n").encode()
    r = raw(acct, req, timeout=5)
    assert (r.status, r.code) == (400, "InvalidHeaderValue") and "Content-Length" in r.body.decode()
    assert read(acct, "new.sh").code == "BlobNotFound"
    assert read(acct, "simple.sh").headers["x-ms-lease-state"] == "available"


def test_duplicate_content_lengths_are_refused(acct: Api) -> None:
    r = raw(acct, put_head(acct, "new.sh", "3", extra="Content-Length: 5\r\n") + b"abcde", timeout=5)
    assert (r.status, r.code) == (400, "InvalidHeaderValue")
    assert read(acct, "new.sh").code == "BlobNotFound"


def test_an_upload_without_a_length_is_refused(acct: Api) -> None:
    r = raw(acct, put_head(acct, "new.sh", None) + b"echo x", timeout=5)
    assert (r.status, r.code) == (411, "MissingContentLengthHeader")
    r = raw(acct, put_head(acct, "new.sh", None, extra="Transfer-Encoding: chunked\r\n") + b"6\r\necho x\r\n0\r\n\r\n",
            timeout=5)
    assert (r.status, r.code) == (400, "UnsupportedHeader") and "Transfer-Encoding" in r.body.decode()
    assert read(acct, "new.sh").code == "BlobNotFound"


def test_a_page_blob_read_sends_the_disks_bytes_exactly_as_declared(api: Api, tmp_path: Path) -> None:
    """An OS disk (a qcow2 overlay over the gallery VHD) reads as the disk's raw content of its virtual size."""
    require(shutil.which("qemu-io") is not None, "qemu-io (Debian qemu-utils)")
    api.groups.Create(fpb.CreateResourceGroupRequest(name="BlogRG", location="local"))
    register_node(api.store, "node-1")
    api.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name="BlogVM",
                                                   image="fabriclab:busybox:lab:latest", size="Lab_A0"))
    vm = api.store.get(keys.vm("BlogRG", "BlogVM"), VmRecord)
    assert vm is not None
    d = vm.value.os_disk
    assert d is not None
    body = Path(d.ref.path)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1M 64k", str(body)], check=True,
                   capture_output=True)
    backing = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(body)], check=True, capture_output=True,
                             text=True).stdout
    assert '"backing-filename"' in backing
    expected = tmp_path / "expected.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(body), str(expected)], check=True)
    url = f"{d.uri}?{sas_query(api, d.blob, 'r', account=d.account, container=d.container)}"
    head = http("HEAD", url)
    r = http("GET", url)
    assert r.status == 200 and r.headers["x-ms-blob-type"] == "PageBlob"
    assert int(head.headers["content-length"]) == int(r.headers["content-length"]) == d.size_bytes == len(r.body)
    assert r.body == expected.read_bytes()
    assert r.body[1024 * 1024:1024 * 1024 + 65536] == b"\xab" * 65536
    # a range across the written extent and the backing image's: the same bytes (206, Content-Range)
    first, last = 1024 * 1024 - 100, 1024 * 1024 + 65536 + 99
    part = http("GET", url, headers={"x-ms-range": f"bytes={first}-{last}"})
    assert part.status == 206 and part.headers["content-range"] == f"bytes {first}-{last}/{d.size_bytes}"
    assert part.body == expected.read_bytes()[first:last + 1]


@pytest.mark.parametrize("ip,protocol,status,code", [
    ("127.0.0.1", "", 200, ""),
    ("127.0.0.0-127.0.0.255", "https,http", 200, ""),
    ("10.1.2.3", "", 403, "AuthorizationSourceIPMismatch"),
    ("10.0.0.0-10.255.255.255", "", 403, "AuthorizationSourceIPMismatch"),
    ("", "https", 403, "AuthorizationProtocolMismatch"),      # the data plane is plain HTTP
])
def test_sas_sip_and_spr_are_enforced(acct: Api, ip: str, protocol: str, status: int, code: str) -> None:
    q = sas_query(acct, "simple.sh", "r", ip=ip, protocol=protocol)
    r = http("GET", f"{acct.storage.config.endpoint}/blogacct/scripts/simple.sh?{q}")
    assert (r.status, r.code) == (status, code)
    if code == "AuthorizationSourceIPMismatch":
        assert "using this source IP 127.0.0.1." in r.body.decode()
