"""The image files this node boots (a direct-boot image's kernel and initrd), fetched from the control plane.

A node reaches the gallery only over the controller's HTTPS endpoint (`/v1/gallery/...`, this node's
certificate presented, the controller's checked against the cluster CA). Each file is kept by its sha256,
the one the VM's assignment names: a download is written beside the cache, hashed as it arrives, and put in
place only when its length and digest are the published ones; a truncated or corrupted one is removed and
the VM's operation retries (a temporary fault), never booted. A file no assignment names any more is
evicted once unused for `keep_s` (IMAGE_KEEP_S by default: the next VM of the same image, often created
right after the last was deleted, finds it here).

    STATE/images/SHA256      0644 in a 0711 folder: qemu opens them by name
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import quote, urlsplit

from fabric.files import SHARED, TRAVERSE_DIR, ensure_dir
from fabric.model import ImageRecord
from fabric.pki import Credential

from nodeagent.storage_backends import BackendError

log = logging.getLogger("nodeagent")
FETCH_TIMEOUT_S = 60.0
IMAGE_KEEP_S = 600.0
CHUNK = 1 << 20


def digests(img: ImageRecord) -> set[str]:
    return {d for d in (img.kernel_sha256, img.initrd_sha256) if d}


class ImageCache:
    def __init__(self, folder: Path, credential: Credential, endpoint: Callable[[], str],
                 keep_s: float = IMAGE_KEEP_S) -> None:
        self.folder = folder
        self.keep_s = keep_s
        self.credential = credential
        self.endpoint = endpoint          # https://HOST:PORT of the control plane's gallery, as it last said
        self._tls: ssl.SSLContext | None = None
        self._lock = threading.Lock()

    def boot_files(self, img: ImageRecord) -> tuple[str, str]:
        """Local paths of the image's kernel and initrd, fetched and checked when not yet here."""
        return self._ensure(img, img.kernel, img.kernel_sha256), self._ensure(img, img.initrd, img.initrd_sha256)

    def _ensure(self, img: ImageRecord, published: str, sha256: str) -> str:
        name = Path(published).name
        if not sha256:
            raise BackendError(f"image {img.publisher}:{img.offer}:{img.sku}:{img.exact_version}: {name} was "
                               f"published without a sha256; this node boots nothing it cannot check",
                               temporary=False)
        path = self.folder / sha256
        if not path.exists():
            with self._lock:
                if not path.exists():
                    self._fetch(f"/v1/gallery/{quote(img.publisher)}/{quote(img.offer)}/{quote(img.sku)}/"
                                f"{quote(img.exact_version)}/{quote(name)}", sha256, path)
        os.utime(path)                        # last used now: kept IMAGE_KEEP_S from here
        return str(path)

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = self.credential.ssl_context(server=False)
        return self._tls

    def _fetch(self, url_path: str, sha256: str, dest: Path) -> None:
        base = urlsplit(self.endpoint())
        if base.scheme != "https" or not base.hostname:
            raise BackendError(f"the control plane named no gallery endpoint (got {self.endpoint()!r})")
        ensure_dir(self.folder, TRAVERSE_DIR)
        part = dest.with_name(dest.name + ".part")
        conn = http.client.HTTPSConnection(base.hostname, base.port or 443, context=self._context(),
                                           timeout=FETCH_TIMEOUT_S)
        h, got = hashlib.sha256(), 0
        try:
            conn.request("GET", url_path)
            resp = conn.getresponse()
            if resp.status != 200:
                raise BackendError(f"gallery {url_path}: HTTP {resp.status} {resp.read(500).decode(errors='replace')}")
            length = int(resp.headers.get("Content-Length", "-1"))
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SHARED)
            with os.fdopen(fd, "wb") as out:
                while chunk := resp.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    got += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except (OSError, http.client.HTTPException) as exc:
            part.unlink(missing_ok=True)
            raise BackendError(f"gallery {url_path}: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        if got != length or h.hexdigest() != sha256:
            part.unlink(missing_ok=True)
            raise BackendError(f"gallery {url_path}: got {got} bytes with sha256 {h.hexdigest()[:16]}…, published "
                               f"{length} bytes with {sha256[:16]}…: not kept, fetched again at the next try")
        os.chmod(part, SHARED)
        os.replace(part, dest)
        log.info("image file %s fetched (%d bytes, sha256 %s)", url_path, got, sha256)

    def evict(self, keep: Iterable[str], now: float | None = None) -> list[str]:
        """Remove cached files whose digest is not in `keep` and that were last used `keep_s` ago, and partial
        downloads no fetch is writing; what was removed."""
        wanted = set(keep)
        now = time.time() if now is None else now
        gone = []
        for f in self.folder.glob("*") if self.folder.is_dir() else []:
            if f.name.endswith(".part"):
                if self._lock.locked():
                    continue                          # a download in progress
            elif f.name in wanted or now - f.stat().st_mtime < self.keep_s:
                continue
            f.unlink(missing_ok=True)
            gone.append(f.name)
        return gone
