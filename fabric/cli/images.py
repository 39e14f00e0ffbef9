"""fabric image import|update|delete and fabric vm image list: the gallery, and the images users bring."""
from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fabric.cli import output
from fabric.cli.client import Client, bad_option
from fabric.cli.storage import UPLOAD_CHUNK
from fabric.v1 import fabric_pb2 as pb

HEADERS = ("Architecture", "Offer", "Publisher", "Sku", "Urn", "Version")


def _row(d: dict[str, Any]) -> list[Any]:
    return [d.get("architecture"), d.get("offer"), d.get("publisher"), d.get("sku"), d.get("urn"), d.get("version")]


def image_list(c: Client, a: argparse.Namespace) -> int:
    found = c.call(c.images.List, pb.ListImagesRequest(publisher=a.publisher or "", offer=a.offer or "",
                                                       sku=a.sku or "", all=a.all)).value
    output.print_list(found, a.output, _row, HEADERS)
    return 0


def image_import(c: Client, a: argparse.Namespace) -> int:
    if bool(a.file) == bool(a.source):
        raise bad_option("file", "give the disk as --file (a local file, uploaded) or --source (a blob URL of "
                                 "this fabric), one of them")
    if a.source:
        header = pb.ImageImportHeader(publisher=a.publisher, offer=a.offer, sku=a.sku, version=a.version,
                                      os_type=a.os_type, hyper_v_generation=a.hyper_v_generation,
                                      exclude_from_latest=a.exclude_from_latest, source_blob_url=a.source)
        return _print_image(c.call(c.images.Import, iter([pb.ImportImageChunk(header=header)])), a)
    path = Path(a.file)
    if not path.is_file():
        raise bad_option("file", f"--file: no such file {path}")
    with open(path, "rb") as f:
        header = pb.ImageImportHeader(publisher=a.publisher, offer=a.offer, sku=a.sku, version=a.version,
                                      os_type=a.os_type, hyper_v_generation=a.hyper_v_generation,
                                      exclude_from_latest=a.exclude_from_latest,
                                      content_length=os.fstat(f.fileno()).st_size)

        def parts() -> Iterator[pb.ImportImageChunk]:
            yield pb.ImportImageChunk(header=header)
            while chunk := f.read(UPLOAD_CHUNK):
                yield pb.ImportImageChunk(data=chunk)
        image = c.call(c.images.Import, parts())
    return _print_image(image, a)


def _print_image(image: pb.VirtualMachineImage, a: argparse.Namespace) -> int:
    if a.output == "table":
        output.print_list([image], a.output, _row, HEADERS)
    else:
        output.print_json(image)
    return 0


def _ref(a: argparse.Namespace) -> pb.ImageVersionRef:
    parts = (a.urn or "").split(":")
    if len(parts) != 4:
        raise bad_option("urn", "--urn PUBLISHER:OFFER:SKU:VERSION (an exact version)")
    return pb.ImageVersionRef(publisher=parts[0], offer=parts[1], sku=parts[2], version=parts[3])


def image_update(c: Client, a: argparse.Namespace) -> int:
    image = c.call(c.images.Update, pb.UpdateImageVersionRequest(
        image=_ref(a), exclude_from_latest=a.exclude_from_latest == "true"))
    output.print_json(image)
    return 0


def image_delete(c: Client, a: argparse.Namespace) -> int:
    c.call(c.images.Delete, _ref(a))
    return 0


def add_image_commands(groups: argparse._SubParsersAction, vm: argparse._SubParsersAction,  # type: ignore[type-arg]
                       common: argparse.ArgumentParser) -> None:
    p = vm.add_parser("image", help="the image gallery").add_subparsers(dest="area", required=True) \
        .add_parser("list", parents=[common], help="images in the gallery (each SKU's latest, or --all)")
    for f in ("publisher", "offer", "sku"):
        p.add_argument(f"--{f}", help=f"only this {f} (case-insensitive)")
    p.add_argument("--all", action="store_true", help="every version, those excluded from latest too")
    p.set_defaults(fn=image_list)

    img = groups.add_parser("image", help="images brought to the gallery").add_subparsers(dest="cmd", required=True)
    p = img.add_parser("import", parents=[common],
                       help="publish a VHD, VHDX or qcow2 disk (partition table and bootloader) as a version")
    for f in ("publisher", "offer", "sku", "version"):
        p.add_argument(f"--{f}", required=True)
    p.add_argument("--file", help="the disk file, uploaded to the controller")
    p.add_argument("--source", metavar="BLOB_URL", help="instead of --file: a blob of this fabric (its URL)")
    p.add_argument("--os-type", default="Linux", help="Linux (the guests this fabric runs)")
    p.add_argument("--hyper-v-generation", default="V1", help="V1: boots through BIOS (V2, UEFI, is not offered)")
    p.add_argument("--exclude-from-latest", action="store_true", help="never what 'latest' resolves to")
    p.set_defaults(fn=image_import)
    p = img.add_parser("update", parents=[common], help="exclude a version from latest, or include it again")
    p.add_argument("--urn", required=True, help="PUBLISHER:OFFER:SKU:VERSION")
    p.add_argument("--exclude-from-latest", choices=("true", "false"), required=True)
    p.set_defaults(fn=image_update)
    p = img.add_parser("delete", parents=[common],
                       help="unpublish a version: VMs made from it keep running; 'latest' moves on")
    p.add_argument("--urn", required=True, help="PUBLISHER:OFFER:SKU:VERSION")
    p.set_defaults(fn=image_delete)
