"""`fabric storage check [--repair]`: find (and mend) what leases, VMs and bodies disagree on.

Findings:
  attached-unleased       a VM's disk blob with no active lease: the reference's inconsistent state.
                          Repair: lease it again in the VM's name.
  leased-unattached       a disk blob leased for a VM that does not exist or uses another disk.
                          Repair: release the lease and drop the attachment metadata.
  body-without-metadata   a file under the blob folder that no blob record names (a crash between
                          writing a body and committing its record), older than STRAY_GRACE_S.
                          Repair: remove the file.
  metadata-without-body   a blob record whose body file is missing. Cannot be mended (the data is
                          gone): reported, the record is left for a person to decide.
  disk-missing            a VM whose OS disk blob record does not exist. Reported.
Every repair is one compare-and-swap on the record it mends, so a concurrent change wins.
"""
from __future__ import annotations

import dataclasses
import time

from fabric.model import VmRecord
from fabric.storage import leases
from fabric.storage.disk_blobs import lease_id_of
from fabric.storage.model import BlobRecord
from fabric.storage.provider import StorageProvider
from fabric.store import Put, Unchanged, Versioned, keys


STRAY_GRACE_S = 300   # a body file younger than this may belong to an upload still committing


@dataclasses.dataclass(frozen=True)
class Finding:
    kind: str
    subject: str        # a blob URL or a file path
    message: str
    repairable: bool
    repaired: bool = False


def check(provider: StorageProvider, repair: bool) -> list[Finding]:
    store = provider.store
    vms = {v.value.vm_id: v.value for v in store.list(keys.VMS, VmRecord)}
    blobs = store.list(keys.BLOBS, BlobRecord)
    findings: list[Finding] = []
    by_disk = {(d.account, d.container, d.blob): v for v in vms.values() if (d := v.os_disk) is not None}
    known = {(b.value.account, b.value.container, b.value.name) for b in blobs}
    now = provider.clock()
    for b in blobs:
        rec = b.value
        url = provider.url(rec.account, rec.container, rec.name)
        user = by_disk.get((rec.account, rec.container, rec.name))
        active = rec.lease_value().state(now) in ("leased", "breaking")
        if user is not None and user.os_disk is not None and not active:
            lease = dataclasses.asdict(
                leases.acquire(leases.Lease(), leases.INFINITE, lease_id_of(user.os_disk, user.vm_id), now))
            findings.append(_mend(provider, b, repair, Finding(
                "attached-unleased", url, f"OS disk of VM {user.name} ({user.vm_id}) has no lease", True),
                rec.replace(lease=lease)))
        elif user is None and active and rec.blob_type == "PageBlob" and rec.metadata.get("vmId"):
            detached = {k: v for k, v in rec.metadata.items() if k not in ("vmId", "attachedTo")}
            findings.append(_mend(provider, b, repair, Finding(
                "leased-unattached", url, f"leased for VM {rec.metadata['vmId']}, which does not use this disk", True),
                rec.replace(lease={}, metadata=detached)))
        if not provider.body_path(rec).exists():
            findings.append(Finding("metadata-without-body", url,
                                    f"the body file {provider.body_path(rec)} is missing", False))
    findings += _stray_bodies(provider, blobs, repair)
    for v in vms.values():
        d = v.os_disk
        if d is not None and (d.account, d.container, d.blob) not in known:
            findings.append(Finding("disk-missing", d.uri, f"VM {v.name} ({v.vm_id}) uses a disk blob that does "
                                                           "not exist", False))
    return findings


def _mend(provider: StorageProvider, b: Versioned[BlobRecord], repair: bool, f: Finding,
          mended: BlobRecord) -> Finding:
    """Write the mended record if the blob has not changed since it was read."""
    if not repair:
        return f
    ok = provider.store.commit([Unchanged(b.key, b.mod_revision)], [Put(b.key, mended)])
    return dataclasses.replace(f, repaired=ok)


def _stray_bodies(provider: StorageProvider, blobs: list[Versioned[BlobRecord]], repair: bool) -> list[Finding]:
    named = {provider.body_path(b.value) for b in blobs}
    out = []
    root = provider.config.blob_root
    young = time.time() - STRAY_GRACE_S
    for path in sorted(p for p in root.glob("*/*/*") if p.is_file()):
        if path in named or path.stat().st_mtime > young:   # young: an upload may be about to commit it
            continue
        f = Finding("body-without-metadata", str(path), "no blob record names this file", True)
        if repair:
            # read again: a body whose record was committed since the listing is not a stray
            fresh = {provider.body_path(b.value) for b in provider.store.list(keys.BLOBS, BlobRecord)}
            if path not in fresh:
                path.unlink(missing_ok=True)
                f = dataclasses.replace(f, repaired=True)
        out.append(f)
    return out
