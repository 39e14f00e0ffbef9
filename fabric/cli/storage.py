"""`fabric storage ...`: accounts, containers, blobs, leases and SAS, in az's conventions."""
from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from pathlib import Path

from fabric.cli import output
from fabric.cli.client import Client, bad_option, pages, paged
from fabric.v1 import storage_pb2 as pb

UPLOAD_CHUNK = 1024 * 1024


def _print(a: argparse.Namespace, msg: object, rows: list[list[object]] | None = None,
           headers: list[str] | None = None) -> int:
    if a.output == "table" and rows is not None and headers is not None:
        print(output.table(rows, headers))
    else:
        output.print_json(msg)
    return 0


def _blob_rows(blobs: list[pb.Blob]) -> list[list[object]]:
    return [[b.name, b.properties.blob_type, b.properties.content_length, b.properties.content_settings.content_type,
             b.properties.lease.state, b.properties.last_modified] for b in blobs]


BLOB_HEADERS = ["Name", "BlobType", "Length", "ContentType", "LeaseState", "LastModified"]


# ----- accounts and containers -----

def account_create(c: Client, a: argparse.Namespace) -> int:
    acct = c.call(c.accounts.Create, pb.CreateStorageAccountRequest(resource_group=a.resource_group, name=a.name,
                                                                    location=a.location or ""))
    return _print(a, acct)


def account_show(c: Client, a: argparse.Namespace) -> int:
    return _print(a, c.call(c.accounts.Get, pb.StorageAccountRef(name=a.name)))


def account_list(c: Client, a: argparse.Namespace) -> int:
    found = pages(c, c.accounts.List, lambda n, token: pb.ListStorageAccountsRequest(
        resource_group=a.resource_group or "", max_items=n, next_token=token), a)
    return _print(a, [output.as_dict(x) for x in found],
                  [[x.name, x.id.split("/")[4], x.location, x.properties.primary_endpoints.blob] for x in found],
                  ["Name", "ResourceGroup", "Location", "BlobEndpoint"])


def account_keys(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.accounts.ListKeys, pb.StorageAccountRef(name=a.name))
    return _print(a, [output.as_dict(k) for k in res.keys],
                  [[k.key_name, k.permissions, k.value] for k in res.keys], ["KeyName", "Permissions", "Value"])


def account_connection_string(c: Client, a: argparse.Namespace) -> int:
    """The account's connection string with its first key, as the reference's CLI prints it: what the
    reference's client libraries and tools take (`BlobEndpoint` is this fabric's data plane)."""
    acct = c.call(c.accounts.Get, pb.StorageAccountRef(name=a.name))
    key = c.call(c.accounts.ListKeys, pb.StorageAccountRef(name=a.name)).keys[0].value
    value = (f"DefaultEndpointsProtocol=http;AccountName={acct.name};AccountKey={key};"
             f"BlobEndpoint={acct.properties.primary_endpoints.blob.rstrip('/')}")
    print(value if a.output == "table" else json.dumps({"connectionString": value}, indent=2))
    return 0


def container_create(c: Client, a: argparse.Namespace) -> int:
    return _print(a, c.call(c.containers.Create, pb.CreateContainerRequest(account_name=a.account_name, name=a.name,
                                                                           public_access=a.public_access)))


def container_list(c: Client, a: argparse.Namespace) -> int:
    found = pages(c, c.containers.List, lambda n, token: pb.ListContainersRequest(
        account_name=a.account_name, max_items=n, next_token=token), a)
    return _print(a, [output.as_dict(x) for x in found],
                  [[x.name, x.properties.public_access, x.properties.last_modified] for x in found],
                  ["Name", "PublicAccess", "LastModified"])


def container_set_permission(c: Client, a: argparse.Namespace) -> int:
    return _print(a, c.call(c.containers.SetPermission, pb.SetContainerPermissionRequest(
        account_name=a.account_name, name=a.name, public_access=a.public_access)))


# ----- blobs -----

def _ref(a: argparse.Namespace) -> pb.BlobRef:
    return pb.BlobRef(account_name=a.account_name, container=a.container_name, name=a.name,
                      lease_id=getattr(a, "lease_id", "") or "")


def upload(c: Client, header: pb.BlobUploadHeader, path: Path) -> pb.Blob:
    """The file's body streamed after its header, its size declared: a file that changes size on the way, or a
    stream cut short, is refused by the server and writes nothing."""
    with open(path, "rb") as f:
        header.content_length = os.fstat(f.fileno()).st_size

        def parts() -> Iterator[pb.UploadBlobChunk]:
            yield pb.UploadBlobChunk(header=header)
            while chunk := f.read(UPLOAD_CHUNK):
                yield pb.UploadBlobChunk(data=chunk)
        blob: pb.Blob = c.call(c.blobs.Upload, parts())
    return blob


