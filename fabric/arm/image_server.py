"""The image gallery's API: `vm image list`, and images users bring (import, exclude from latest, delete)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from fabric.arm.server import _unary
from fabric.core.errors import invalid
from fabric.gallery import Gallery
from fabric.gallery.imports import delete_version, import_version, set_exclude_from_latest
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc


def image_msg(i: dict[str, Any]) -> pb.VirtualMachineImage:
    return pb.VirtualMachineImage(
        architecture=i["architecture"], publisher=i["publisher"], offer=i["offer"], sku=i["sku"],
        version=i["version"], urn=i["urn"], os_type=i["osType"], hyper_v_generation=i["hyperVGeneration"],
        exclude_from_latest=i["excludeFromLatest"], boot=i["boot"], disk_format=i["diskFormat"], sha256=i["sha256"])


class Images(rpc.ImagesServicer):
    def __init__(self, gallery: Gallery) -> None:
        self.gallery = gallery

    @_unary
    def Import(self, chunks: Iterator[pb.ImportImageChunk], ctx: grpc.ServicerContext) -> pb.VirtualMachineImage:
        first = next(chunks, None)
        if first is None or first.WhichOneof("part") != "header":
            raise invalid("header", "the first message of an import is its header")
        h = first.header
        return image_msg(import_version(self.gallery, h.publisher, h.offer, h.sku, h.version,
                                        (c.data for c in chunks), h.content_length, h.os_type or "Linux",
                                        h.hyper_v_generation or "V1", h.exclude_from_latest))

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


def add_image_servicers(srv: grpc.Server, gallery: Gallery) -> None:
    rpc.add_ImagesServicer_to_server(Images(gallery), srv)
