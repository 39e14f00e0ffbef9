"""The image gallery's API: `vm image list`, and images users bring (import, exclude from latest, delete)."""
from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from fabric.arm.server import _unary
from fabric.arm.storage_server import DOWNLOAD_CHUNK
from fabric.core.errors import invalid
from fabric.gallery import Gallery
from fabric.gallery.imports import delete_version, import_version, set_exclude_from_latest
from fabric.storage.model import BlobRecord
from fabric.storage.provider import StorageProvider
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc


def image_msg(i: dict[str, Any]) -> pb.VirtualMachineImage:
    return pb.VirtualMachineImage(
        architecture=i["architecture"], publisher=i["publisher"], offer=i["offer"], sku=i["sku"],
        version=i["version"], urn=i["urn"], os_type=i["osType"], hyper_v_generation=i["hyperVGeneration"],
        exclude_from_latest=i["excludeFromLatest"], boot=i["boot"], disk_format=i["diskFormat"], sha256=i["sha256"])


def source_blob(storage: StorageProvider, url: str) -> BlobRecord:
    """The blob an import reads: by its URL as `blob show` prints it ({endpoint}/{account}/{container}/{blob}) or
    as guests reach it (http://{account}.blob.{domain}/{container}/{blob}); a SAS, if any, is not needed."""
    target = "sourceBlobUrl"
    parts = storage.locate(url, target)
    rec = storage.blob(*parts).value
    if rec.lease_value().state(time.time()) == "leased":
        raise invalid(target, f"blob '{parts[2]}' is leased (a disk in use): release it, or copy it, first")
    return rec


class Images(rpc.ImagesServicer):
    def __init__(self, gallery: Gallery, storage: StorageProvider) -> None:
        self.gallery = gallery
        self.storage = storage

    @_unary
    def Import(self, chunks: Iterator[pb.ImportImageChunk], ctx: grpc.ServicerContext) -> pb.VirtualMachineImage:
        first = next(chunks, None)
        if first is None or first.WhichOneof("part") != "header":
            raise invalid("header", "the first message of an import is its header")
        h = first.header
        body: Iterator[bytes] = (c.data for c in chunks)
        length = h.content_length
        if h.source_blob_url:
            path = self.storage.body_path(source_blob(self.storage, h.source_blob_url))
            length = path.stat().st_size
            body = _read(path)
        return image_msg(import_version(self.gallery, h.publisher, h.offer, h.sku, h.version, body, length,
                                        h.os_type or "Linux", h.hyper_v_generation or "V1", h.exclude_from_latest))

    @_unary
    def List(self, req: pb.ListImagesRequest, ctx: grpc.ServicerContext) -> pb.ListImagesResponse:
        return pb.ListImagesResponse(value=[image_msg(i) for i in self.gallery.images(
            req.publisher, req.offer, req.sku, every_version=req.all)])

    @_unary
    def Update(self, req: pb.UpdateImageVersionRequest, ctx: grpc.ServicerContext) -> pb.VirtualMachineImage:
        i = req.image
        return image_msg(set_exclude_from_latest(self.gallery, i.publisher, i.offer, i.sku, i.version,
                                                 req.exclude_from_latest))

    @_unary
    def Delete(self, req: pb.ImageVersionRef, ctx: grpc.ServicerContext) -> pb.DeleteImageVersionResponse:
        delete_version(self.gallery, req.publisher, req.offer, req.sku, req.version)
        return pb.DeleteImageVersionResponse()


def _read(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(DOWNLOAD_CHUNK):
            yield chunk


def add_image_servicers(srv: grpc.Server, gallery: Gallery, storage: StorageProvider) -> None:
    rpc.add_ImagesServicer_to_server(Images(gallery, storage), srv)
