"""gRPC servicers of the storage provider (Microsoft.Storage shapes)."""
from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import grpc

from fabric.arm import paging
from fabric.core import ids
from fabric.core.errors import ArmError, exactly, invalid
from fabric.arm.server import _stream, _unary
from fabric.storage.check import check
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES, BlobRecord, ContainerRecord, StorageAccountRecord
from fabric.storage.provider import StorageProvider, too_large
from fabric.store import keys
from fabric.v1 import storage_pb2 as pb
from fabric.v1 import storage_pb2_grpc as rpc

ACCOUNT_TYPE = "Microsoft.Storage/storageAccounts"
DOWNLOAD_CHUNK = 1024 * 1024
MAX_SAS_HOURS = 24 * 365
TEMP_CONTAINER_PREFIX = "vmextensionstemporary"


def account_msg(sub: str, rec: StorageAccountRecord, endpoint: str) -> pb.StorageAccount:
    return pb.StorageAccount(
        id=f"{ids.resource_group_id(sub, rec.resource_group)}/providers/{ACCOUNT_TYPE}/{rec.name}", name=rec.name,
        type=ACCOUNT_TYPE, location=rec.location,
        properties=pb.StorageAccountProperties(provisioning_state="Succeeded", creation_time=rec.created,
                                               primary_endpoints=pb.PrimaryEndpoints(blob=f"{endpoint}/{rec.name}/")))


def container_msg(rec: ContainerRecord) -> pb.Container:
    return pb.Container(name=rec.name, properties=pb.ContainerProperties(public_access=rec.public_access,
                                                                         last_modified=rec.created))


def blob_msg(p: StorageProvider, rec: BlobRecord) -> pb.Blob:
    state, status, duration = p.lease_view(rec)
    return pb.Blob(name=rec.name, container=rec.container, metadata=rec.metadata,
                   url=p.url(rec.account, rec.container, rec.name),
                   properties=pb.BlobProperties(
                       blob_type=rec.blob_type, content_length=rec.size, etag=rec.etag,
                       last_modified=rec.last_modified,
                       content_settings=pb.ContentSettings(content_type=rec.content_type, content_md5=rec.content_md5),
                       lease=pb.LeaseProperties(state=state, status=status, duration=duration)))