def blob_upload(c: Client, a: argparse.Namespace) -> int:
    path = Path(a.file)
    if not path.is_file():
        raise bad_option("file", f"--file: no such file {path}")
    if bool(a.account_name) != bool(a.container_name):
        raise bad_option("container-name",
                         "give --account-name and --container-name together (or neither, with --sas-hours)")
    if not a.account_name and not a.sas_hours:
        raise bad_option("account-name", "give --account-name and --container-name, or --sas-hours N for a temporary "
                         "container and a read SAS URL")
    header = pb.BlobUploadHeader(account_name=a.account_name or "", container=a.container_name or "",
                                 name=a.name or path.name, content_type=a.content_type or "",
                                 lease_id=a.lease_id or "", sas_hours=a.sas_hours or 0)
    blob = upload(c, header, path)
    if a.sas_hours and a.output != "json":
        print(blob.guest_sas_url if a.guest_uri else blob.sas_url)
        return 0
    return _print(a, blob)


def blob_download(c: Client, a: argparse.Namespace) -> int:
    dest = Path(a.file)
    tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            for chunk in c.stream(c.blobs.Download, _ref(a)):
                f.write(chunk.data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return _print(a, c.call(c.blobs.Get, _ref(a)))


def blob_list(c: Client, a: argparse.Namespace) -> int:
    """Every blob, page after page (the server's pages hold at most 5000)."""
    blobs: list[pb.Blob] = []
    marker = ""
    while True:
        res = c.call(c.blobs.List, pb.ListBlobsRequest(account_name=a.account_name, container=a.container_name,
                                                       prefix=a.prefix or "", marker=marker))
        blobs += res.value
        marker = res.next_marker
        if not marker:
            break
    return _print(a, [output.as_dict(b) for b in blobs], _blob_rows(blobs), BLOB_HEADERS)


def blob_show(c: Client, a: argparse.Namespace) -> int:
    b = c.call(c.blobs.Get, _ref(a))
    return _print(a, b, _blob_rows([b]), BLOB_HEADERS)


def blob_delete(c: Client, a: argparse.Namespace) -> int:
    c.call(c.blobs.Delete, _ref(a))
    return 0


def _lease(action: str):  # type: ignore[no-untyped-def]
    def run(c: Client, a: argparse.Namespace) -> int:
        req = pb.LeaseRequest(account_name=a.account_name, container=a.container_name, name=a.name, action=action,
                              duration=getattr(a, "lease_duration", -1), lease_id=getattr(a, "lease_id", "") or "",
                              proposed_lease_id=getattr(a, "proposed_lease_id", "") or "")
        if getattr(a, "lease_break_period", None) is not None:
            req.break_period = a.lease_break_period
        res = c.call(c.blobs.Lease, req)
        if action == "break":
            output.print_json(res.lease_time)       # seconds until the lease is broken
        elif action in ("acquire", "renew"):
            output.print_json(res.lease_id)
        return 0
    return run


def blob_generate_sas(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.blobs.GenerateSas, pb.GenerateSasRequest(account_name=a.account_name, container=a.container_name,
                                                            name=a.name or "", permissions=a.permissions,
                                                            expiry=a.expiry))
    value = res.guest_url if a.guest_uri else res.url if a.full_uri else res.token
    if a.output == "table":
        print(value)
        return 0
    output.print_json(value)
    return 0


def storage_check(c: Client, a: argparse.Namespace) -> int:
    """Exit 0 when nothing is wrong or everything found was repaired, 1 otherwise."""
    res = c.call(c.checks.Check, pb.CheckRequest(repair=a.repair))
    rows = [[f.kind, "yes" if f.repaired else ("no" if f.repairable else "cannot"), f.subject, f.message]
            for f in res.findings]
    if a.output == "json":
        output.print_json([output.as_dict(f) for f in res.findings])
    elif rows:
        print(output.table(rows, ["Finding", "Repaired", "Subject", "Detail"]))
    else:
        print("storage is consistent: every attached disk is leased, every lease attached, every body named")
    return 0 if all(f.repaired for f in res.findings) else 1


# ----- parser -----

def _blob_args(p: argparse.ArgumentParser, name_required: bool = True) -> None:
    p.add_argument("--account-name", required=True)
    p.add_argument("--container-name", "-c", required=True)
    p.add_argument("--name", "-n", required=name_required)


def add_storage_commands(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    storage = groups.add_parser("storage", help="storage accounts, containers and blobs").add_subparsers(
        dest="area", required=True)

    p = storage.add_parser("check", parents=[common], help="find (and with --repair mend) inconsistent leases and bodies")
    p.add_argument("--repair", action="store_true")
    p.set_defaults(fn=storage_check)

    acct = storage.add_parser("account").add_subparsers(dest="cmd", required=True)
    p = acct.add_parser("create", parents=[common])
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--location", "-l")
    p.set_defaults(fn=account_create)
    p = acct.add_parser("show", parents=[common])
    p.add_argument("--name", "-n", required=True)
    p.set_defaults(fn=account_show)
    p = acct.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g")
    paged(p)
    p.set_defaults(fn=account_list)
    p = acct.add_parser("show-connection-string", parents=[common],
                        help="the connection string (first key) the reference's client libraries take")
    p.add_argument("--name", "-n", required=True)
    p.set_defaults(fn=account_connection_string)
    keys = acct.add_parser("keys").add_subparsers(dest="sub", required=True)
    p = keys.add_parser("list", parents=[common])
    p.add_argument("--account-name", "--name", "-n", dest="name", required=True)
    p.set_defaults(fn=account_keys)

    cont = storage.add_parser("container").add_subparsers(dest="cmd", required=True)
    for name, fn in (("create", container_create), ("set-permission", container_set_permission)):
        p = cont.add_parser(name, parents=[common])
        p.add_argument("--name", "-n", required=True)
        p.add_argument("--account-name", required=True)
        p.add_argument("--public-access", choices=("off", "blob", "container"),
                       default="off" if name == "create" else None, required=name != "create")
        p.set_defaults(fn=fn)
    p = cont.add_parser("list", parents=[common])
    p.add_argument("--account-name", required=True)
    paged(p)
    p.set_defaults(fn=container_list)

    blob = storage.add_parser("blob").add_subparsers(dest="cmd", required=True)
    p = blob.add_parser("upload", parents=[common])
    p.add_argument("--file", "-f", required=True)
    p.add_argument("--account-name")
    p.add_argument("--container-name", "-c")
    p.add_argument("--name", "-n", help="default: the file's name")
    p.add_argument("--content-type")
    p.add_argument("--lease-id")
    p.add_argument("--sas-hours", type=int, help="also print a read SAS URL valid this many hours")
    p.add_argument("--guest-uri", action="store_true",
                   help="with --sas-hours: the URL as guests reach it (for extensions' fileUris)")
    p.set_defaults(fn=blob_upload)
    p = blob.add_parser("download", parents=[common])
    _blob_args(p)
    p.add_argument("--file", "-f", required=True)
    p.set_defaults(fn=blob_download)
    p = blob.add_parser("list", parents=[common])
    _blob_args(p, name_required=False)
    p.add_argument("--prefix")
    p.set_defaults(fn=blob_list)
    p = blob.add_parser("show", parents=[common])
    _blob_args(p)
    p.set_defaults(fn=blob_show)
    p = blob.add_parser("delete", parents=[common])
    _blob_args(p)
    p.add_argument("--lease-id")
    p.set_defaults(fn=blob_delete)
    p = blob.add_parser("generate-sas", parents=[common])
    _blob_args(p, name_required=False)
    p.add_argument("--permissions", required=True, help="letters of racwdl")
    p.add_argument("--expiry", required=True, help="UTC, e.g. 2026-11-28T08:00:00Z")
    p.add_argument("--full-uri", action="store_true", help="print the whole URL, not only the token")
    p.add_argument("--guest-uri", action="store_true",
                   help="print the URL as VMs reach it: http://ACCOUNT.blob.DOMAIN/...")
    p.set_defaults(fn=blob_generate_sas)

    lease = blob.add_parser("lease").add_subparsers(dest="sub", required=True)
    p = lease.add_parser("acquire", parents=[common])
    _blob_args(p)
    p.add_argument("--lease-duration", type=int, default=-1, help="-1 (infinite) or 15-60 seconds")
    p.add_argument("--proposed-lease-id")
    p.set_defaults(fn=_lease("acquire"))
    for action in ("renew", "release"):
        p = lease.add_parser(action, parents=[common])
        _blob_args(p)
        p.add_argument("--lease-id", required=True)
        p.set_defaults(fn=_lease(action))
    p = lease.add_parser("break", parents=[common])
    _blob_args(p)
    p.add_argument("--lease-break-period", type=int)
    p.set_defaults(fn=_lease("break"))
