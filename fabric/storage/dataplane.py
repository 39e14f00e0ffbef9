"""The blob data plane: HTTP in the shape of the reference's blob service.

    GET|HEAD  /{account}/{container}/{blob}                       read (SAS sp=r, or public access)
    PUT       /{account}/{container}/{blob}  x-ms-blob-type: BlockBlob   upload (sp=c or w)
    DELETE    /{account}/{container}/{blob}                       delete (sp=d)
    PUT       /{account}/{container}/{blob}?comp=lease  x-ms-lease-action: acquire|renew|release|break (sp=w)
    GET       /{account}/{container}?restype=container&comp=list   list (sp=l on sr=c, or public 'container')

Authorisation is a SAS in the query (`sv, sr, sp, se, sig`) checked against
either account key, or anonymous access when the container's public access
level allows a read. Errors are the service's XML body with `x-ms-error-code`:
403 AuthenticationFailed / AuthorizationPermissionMismatch, 404
ResourceNotFound for an anonymous request to a private container, 409/412 for
leases. Runs in the controller, on its own port.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import logging
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from fabric.arm.errors import ArmError
from fabric.storage import leases, sas
from fabric.storage.model import BlobRecord
from fabric.storage.provider import StorageProvider
from fabric.store import StoreUnavailable

log = logging.getLogger(__name__)

API_VERSION = "2015-04-05"
CHUNK = 1024 * 1024
_STATUS = {"BlobNotFound": 404, "ContainerNotFound": 404, "StorageAccountNotFound": 404, "ResourceNotFound": 404,
           "InvalidParameter": 400, "InvalidHeaderValue": 400, "InvalidQueryParameterValue": 400,
           "UnsupportedHttpVerb": 405, "AuthenticationFailed": 403, "AuthorizationPermissionMismatch": 403,
           "MissingRequiredHeader": 400, "StoreUnavailable": 503, "InternalError": 500}


def _http_date(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return email.utils.format_datetime(t, usegmt=True)


class _Handler(BaseHTTPRequestHandler):
    provider: StorageProvider
    protocol_version = "HTTP/1.1"
    server_version = "fabriclab-blob/1.0"
    sys_version = ""

    # ----- plumbing -----

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("blob %s - " + fmt, self.client_address[0], *args)

    def _fail(self, err: ArmError) -> None:
        status = err.http_status or _STATUS.get(err.code, 409)
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(err.code)}</Code>'
                f"<Message>{escape(err.message)}\nRequestId:{uuid.uuid4()}\n"
                f"Time:{dt.datetime.now(dt.timezone.utc).isoformat()}</Message></Error>").encode()
        self.close_connection = True          # a request body may be left unread
        self.send_response(status)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-ms-error-code", err.code)
        self.send_header("x-ms-version", API_VERSION)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> tuple[str, str, str, dict[str, list[str]]]:
        """(account, container, blob, query): host style `{account}.blob.{domain}/{container}/{blob}`, as
        guests use it, or path style `/{account}/{container}/{blob}`, as the lab's loopback endpoint does."""
        url = urlsplit(self.path)
        path = unquote(url.path).lstrip("/")
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if ".blob." in host:
            path = f"{host.split('.blob.', 1)[0]}/{path}"
        parts = path.split("/", 2)
        while len(parts) < 3:
            parts.append("")
        return parts[0], parts[1], parts[2], parse_qs(url.query)

    def _authorize(self, account: str, container: str, blob: str, need: str,
                   query: dict[str, list[str]]) -> None:
        token = sas.parse(query)
        if token is None:
            cont = self.provider.container(account, container).value
            public = {"blob": "r", "container": "rl"}.get(cont.public_access, "")
            if need not in public:
                raise ArmError("ResourceNotFound", "The specified resource does not exist.", http_status=404)
            return
        acct = self.provider.account(account)
        try:
            sas.verify(token, [acct.key1, acct.key2], account, container, blob, need,
                       dt.datetime.fromtimestamp(self.provider.clock(), dt.timezone.utc))
        except sas.SasError as e:
            raise ArmError(e.code, e.message, http_status=403) from None

    def _handle(self, fn: Any) -> None:
        try:
            fn()
        except ArmError as err:
            self._fail(err)
        except StoreUnavailable as exc:
            self._fail(ArmError("StoreUnavailable", str(exc), http_status=503))
        except Exception:  # noqa: BLE001 - an HTTP client never sees a traceback
            log.exception("blob data plane")
            self._fail(ArmError("InternalError", "The server encountered an internal error.", http_status=500))

    def _blob_headers(self, rec: BlobRecord) -> None:
        state, status, duration = self.provider.lease_view(rec)
        self.send_header("Content-Type", rec.content_type)
        self.send_header("Content-Length", str(rec.size))
        if rec.content_md5:
            self.send_header("Content-MD5", rec.content_md5)
        self.send_header("ETag", f'"{rec.etag}"')
        self.send_header("Last-Modified", _http_date(rec.last_modified))
        self.send_header("x-ms-blob-type", rec.blob_type)
        self.send_header("x-ms-lease-state", state)
        self.send_header("x-ms-lease-status", status)
        if duration:
            self.send_header("x-ms-lease-duration", duration)
        self.send_header("x-ms-version", API_VERSION)

    # ----- verbs -----

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._handle(self._get)

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle(self._get)

    def do_PUT(self) -> None:  # noqa: N802
        self._handle(self._put)

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle(self._delete)

    def _get(self) -> None:
        account, container, blob, q = self._route()
        if not blob:
            if q.get("restype") == ["container"] and q.get("comp") == ["list"]:
                self._list(account, container, q)
                return
            raise ArmError("InvalidQueryParameterValue", "Use restype=container&comp=list to list a container.")
        self._authorize(account, container, blob, "r", q)
        rec = self.provider.blob(account, container, blob).value
        self.send_response(200)
        self._blob_headers(rec)
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(self.provider.body_path(rec), "rb") as f:
            while chunk := f.read(CHUNK):
                self.wfile.write(chunk)

    def _list(self, account: str, container: str, q: dict[str, list[str]]) -> None:
        self._authorize(account, container, "", "l", q)
        prefix = (q.get("prefix") or [""])[0]
        items = "".join(
            f"<Blob><Name>{escape(b.name)}</Name><Properties><Last-Modified>{_http_date(b.last_modified)}"
            f"</Last-Modified><Etag>{b.etag}</Etag><Content-Length>{b.size}</Content-Length>"
            f"<Content-Type>{escape(b.content_type)}</Content-Type><BlobType>{b.blob_type}</BlobType>"
            f"<LeaseStatus>{self.provider.lease_view(b)[1]}</LeaseStatus>"
            f"<LeaseState>{self.provider.lease_view(b)[0]}</LeaseState></Properties></Blob>"
            for b in self.provider.list_blobs(account, container, prefix))
        body = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint='
                f'"{escape(self.provider.config.endpoint)}/{account}" ContainerName="{escape(container)}">'
                f"<Blobs>{items}</Blobs><NextMarker/></EnumerationResults>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        while length > 0:
            chunk = self.rfile.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk

    def _put(self) -> None:
        account, container, blob, q = self._route()
        if not blob:
            raise ArmError("UnsupportedHttpVerb", "Create containers through the fabric API.", http_status=405)
        if q.get("comp") == ["lease"]:
            self._lease(account, container, blob, q)
            return
        self._authorize(account, container, blob, "w" if self._exists(account, container, blob) else "c", q)
        if self.headers.get("x-ms-blob-type", "") != "BlockBlob":
            for _ in self._body():
                pass
            raise ArmError("MissingRequiredHeader", "x-ms-blob-type: BlockBlob is required.")
        rec = self.provider.put_blob(account, container, blob, self._body(),
                                     self.headers.get("Content-Type", "application/octet-stream"),
                                     self.headers.get("x-ms-lease-id", ""))
        self.send_response(201)
        self.send_header("ETag", f'"{rec.etag}"')
        self.send_header("Content-MD5", rec.content_md5)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _exists(self, account: str, container: str, blob: str) -> bool:
        try:
            self.provider.blob(account, container, blob)
            return True
        except ArmError:
            return False

    def _lease(self, account: str, container: str, blob: str, q: dict[str, list[str]]) -> None:
        self._authorize(account, container, blob, "w", q)
        h = self.headers
        action = h.get("x-ms-lease-action", "")
        try:
            duration = int(h.get("x-ms-lease-duration", str(leases.INFINITE)))
            period = int(h["x-ms-lease-break-period"]) if h.get("x-ms-lease-break-period") else None
        except ValueError:
            raise ArmError("InvalidHeaderValue", "x-ms-lease-duration and x-ms-lease-break-period are integers.",
                           http_status=400) from None
        rec = self.provider.lease(account, container, blob, action, duration, h.get("x-ms-lease-id", ""),
                                  h.get("x-ms-proposed-lease-id", ""), period)
        lease = rec.lease_value()
        self.send_response({"acquire": 201, "break": 202}.get(action, 200))
        if lease.id and action != "break":
            self.send_header("x-ms-lease-id", lease.id)
        if action == "break":
            self.send_header("x-ms-lease-time", str(max(0, int(lease.break_at - self.provider.clock()))))
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _delete(self) -> None:
        account, container, blob, q = self._route()
        self._authorize(account, container, blob, "d", q)
        self.provider.delete_blob(account, container, blob, self.headers.get("x-ms-lease-id", ""))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(listen: str, provider: StorageProvider) -> ThreadingHTTPServer:
    """Start the data plane in a thread; returns the server (its server_address has the real port)."""
    host, port = listen.rsplit(":", 1)
    handler = type("BlobHandler", (_Handler,), {"provider": provider})
    srv = ThreadingHTTPServer((host, int(port)), handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True, name="blob-dataplane").start()
    return srv
