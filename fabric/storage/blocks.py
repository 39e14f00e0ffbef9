"""Block blobs made of blocks, as the reference's client libraries upload a large file: Put Block stages a block
under its id (uncommitted), Put Block List makes the blob of the blocks it names, in its order (each the
uncommitted block of that id, or the blob's committed one), and Get Block List says which blocks there are.

A staged block is a file of its own, in a private folder per blob apart from the container's bodies; a commit
reads the blocks named into a new body through the provider's put_blob (so a lease, the size limit and a
failure half-way behave as for any upload), keeps the committed list (id, size) in a file beside it, and drops
the staged blocks, as the reference does. Deleting the container drops every staged block of it. Block ids are Base64 of at most 64 bytes, all of one length for one blob.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from fabric.core.errors import ArmError
from fabric.files import ensure_dir, private_opener
from fabric.storage import names
from fabric.storage.model import MAX_BLOCKS, MAX_COMMITTED_BLOB_BYTES, BlobRecord
from fabric.storage.provider import StorageProvider

MAX_BLOCK_ID_BYTES = 64
MAX_BLOCK_LIST_BYTES = 4 * 1024 * 1024     # a Put Block List body: 50,000 ids fit
CHUNK = 1024 * 1024
KINDS = ("Latest", "Committed", "Uncommitted")


@dataclasses.dataclass(frozen=True)
class Block:
    id: str         # as the client gave it (Base64)
    size: int


def check_id(block_id: str) -> bytes:
    """A block id's bytes; 400 InvalidQueryParameterValue naming blockid when it is not Base64 of 1-64 bytes."""
    try:
        raw = base64.b64decode(block_id, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not 1 <= len(raw) <= MAX_BLOCK_ID_BYTES or base64.b64encode(raw).decode() != block_id:   # one spelling
        raise ArmError("InvalidQueryParameterValue", f"Value for one of the query parameters specified in the request "
                                                     f"URI is invalid: blockid is Base64 of 1-{MAX_BLOCK_ID_BYTES} "
                                                     f"bytes (canonical padding).", "blockid", http_status=400)
    return raw


def _staging(p: StorageProvider, account: str, container: str, blob: str) -> Path:
    return p.block_state("staged", account, container) / names.body_name(blob)


def committed(p: StorageProvider, rec: BlobRecord | None) -> list[tuple[str, int]]:
    """The committed blocks of a blob made by Put Block List ([] for one put whole)."""
    if rec is None:
        return []
    try:
        return [(str(i), int(n)) for i, n in json.loads(p.block_list_path(rec).read_text())]
    except FileNotFoundError:
        return []


def _block_file(folder: Path, raw_id: bytes) -> Path:
    return folder / raw_id.hex()


def staged(p: StorageProvider, account: str, container: str, blob: str) -> list[Block]:
    """The blob's uncommitted blocks, oldest first."""
    folder = _staging(p, account, container, blob)
    found = []
    try:
        files = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for f in files:
        if f.name.startswith("."):            # a block being written
            continue
        try:
            st = f.stat()
        except FileNotFoundError:             # committed or replaced meanwhile
            continue
        found.append((st.st_mtime_ns, f.name, st.st_size))
    return [Block(base64.b64encode(bytes.fromhex(name)).decode(), size) for _, name, size in sorted(found)]


def put_block(p: StorageProvider, account: str, container: str, blob: str, block_id: str,
              chunks: Iterable[bytes], lease_id: str = "") -> None:
    """Stage one block (replacing a staged block of the same id). Refused, nothing staged: a bad id, an id of
    another length than the blob's other blocks (400 InvalidBlobOrBlock), a lease the request does not hold,
    too many blocks, a body that ends early."""
    p.container(account, container)
    names.check_blob(blob)
    raw = check_id(block_id)
    rec = p.find_blob(account, container, blob)
    if rec is not None:
        p.check_lease(rec, lease_id)
    staging = staged(p, account, container, blob)
    known = [*committed(p, rec), *((b.id, b.size) for b in staging)]
    if any(len(base64.b64decode(other)) != len(raw) for other, _ in known):
        raise ArmError("InvalidBlobOrBlock", "The specified blob or block content is invalid: all block ids of a "
                                             "blob have the same length.", "blockid", http_status=400)
    folder = ensure_dir(_staging(p, account, container, blob))
    if len({b.id for b in staging} | {block_id}) > MAX_BLOCKS:
        raise ArmError("BlockCountExceedsLimit", f"The uncommitted block count cannot exceed {MAX_BLOCKS}.",
                       http_status=409)
    target = _block_file(folder, raw)
    tmp = folder / f".part-{target.name}"
    try:
        with open(tmp, "wb", opener=private_opener) as f:
            for chunk in chunks:
                f.write(chunk)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_block_list(body: bytes) -> list[tuple[str, str]]:
    """(kind, id) of a Put Block List body, in order; 400 InvalidXmlDocument when it is not one."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise ArmError("InvalidXmlDocument", f"XML specified is not syntactically valid: {e}.",
                       http_status=400) from None
    if root.tag != "BlockList" or any(e.tag not in KINDS or len(e) for e in root):
        raise ArmError("InvalidXmlDocument", "XML specified is not syntactically valid: a BlockList of Latest, "
                                             "Committed and Uncommitted ids.", http_status=400)
    out = [(e.tag, (e.text or "").strip()) for e in root]
    for _, block_id in out:
        check_id(block_id)
    if len(out) > MAX_BLOCKS:
        raise ArmError("BlockListTooLong", f"The block list may not contain more than {MAX_BLOCKS} blocks.",
                       http_status=400)
    return out


def put_block_list(p: StorageProvider, account: str, container: str, blob: str, wanted: list[tuple[str, str]],
                   content_type: str, lease_id: str = "", metadata: dict[str, str] | None = None,
                   **conditions: Any) -> BlobRecord:
    """The blob made of the blocks named; 400 InvalidBlockList (nothing changed) when one is not there."""
    rec = p.find_blob(account, container, blob)
    at: dict[str, tuple[int, int]] = {}           # a committed block's (offset, size) in the current body
    offset = 0
    for bid, size in committed(p, rec):
        at[bid] = (offset, size)
        offset += size
    folder = _staging(p, account, container, blob)
    uncommitted = {b.id: b.size for b in staged(p, account, container, blob)}
    parts: list[tuple[Path, int, int]] = []            # (file, offset, size)
    blocks: list[tuple[str, int]] = []
    for kind, bid in wanted:
        if kind != "Committed" and bid in uncommitted:
            parts.append((_block_file(folder, check_id(bid)), 0, uncommitted[bid]))
            blocks.append((bid, uncommitted[bid]))
        elif kind != "Uncommitted" and bid in at and rec is not None:
            start, size = at[bid]
            parts.append((p.body_path(rec), start, size))
            blocks.append((bid, size))
        else:
            raise ArmError("InvalidBlockList", f"The specified block list is invalid: no {kind.lower()} block "
                                               f"{bid[:100]!r}.", http_status=400)
    made = p.put_blob(account, container, blob, _read(parts), content_type, lease_id, blocks=blocks,
                      metadata=metadata, limit=MAX_COMMITTED_BLOB_BYTES, **conditions)
    shutil.rmtree(folder, ignore_errors=True)
    return made


def _read(parts: list[tuple[Path, int, int]]) -> Iterator[bytes]:
    for path, offset, size in parts:
        with open(path, "rb") as f:
            f.seek(offset)
            left = size
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{path} ends before its block does")
                left -= len(chunk)
                yield chunk


def forget(p: StorageProvider, account: str, container: str, blob: str) -> None:
    """The blob's staged blocks dropped (the blob is deleted)."""
    shutil.rmtree(_staging(p, account, container, blob), ignore_errors=True)


def block_list_xml(p: StorageProvider, rec: BlobRecord | None, uncommitted: list[Block], which: str) -> bytes:
    """Get Block List's answer: committed, uncommitted or all."""
    def section(tag: str, blocks: Iterable[tuple[str, int]]) -> str:
        inner = "".join(f"<Block><Name>{bid}</Name><Size>{size}</Size></Block>" for bid, size in blocks)
        return f"<{tag}>{inner}</{tag}>"
    body = ""
    if which in ("committed", "all"):
        body += section("CommittedBlocks", committed(p, rec))
    if which in ("uncommitted", "all"):
        body += section("UncommittedBlocks", ((b.id, b.size) for b in uncommitted))
    return f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'.encode()
