"""The storage provider: accounts, containers, blobs and leases over etcd + blob bodies on disk.

Crash safety of bodies: a blob's body file is named by the record
(`{quoted name}.{etag}`); an upload writes a new body file, commits the record
by compare-and-swap, then removes the old body. A crash leaves at worst a body
file that no record names (reported and removed by `fabric storage check`),
never a record whose body is missing or half-written.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import secrets
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fabric.core.errors import ArmError, check_location, invalid
from fabric.files import TRAVERSE_DIR, ensure_dir, private_opener
from fabric.groups import require_group
from fabric.model import now
from fabric.storage import leases, names, sas
from fabric.storage.leases import LeaseError
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES, PUBLIC_ACCESS, BlobRecord, ContainerRecord, StorageAccountRecord
from fabric.store import Absent, Delete, Put, Store, Unchanged, Versioned, keys
from fabric.store.informer import informed
from fabric.store.retry import CAS

KEY_BYTES = 64
MAX_SAS_HOURS = 24 * 365
SYSTEM_GROUP = "fabriclab-system"   # owner of the fabric's own accounts


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    blob_root: Path        # bodies: {blob_root}/{account}/{container}/{body}
    location: str
    endpoint: str          # the data plane's base URL, e.g. http://127.0.0.1:7451
    domain: str = "fabriclab.test"   # guests reach account A at A.blob.{domain}


def _etag() -> str:
    return f"0x{uuid.uuid4().hex[:15].upper()}"


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


MAX_LIST_RESULTS = 5000      # the reference's largest List Blobs page


def too_large(limit: int = MAX_BLOCK_BLOB_BYTES) -> ArmError:
    return ArmError("RequestBodyTooLarge", f"The request body is too large and exceeds the maximum permissible "
                                           f"limit ({limit} bytes).", "body", http_status=413)


def _lease_error(e: LeaseError) -> ArmError:
    return ArmError(e.code, e.message, "leaseId" if e.status == 412 else "lease", http_status=e.status)


class StorageProvider:
    def __init__(self, store: Store, config: StorageConfig, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.clock = clock

    # ----- accounts -----

    def create_account(self, rg: str, name: str, location: str = "") -> StorageAccountRecord:
        names.check_account(name, "name")
        group = require_group(self.store, rg)
        location = location or group.location
        check_location(location, self.config.location)
        rec = StorageAccountRecord(name=name, resource_group=group.name, location=self.config.location,
                                   key1=_new_key(), key2=_new_key(), created=now())
        if self.store.commit([Absent(keys.storage_account(name))], [Put(keys.storage_account(name), rec)]):
            return rec
        existing = self.account(name)
        if existing.resource_group.lower() != group.name.lower():
            raise ArmError("StorageAccountAlreadyTaken", f"The storage account named {name} is already taken.", "name")
        return existing

    def ensure_system_account(self, name: str) -> StorageAccountRecord:
        """An account of the fabric itself (like the reference's temporary script store), in SYSTEM_GROUP."""
        names.check_account(name, "name")
        rec = StorageAccountRecord(name=name, resource_group=SYSTEM_GROUP, location=self.config.location,
                                   key1=_new_key(), key2=_new_key(), created=now())
        self.store.commit([Absent(keys.storage_account(name))], [Put(keys.storage_account(name), rec)])
        return self.account(name)

    def account(self, name: str) -> StorageAccountRecord:
        names.check_account(name)
        found = informed(self.store, keys.STORAGE_ACCOUNTS, StorageAccountRecord).lookup(keys.storage_account(name))
        if found is None:
            raise ArmError("StorageAccountNotFound", f"The storage account '{name}' was not found.", "accountName")
        return found.value

    def list_accounts(self, rg: str = "") -> list[Versioned[StorageAccountRecord]]:
        """The storage accounts of a group (every one for ""), by name, from the watch-fed view."""
        accounts = informed(self.store, keys.STORAGE_ACCOUNTS, StorageAccountRecord).list()
        return [a for a in accounts if not rg or a.value.resource_group.lower() == rg.lower()]

    # ----- containers -----

    def create_container(self, account: str, name: str, public_access: str = "off",
                         metadata: dict[str, str] | None = None) -> ContainerRecord:
        self.account(account)
        names.check_container(name, "name")
        self._check_access(public_access)
        stamp = now()
        rec = ContainerRecord(account=account, name=name, public_access=public_access, created=stamp,
                              metadata=metadata or {}, etag=_etag(), last_modified=stamp)
        if not self.store.commit([Absent(keys.container(account, name))], [Put(keys.container(account, name), rec)]):
            raise ArmError("ContainerAlreadyExists", "The specified container already exists.", "name")
        self.body_folder(account, name)
        return rec

    def container(self, account: str, name: str) -> Versioned[ContainerRecord]:
        self.account(account)
        names.check_container(name)
        found = informed(self.store, keys.CONTAINERS, ContainerRecord).lookup(keys.container(account, name))
        if found is None:
            raise ArmError("ContainerNotFound", "The specified container does not exist.", "containerName")
        return found

    def list_containers(self, account: str) -> list[Versioned[ContainerRecord]]:
        """An account's containers, by name, from the watch-fed view."""
        self.account(account)
        return informed(self.store, keys.CONTAINERS, ContainerRecord).under(keys.containers_of(account))

    @staticmethod
    def _check_access(level: str) -> None:
        if level not in PUBLIC_ACCESS:
            raise invalid("publicAccess", f"one of {', '.join(PUBLIC_ACCESS)}")

    def set_public_access(self, account: str, name: str, level: str) -> ContainerRecord:
        self._check_access(level)
        return self.change_container(account, name, public_access=level)

    def change_container(self, account: str, name: str, **changes: Any) -> ContainerRecord:
        """The container with `changes` (public access, metadata), a new ETag and Last-Modified."""
        for _ in CAS.attempts():
            cur = self.container(account, name)
            new = cur.value.replace(**changes, etag=_etag(), last_modified=now())
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, new)]):
                return new
        raise ArmError("Conflict", "The container is changing too often; try again.", "name")

    def delete_container(self, account: str, name: str) -> None:
        """The container and its blobs deleted; refused (409 LeaseIdMissing, nothing deleted) while one of its
        blobs is leased, as a VM's disk is: its lease goes first."""
        cur = self.container(account, name)
        found = self.store.list(keys.blobs_of(account, name), BlobRecord)
        held = [b.value.name for b in found if self.lease_view(b.value)[0] in ("leased", "breaking")]
        if held:
            raise ArmError("LeaseIdMissing", f"There is currently a lease on blob '{held[0]}' of the container "
                                             f"({len(held)} leased): release or break it before deleting the "
                                             f"container.", "containerName", http_status=409)
        for b in found:
            self.delete_blob(account, name, b.value.name)
        if not self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Delete(cur.key)]):
            raise ArmError("Conflict", "The container changed while it was deleted; try again.", "containerName")
        for folder in (self.block_state("staged", account, name), self.block_state("committed", account, name)):
            shutil.rmtree(folder, ignore_errors=True)       # staged blocks of uploads never committed go too

    def change_blob(self, account: str, container: str, name: str, lease_id: str = "", **changes: Any) -> BlobRecord:
        """The blob's record with `changes` (metadata, content type), a new ETag and Last-Modified; its body is
        unchanged. Refused as a write when a lease forbids it."""
        for _ in CAS.attempts():
            cur = self.blob(account, container, name)
            self.check_lease(cur.value, lease_id)
            new = cur.value.replace(**changes, etag=_etag(), last_modified=now())
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, new)]):
                return new
        raise ArmError("Conflict", "The blob is changing too often; try again.", "name")

    # ----- blobs -----

    def body_path(self, rec: BlobRecord) -> Path:
        return self.config.blob_root / rec.account / rec.container / rec.body

    def block_state(self, kind: str, account: str, container: str) -> Path:
        """Where a container's block uploads keep their state, apart from its bodies: `staged` blocks (a folder
        per blob) and the `committed` block lists (a file per body). Private: only the controller reads them."""
        return self.config.blob_root / f".{kind}" / account / container

    def block_list_path(self, rec: BlobRecord) -> Path:
        """The committed block list of a body made by Put Block List (a JSON list of [id, size])."""
        return self.block_state("committed", rec.account, rec.container) / rec.body

    def _drop_body(self, rec: BlobRecord) -> None:
        self.body_path(rec).unlink(missing_ok=True)
        self.block_list_path(rec).unlink(missing_ok=True)

    def body_folder(self, account: str, container: str) -> Path:
        """A container's folder of bodies, made when missing. Folders TRAVERSE_DIR (qemu opens disk bodies by
        path; nobody lists them), bodies PRIVATE: see fabric.files."""
        ensure_dir(self.config.blob_root / account, TRAVERSE_DIR)
        return ensure_dir(self.config.blob_root / account / container, TRAVERSE_DIR)

    def blob(self, account: str, container: str, name: str) -> Versioned[BlobRecord]:
        self.container(account, container)
        names.check_blob(name)
        found = self.store.get(keys.blob(account, container, name), BlobRecord)
        if found is None:
            raise ArmError("BlobNotFound", "The specified blob does not exist.", "blobName")
        return found

    def find_blob(self, account: str, container: str, name: str) -> BlobRecord | None:
        """The blob, or None when there is none (a missing container or a bad name is still an error)."""
        try:
            return self.blob(account, container, name).value
        except ArmError as e:
            if e.code == "BlobNotFound":
                return None
            raise

    def list_blobs(self, account: str, container: str, prefix: str = "", marker: str = "",
                   max_results: int = 0) -> tuple[list[BlobRecord], str]:
        """A page of the container's blobs (names starting with `prefix`) after the blob `marker` names, as the
        reference's List Blobs: at most `max_results` (0 or more than MAX_LIST_RESULTS: MAX_LIST_RESULTS), and
        the next marker ("" on the last page)."""
        self.container(account, container)
        if max_results < 0:
            raise invalid("maxresults", f"1-{MAX_LIST_RESULTS} (more is taken as {MAX_LIST_RESULTS})")
        if marker and not marker.startswith(prefix):
            raise invalid("marker", "the NextMarker of an earlier page of this same listing")
        limit = min(max_results or MAX_LIST_RESULTS, MAX_LIST_RESULTS)
        base = keys.blobs_of(account, container)
        found, more = self.store.page(base + prefix, base + marker if marker else "", limit, BlobRecord)
        return [b.value for b in found], (found[-1].value.name if more and found else "")

    def put_blob(self, account: str, container: str, name: str, chunks: Iterable[bytes],
                 content_type: str = "application/octet-stream", lease_id: str = "",
                 blocks: list[tuple[str, int]] | None = None, metadata: dict[str, str] | None = None,
                 limit: int = MAX_BLOCK_BLOB_BYTES, copy: dict[str, str] | None = None,
                 if_match: frozenset[str] | None = None, if_absent: bool = False) -> BlobRecord:
        """Create or replace a block blob (of these committed blocks, when Put Block List makes it); refused
        (nothing changed) when a lease forbids it, when the body grows past `limit` (413
        RequestBodyTooLarge), or when `chunks` raises (e.g. a body that ended early): then no record changes and
        the new body file is removed. The request's conditions hold at the commit itself: `if_absent` (409
        BlobAlreadyExists when the blob exists by then), `if_match` (412 unless its ETag is one of these)."""
        self.container(account, container)
        names.check_blob(name, "name")
        folder = self.body_folder(account, container)
        etag = _etag()
        body = f"{names.body_name(name)}.{etag}"
        path = folder / body
        md5 = hashlib.md5()
        size = 0
        try:
            with open(path, "xb", opener=private_opener) as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise too_large(limit)
                    f.write(chunk)
                    md5.update(chunk)
                f.flush()
                os.fsync(f.fileno())
            if blocks is not None:          # kept beside the body (an etcd record would outgrow its limit)
                listed = ensure_dir(self.block_state("committed", account, container)) / body
                with open(listed, "x", opener=private_opener) as lf:
                    json.dump(blocks, lf)
            rec = BlobRecord(account=account, container=container, name=name, blob_type="BlockBlob", size=size,
                             content_type=content_type or "application/octet-stream",
                             content_md5=base64.b64encode(md5.digest()).decode(), etag=etag,
                             last_modified=now(), body=body, metadata=metadata or {}, copy=copy or {})
            old = self._commit_blob(rec, lease_id, keep_metadata=metadata is None, if_match=if_match,
                                    if_absent=if_absent)
        except BaseException:
            path.unlink(missing_ok=True)
            (self.block_state("committed", account, container) / body).unlink(missing_ok=True)
            raise
        if old is not None and old.body != body:
            self._drop_body(old)
        return rec

    def check_lease(self, rec: BlobRecord, lease_id: str) -> None:
        """412 unless a write to the blob with `lease_id` is allowed by its lease."""
        try:
            leases.check_write(rec.lease_value(), lease_id, self.clock())
        except LeaseError as e:
            raise _lease_error(e) from None

    def _commit_blob(self, rec: BlobRecord, lease_id: str, keep_metadata: bool = True,
                     if_match: frozenset[str] | None = None, if_absent: bool = False) -> BlobRecord | None:
        """Write the record unless a lease forbids it (keeping the old one's metadata, unless the write gives
        its own); returns the record it replaced."""
        key = keys.blob(rec.account, rec.container, rec.name)
        for _ in CAS.attempts():
            cur = self.store.get(key, BlobRecord)
            if if_absent and cur is not None:
                raise ArmError("BlobAlreadyExists", "The specified blob already exists.", http_status=409)
            if if_match is not None and "*" not in if_match and (cur is None or f'"{cur.value.etag}"' not in if_match):
                raise ArmError("ConditionNotMet", "The condition specified using HTTP conditional header(s) is not "
                                                  "met.", http_status=412)
            if cur is not None:
                self.check_lease(cur.value, lease_id)
                new = rec.replace(lease=cur.value.lease,
                                  metadata=cur.value.metadata if keep_metadata else rec.metadata)
                if self.store.commit([Unchanged(key, cur.mod_revision)], [Put(key, new)]):
                    return cur.value
            elif self.store.commit([Absent(key)], [Put(key, rec)]):
                return None
        raise ArmError("Conflict", "The blob is changing too often; try again.", "name")

    def delete_blob(self, account: str, container: str, name: str, lease_id: str = "") -> None:
        for _ in CAS.attempts():
            cur = self.blob(account, container, name)
            self.check_lease(cur.value, lease_id)
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Delete(cur.key)]):
                self._drop_body(cur.value)
                return
        raise ArmError("Conflict", "The blob is changing too often; try again.", "name")

    # ----- leases -----

    def lease(self, account: str, container: str, name: str, action: str, duration_s: int = leases.INFINITE,
              lease_id: str = "", proposed_id: str = "", break_period_s: int | None = None) -> BlobRecord:
        """acquire | renew | change | release | break; returns the blob as it is afterwards."""
        for _ in CAS.attempts():
            cur = self.blob(account, container, name)
            lease, t = cur.value.lease_value(), self.clock()
            try:
                if action == "acquire":
                    new = leases.acquire(lease, duration_s, proposed_id or lease_id, t)
                elif action == "renew":
                    new = leases.renew(lease, lease_id, t)
                elif action == "release":
                    new = leases.release(lease, lease_id, t)
                elif action == "break":
                    new = leases.break_(lease, break_period_s, t)
                else:
                    raise invalid("action", "acquire, renew, release or break")
            except LeaseError as e:
                raise _lease_error(e) from None
            rec = cur.value.replace(lease=dataclasses.asdict(new) if new.id else {})
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, rec)]):
                return rec
        raise ArmError("Conflict", "The blob is changing too often; try again.", "name")

    def lease_view(self, rec: BlobRecord) -> tuple[str, str, str]:
        """(leaseState, leaseStatus, leaseDuration) as the service reports them now."""
        lease, t = rec.lease_value(), self.clock()
        return lease.state(t), lease.status(t), lease.duration(t)

    # ----- SAS -----

    def locate(self, url: str, target: str) -> tuple[str, str, str]:
        """(account, container, blob) of a blob URL of this fabric: as `blob show` prints it
        ({endpoint}/{account}/{container}/{blob}) or as guests reach it (http://{account}.blob.{domain}/...);
        InvalidParameter naming `target` otherwise. A query (a SAS) is not part of it."""
        u = urlsplit(url)
        endpoint, suffix = self.config.endpoint.rstrip("/"), f".blob.{self.config.domain}"
        host = (u.hostname or "").lower()
        if url.startswith(endpoint + "/"):
            parts = unquote(url[len(endpoint) + 1:].split("?", 1)[0]).split("/", 2)
        elif u.scheme in ("http", "https") and host.endswith(suffix):
            parts = [host[:-len(suffix)], *unquote(u.path).lstrip("/").split("/", 1)]
        else:
            raise invalid(target, f"a blob URL of this fabric: {endpoint}/<account>/<container>/<blob> or "
                                  f"http://<account>{suffix}/<container>/<blob>")
        if len(parts) != 3 or not all(parts):
            raise invalid(target, "the URL names no account, container and blob")
        return parts[0], parts[1], parts[2]

    def url(self, account: str, container: str, blob: str = "") -> str:
        return f"{self.config.endpoint}/{account}/{container}" + (f"/{blob}" if blob else "")

    def guest_url(self, account: str, container: str, blob: str = "") -> str:
        return f"http://{account}.blob.{self.config.domain}/{container}" + (f"/{blob}" if blob else "")

    def generate_sas(self, account: str, container: str, blob: str, permissions: str,
                     expiry: dt.datetime) -> tuple[sas.SasToken, str]:
        """(token, full URL) signed with key1; blob "" signs the whole container (sr=c)."""
        acct = self.account(account)
        self.container(account, container)
        if blob:
            names.check_blob(blob)
        try:
            perms = sas.canonical_permissions(permissions)
        except ValueError as e:
            raise invalid("permissions", str(e)) from None
        now_dt = dt.datetime.fromtimestamp(self.clock(), dt.timezone.utc)
        if expiry <= now_dt:
            raise invalid("expiry", "the expiry must be in the future (UTC)")
        if expiry - now_dt > dt.timedelta(hours=MAX_SAS_HOURS):
            raise invalid("expiry", f"at most {MAX_SAS_HOURS // 24} days ahead")
        token = sas.sign(acct.key1, account, container, blob, perms, expiry)
        return token, f"{self.url(account, container, blob)}?{token.query()}"