def parse_expiry(value: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid("expiry", "a UTC time like 2026-11-28T08:00:00Z") from None
    if t.tzinfo is None:
        raise invalid("expiry", "a UTC time like 2026-11-28T08:00:00Z (with the Z)")
    return t.astimezone(dt.timezone.utc).replace(microsecond=0)


class StorageAccounts(rpc.StorageAccountsServicer):
    def __init__(self, provider: StorageProvider, subscription: str) -> None:
        self.p, self.sub = provider, subscription

    @_unary
    def Create(self, req: pb.CreateStorageAccountRequest, ctx: grpc.ServicerContext) -> pb.StorageAccount:
        rec = self.p.create_account(req.resource_group, req.name, req.location)
        return account_msg(self.sub, rec, self.p.config.endpoint)

    @_unary
    def Get(self, req: pb.StorageAccountRef, ctx: grpc.ServicerContext) -> pb.StorageAccount:
        return account_msg(self.sub, self.p.account(req.name), self.p.config.endpoint)

    @_unary
    def List(self, req: pb.ListStorageAccountsRequest, ctx: grpc.ServicerContext) -> pb.ListStorageAccountsResponse:
        accounts, next_link = paging.page(self.p.list_accounts(req.resource_group), lambda a: a.key, req.max_items,
                                          req.next_token, keys.STORAGE_ACCOUNTS)
        return pb.ListStorageAccountsResponse(value=[account_msg(self.sub, a.value, self.p.config.endpoint)
                                                     for a in accounts], next_link=next_link)

    @_unary
    def ListKeys(self, req: pb.StorageAccountRef, ctx: grpc.ServicerContext) -> pb.ListStorageAccountKeysResponse:
        a = self.p.account(req.name)
        return pb.ListStorageAccountKeysResponse(keys=[
            pb.StorageAccountKey(key_name="key1", value=a.key1, permissions="FULL"),
            pb.StorageAccountKey(key_name="key2", value=a.key2, permissions="FULL")])


class Containers(rpc.ContainersServicer):
    def __init__(self, provider: StorageProvider) -> None:
        self.p = provider

    @_unary
    def Create(self, req: pb.CreateContainerRequest, ctx: grpc.ServicerContext) -> pb.Container:
        return container_msg(self.p.create_container(req.account_name, req.name, req.public_access or "off"))

    @_unary
    def List(self, req: pb.ListContainersRequest, ctx: grpc.ServicerContext) -> pb.ListContainersResponse:
        containers, next_link = paging.page(self.p.list_containers(req.account_name), lambda c: c.key,
                                            req.max_items, req.next_token, keys.containers_of(req.account_name))
        return pb.ListContainersResponse(value=[container_msg(c.value) for c in containers], next_link=next_link)

    @_unary
    def SetPermission(self, req: pb.SetContainerPermissionRequest, ctx: grpc.ServicerContext) -> pb.Container:
        return container_msg(self.p.set_public_access(req.account_name, req.name, req.public_access))


class Blobs(rpc.BlobsServicer):
    def __init__(self, provider: StorageProvider) -> None:
        self.p = provider

    def _temp_container(self) -> tuple[str, str]:
        """The reference portal's convenience: a per-location account and a fresh temporary container."""
        account = ("fabrictemp" + "".join(c for c in self.p.config.location.lower() if c.isalnum()))[:24]
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S%f")[:17]
        container = f"{TEMP_CONTAINER_PREFIX}-{secrets.token_hex(8)}-{stamp}"
        self.p.ensure_system_account(account)
        self.p.create_container(account, container)
        return account, container

    @_unary
    def Upload(self, chunks: Iterator[pb.UploadBlobChunk], ctx: grpc.ServicerContext) -> pb.Blob:
        first = next(chunks, None)
        if first is None or first.WhichOneof("part") != "header":
            raise invalid("header", "the first message of an upload is its header")
        h = first.header
        if h.sas_hours < 0 or h.sas_hours > MAX_SAS_HOURS:
            raise invalid("sasHours", f"0-{MAX_SAS_HOURS}")
        if not h.HasField("content_length"):
            raise ArmError("MissingContentLengthHeader", "contentLength is required for an upload.", "contentLength")
        if h.content_length < 0:
            raise invalid("contentLength", "the body's size in bytes, 0 or more")
        if h.content_length > MAX_BLOCK_BLOB_BYTES:
            raise too_large()
        account, container = h.account_name, h.container
        if not account and not container and h.sas_hours > 0:
            account, container = self._temp_container()
        elif not account or not container:
            raise invalid("accountName", "give the account and the container (or neither, with sasHours)")
        rec = self.p.put_blob(account, container, h.name, exactly(h.content_length, (c.data for c in chunks)),
                              h.content_type, h.lease_id)
        msg = blob_msg(self.p, rec)
        if h.sas_hours > 0:
            expiry = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=h.sas_hours)
            token, _ = self.p.generate_sas(account, container, "", "r", expiry)   # sr=c, as the reference's
            msg.sas_url = f"{self.p.url(account, container, h.name)}?{token.query()}"
            msg.guest_sas_url = f"{self.p.guest_url(account, container, h.name)}?{token.query()}"
        return msg

    @_stream
    def Download(self, req: pb.BlobRef, ctx: grpc.ServicerContext) -> Iterator[pb.BlobChunk]:
        rec = self.p.blob(req.account_name, req.container, req.name).value
        with open(self.p.body_path(rec), "rb") as f:
            while chunk := f.read(DOWNLOAD_CHUNK):
                yield pb.BlobChunk(data=chunk)

    @_unary
    def Get(self, req: pb.BlobRef, ctx: grpc.ServicerContext) -> pb.Blob:
        return blob_msg(self.p, self.p.blob(req.account_name, req.container, req.name).value)

    @_unary
    def List(self, req: pb.ListBlobsRequest, ctx: grpc.ServicerContext) -> pb.ListBlobsResponse:
        blobs, next_marker = self.p.list_blobs(req.account_name, req.container, req.prefix, req.marker,
                                               req.max_results)
        return pb.ListBlobsResponse(value=[blob_msg(self.p, b) for b in blobs], next_marker=next_marker)

    @_unary
    def Delete(self, req: pb.BlobRef, ctx: grpc.ServicerContext) -> pb.DeleteBlobResponse:
        self.p.delete_blob(req.account_name, req.container, req.name, req.lease_id)
        return pb.DeleteBlobResponse()

    @_unary
    def Lease(self, req: pb.LeaseRequest, ctx: grpc.ServicerContext) -> pb.LeaseResponse:
        period = req.break_period if req.HasField("break_period") else None
        rec = self.p.lease(req.account_name, req.container, req.name, req.action, req.duration, req.lease_id,
                           req.proposed_lease_id, period)
        lease = rec.lease_value()
        lease_time = max(0, int(lease.break_at - self.p.clock())) if req.action == "break" else 0
        return pb.LeaseResponse(lease_id=lease.id if req.action != "break" else "", lease_time=lease_time,
                                blob=blob_msg(self.p, rec))

    @_unary
    def GenerateSas(self, req: pb.GenerateSasRequest, ctx: grpc.ServicerContext) -> pb.SasResponse:
        token, url = self.p.generate_sas(req.account_name, req.container, req.name, req.permissions,
                                         parse_expiry(req.expiry))
        guest = f"{self.p.guest_url(req.account_name, req.container, req.name)}?{token.query()}"
        return pb.SasResponse(token=token.query(), url=url, guest_url=guest)


class StorageChecks(rpc.StorageChecksServicer):
    def __init__(self, provider: StorageProvider) -> None:
        self.p = provider

    @_unary
    def Check(self, req: pb.CheckRequest, ctx: grpc.ServicerContext) -> pb.CheckReport:
        return pb.CheckReport(findings=[pb.CheckFinding(kind=f.kind, subject=f.subject, message=f.message,
                                                        repairable=f.repairable, repaired=f.repaired)
                                        for f in check(self.p, req.repair)])


def add_storage_servicers(srv: grpc.Server, provider: StorageProvider, subscription: str) -> None:
    rpc.add_StorageAccountsServicer_to_server(StorageAccounts(provider, subscription), srv)
    rpc.add_ContainersServicer_to_server(Containers(provider), srv)
    rpc.add_BlobsServicer_to_server(Blobs(provider), srv)
    rpc.add_StorageChecksServicer_to_server(StorageChecks(provider), srv)

