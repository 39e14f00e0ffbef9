"""The blob data plane: HTTP in the shape of the reference's blob service.

    GET|HEAD  /{account}/{container}/{blob}                       read (SAS sp=r, or public access); a GET
              with x-ms-range or Range `bytes=FIRST-[LAST]` reads those bytes (206, Content-Range; 416
              InvalidRange past the end), as the reference's client library reads in chunks
    PUT       /{account}/{container}/{blob}  x-ms-blob-type: BlockBlob   upload (sp=c or w)
    DELETE    /{account}/{container}/{blob}                       delete (sp=d)
    PUT       /{account}/{container}/{blob}?comp=lease  x-ms-lease-action: acquire|renew|release|break (sp=w)
    PUT       /{account}/{container}/{blob}?comp=block&blockid=ID    stage a block (`blocks`)
    PUT       /{account}/{container}/{blob}?comp=blocklist           the blob of the blocks its XML names
    GET       /{account}/{container}/{blob}?comp=blocklist[&blocklisttype=committed|uncommitted|all]
    GET       /{account}/{container}?restype=container&comp=list   list (sp=l on sr=c, or public 'container'):
              prefix, marker, maxresults, include=metadata, delimiter (BlobPrefix)
    PUT|GET   /{account}/{container}/{blob}?comp=metadata|properties   x-ms-meta-*, x-ms-blob-content-type
    PUT       /{account}/{container}/{blob}  x-ms-copy-source: URL  Copy Blob from a block blob of this fabric
    GET       /{account}?comp=list                                 list containers (account key or SAS)
    PUT|DELETE|GET /{account}/{container}?restype=container[&comp=metadata|acl]   containers: made, deleted
              (not while a blob of it is leased), their metadata and public access (account key or SAS)

Authorisation is Shared Key (the Authorization header, `shared_key`), a SAS in
the query (`sv, sr, sp, se, sig`) checked against either account key, or
anonymous access when the container's public access level allows a read. Errors are the service's XML body with `x-ms-error-code`:
403 AuthenticationFailed / AuthorizationPermissionMismatch /
AuthorizationSourceIPMismatch / AuthorizationProtocolMismatch (the plane is
plain HTTP, so `spr=https` is refused), 404 ResourceNotFound for an anonymous
request to a private container, 409/412 for leases.

Lengths are checked before anything is read: a Content-Length that is not a
number of bytes is 400 InvalidHeaderValue, an upload without one 411
MissingContentLengthHeader, over MAX_BLOCK_BLOB_BYTES 413 RequestBodyTooLarge;
Transfer-Encoding is 400 UnsupportedHeader. An upload whose body ends before
its Content-Length is 400 InvalidInput and stores nothing. A body must move
at MIN_TRANSFER_RATE_BPS on average after TRANSFER_GRACE_S, or the connection
is closed. A page blob reads as the disk's raw bytes (its virtual size).

Every answer carries x-ms-request-id (and the error message names it), the client's
x-ms-client-request-id echoed and x-ms-version; a request naming an x-ms-version that is
not a date up to today is 400 InvalidHeaderValue.

Runs in the controller, on its own port, served by http_server's bounded
server; `handler_class` is also what a stdlib server would serve.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from fabric.core.errors import ArmError
from fabric.model import now
from fabric.netio import BadLength, client_gone, declared_length, log_failure
from fabric.storage import blocks, disk_blobs, leases, sas, shared_key
from fabric.storage.http_server import BoundedHTTPServer, Limits
from fabric.storage.model import BlobRecord
from fabric.storage.model import MAX_BLOCK_BLOB_BYTES, MAX_BLOCK_BYTES, MAX_COMMITTED_BLOB_BYTES, PUBLIC_ACCESS
from fabric.storage.provider import MAX_LIST_RESULTS, StorageProvider, too_large
from fabric.storage.qemu_img import QemuImgError
from fabric.store import StoreUnavailable

log = logging.getLogger(__name__)

API_VERSION = "2015-04-05"
NO_OVERRIDES = ("", "", "", "", "")
MAX_METADATA_BYTES = 8 * 1024              # names and values of one blob's or container's metadata
_META_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ONCE_ONLY = {h.lower() for h in (*shared_key.SIGNED_HEADERS, "Authorization", "Host", "Content-Type")}
MAX_ACL_BYTES = 64 * 1024                  # a Set Container ACL body (stored policies are not offered)
DELIMITED_PAGE = 32                        # a delimited listing reads small pages: most of one may be rolled up
PAST_PREFIX = "\U0010ffff"                 # after every name under a prefix: a listing marker that skips them
MAX_CLIENT_REQUEST_ID = 1024               # the longest x-ms-client-request-id echoed (the reference's limit)
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")
CHUNK = 1024 * 1024
PROTOCOL = "http"                          # what SAS spr is checked against: the plane has no TLS
MIN_TRANSFER_RATE_BPS = 64 * 1024          # a body, either way, after its grace period
TRANSFER_GRACE_S = 30.0
_STATUS = {"BlobNotFound": 404, "ContainerNotFound": 404, "StorageAccountNotFound": 404, "ResourceNotFound": 404,
           "InvalidParameter": 400, "InvalidHeaderValue": 400, "InvalidQueryParameterValue": 400,
           "UnsupportedHttpVerb": 405, "AuthenticationFailed": 403, "AuthorizationPermissionMismatch": 403,
           "MissingRequiredHeader": 400, "StoreUnavailable": 503, "InternalError": 500, "InvalidInput": 400,
           "UnsupportedHeader": 400, "MissingContentLengthHeader": 411, "RequestBodyTooLarge": 413,
           "InvalidBlockList": 400, "InvalidXmlDocument": 400, "InvalidBlobOrBlock": 400, "InvalidRange": 416,
           "ConditionNotMet": 412, "BlobAlreadyExists": 409, "CannotVerifyCopySource": 404,
           "InvalidBlobType": 409}


def _http_date(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return email.utils.format_datetime(t, usegmt=True)


def _metadata_headers(metadata: dict[str, str]) -> dict[str, str]:
    """x-ms-meta-* of a blob or a container, by name."""
    return {f"x-ms-meta-{k}": v for k, v in sorted(metadata.items())}


def _metadata_xml(metadata: dict[str, str]) -> str:
    """A listing's <Metadata> of a blob or a container."""
    return "<Metadata>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in sorted(metadata.items())) + "</Metadata>"


def _bad_header(name: str, rule: str) -> ArmError:
    """400 InvalidHeaderValue in the reference's words, naming the header and the rule it breaks."""
    return ArmError("InvalidHeaderValue", f"The value for one of the HTTP headers is not in the correct format: "
                                          f"{rule}.", name, http_status=400)


def _parse_http_date(value: str) -> dt.datetime | None:
    """An HTTP date or a stored ISO time, as an aware datetime; None when it is neither."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _check_pace(start: float, done: int) -> None:
    """TimeoutError when a body moves slower than MIN_TRANSFER_RATE_BPS on average after TRANSFER_GRACE_S: a
    client that trickles must not hold one of the bounded workers for ever."""
    if time.monotonic() - start > TRANSFER_GRACE_S + done / MIN_TRANSFER_RATE_BPS:
        raise TimeoutError(f"the body moved slower than {MIN_TRANSFER_RATE_BPS} bytes/s")


def _file_chunks(f: BinaryIO, first: int, last: int) -> Iterator[bytes]:
    """Bytes first..last of an open file, in CHUNKs (fewer if the file is shorter)."""
    f.seek(first)
    left = last - first + 1
    while left > 0:
        chunk = f.read(min(CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


class _Handler(BaseHTTPRequestHandler):
    provider: StorageProvider
    protocol_version = "HTTP/1.1"
    server_version = "fabriclab-blob/1.0"
    sys_version = ""
    _length = -1          # the request's Content-Length, -1 when it has none
    _unread = 0           # bytes of the request body not read (the connection closes after the answer if any)
    _answered = False     # the answer's headers are sent: an error can no longer be answered, only end it
    _continue = False     # the client waits for `100 Continue` before it sends the body
    _request_id = ""      # this request's x-ms-request-id
    _size = 0             # the blob's size, for a 416's Content-Range
    _overrides: tuple[str, ...] = ()   # the SAS's response header overrides (sas.OVERRIDES' order)

    # ----- plumbing -----

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("blob %s - " + fmt, self.client_address[0], *args)

    def end_headers(self) -> None:
        self._answered = True
        super().end_headers()

    def handle_expect_100(self) -> bool:
        """`Expect: 100-continue`: the interim answer goes out only when `_body` starts reading, so a request
        refused on its headers (413, 403, ...) is answered before its body is sent."""
        self._continue = True
        return True

    def send_response(self, code: int, message: str | None = None) -> None:
        """Every answer names its request, as the service's do: x-ms-request-id (also in an error's message),
        the client's x-ms-client-request-id echoed, and the version answered."""
        super().send_response(code, message)
        self.send_header("x-ms-request-id", self._request_id)
        client_id = self.headers.get("x-ms-client-request-id", "")
        if client_id and len(client_id) <= MAX_CLIENT_REQUEST_ID:
            self.send_header("x-ms-client-request-id", client_id)
        self.send_header("x-ms-version", API_VERSION)

    def _fail(self, err: ArmError) -> None:
        status = err.http_status or _STATUS.get(err.code, 409)
        body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(err.code)}</Code>'
                f"<Message>{escape(err.message)}\nRequestId:{self._request_id}\n"
                f"Time:{dt.datetime.now(dt.timezone.utc).isoformat()}</Message></Error>").encode()
        self.close_connection = True          # a request body may be left unread
        self.send_response(status)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-ms-error-code", err.code)
        if err.code == "InvalidRange":
            self.send_header("Content-Range", f"bytes */{self._size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _route(self) -> tuple[str, str, str, dict[str, list[str]]]:
        """(account, container, blob, query): host style `{account}.blob.{domain}/{container}/{blob}`, as
        guests use it, or path style `/{account}/{container}/{blob}`, as the lab's loopback endpoint does."""
        url = urlsplit(self.path)
        query = parse_qs(url.query, keep_blank_values=True)
        odd = [k for k, v in query.items() if k != k.lower() or len(v) > 1]
        if odd:            # what a signature covers is what is routed on: one spelling, one value
            raise ArmError("InvalidQueryParameterValue", f"Query parameter '{odd[0][:40]}' is not lower case or is "
                                                         f"given more than once.", odd[0][:40], http_status=400)
        path = unquote(url.path).lstrip("/")
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        if ".blob." in host:
            path = f"{host.split('.blob.', 1)[0]}/{path}"
        parts = path.split("/", 2)
        while len(parts) < 3:
            parts.append("")
        return parts[0], parts[1], parts[2], query

    def _authorize(self, account: str, container: str, blob: str, need: str,
                   query: dict[str, list[str]], account_level: bool = False, key: bool = True) -> tuple[str, ...]:
        """Shared Key (the Authorization header: anything on its account), else a SAS in the query, else the
        container's public access level. `account_level`: managing containers, which takes the account's key
        or an account SAS. `key` False: the request's own Authorization does not count (a copy's source, read
        through its URL). Returns the response header overrides a service SAS signed (sas.OVERRIDES' order)."""
        now = dt.datetime.fromtimestamp(self.provider.clock(), dt.timezone.utc)
        authorization = self.headers.get("Authorization") if key else None
        if authorization is not None:
            acct = self.provider.account(account)
            url = urlsplit(self.path)
            try:
                shared_key.verify(authorization, self.command, self.headers.items(), account, url.path, url.query,
                                  [acct.key1, acct.key2], now)
            except sas.SasError as e:
                raise ArmError(e.code, e.message, http_status=403) from None
            return NO_OVERRIDES
        token = sas.parse(query)
        if token is None and (account_level or not container):
            raise ArmError("ResourceNotFound", "The specified resource does not exist.", http_status=404)
        if token is not None and account_level and not token.services:
            raise ArmError("AuthorizationFailure", "This request is not authorized to perform this operation: "
                                                   "containers are managed with the account key or an account SAS.",
                           http_status=403)
        if token is None:
            cont = self.provider.container(account, container).value
            public = {"blob": "r", "container": "rl"}.get(cont.public_access, "")
            if not blob and "l" not in public:       # the container itself (properties, metadata): 'container' only
                public = ""
            if need not in public:
                raise ArmError("ResourceNotFound", "The specified resource does not exist.", http_status=404)
            return NO_OVERRIDES
        acct = self.provider.account(account)
        try:
            sas.verify(token, [acct.key1, acct.key2], account, container, blob, need, now,
                       sas.Source(ip=self.client_address[0], protocol=PROTOCOL))
        except sas.SasError as e:
            raise ArmError(e.code, e.message, http_status=403) from None
        return NO_OVERRIDES if token.services else token.overrides     # an account SAS signs none

    def _handle(self, fn: Any) -> None:
        self._answered = False
        self._request_id = str(uuid.uuid4())
        self._overrides = NO_OVERRIDES
        try:
            self._check_repeats()
            self._check_version()
            self._length = self._declared_length()
            self._unread = max(0, self._length)
            fn()
        except ArmError as err:
            self._fail_or_end(err)
        except StoreUnavailable as exc:
            self._fail_or_end(ArmError("StoreUnavailable", str(exc), http_status=503))
        except Exception as exc:  # noqa: BLE001 - an HTTP client never sees a traceback
            log_failure(log, exc, f"blob {self.command} {self.path[:200]} from {self.client_address[0]}")
            if client_gone(exc):                  # went away or stalled: there is no one to answer
                self.close_connection = True
            else:
                self._fail_or_end(ArmError("InternalError", "The server encountered an internal error.",
                                           http_status=500))
        self._continue = False
        if self._unread:
            self.close_connection = True          # the rest of the body would be read as the next request

    def _fail_or_end(self, err: ArmError) -> None:
        if self._answered:                        # part of the answer is sent: end it short, never mix in an error
            log.debug("blob %s - %s %s ended short: %s", self.client_address[0], self.command, self.path[:200],
                      err.message)
            self.close_connection = True
            return
        self._fail(err)

    def _check_repeats(self) -> None:
        """A header the service acts on (x-ms-*, or one a Shared Key signature covers) given twice is refused: the
        signature would cover one copy and the service act on the other."""
        seen: set[str] = set()
        for name in self.headers.keys():
            low = name.lower()
            if low in seen and (low.startswith("x-ms-") or low in ONCE_ONLY):
                raise _bad_header(name[:60], f"{name[:60]} is given more than once")
            seen.add(low)

    def _check_version(self) -> None:
        """x-ms-version, when given: a version of the service's form that is not from the future (a client that
        names one this service cannot know is refused, as the reference refuses it); this plane answers in
        API_VERSION's shapes."""
        asked = self.headers.get("x-ms-version")
        if asked is None:
            return
        try:
            ok = bool(_VERSION.fullmatch(asked)) and \
                dt.date.fromisoformat(asked) <= dt.datetime.now(dt.timezone.utc).date()
        except ValueError:
            ok = False
        if not ok:
            raise _bad_header("x-ms-version", f"x-ms-version {asked[:40]!r} is not a version of this service "
                                              f"(YYYY-MM-DD, not after today)")

    def _range(self, size: int) -> tuple[int, int] | None:
        """The bytes a read asks for, (first, last) within the blob: x-ms-range, else Range; None for the
        whole blob. A range starting past the end is 416 InvalidRange; an x-ms-range not of the form
        `bytes=FIRST-[LAST]` is 400, a Range not of it is ignored (as HTTP lets a server do)."""
        raw, named = self.headers.get("x-ms-range"), "x-ms-range"
        if raw is None:
            raw, named = self.headers.get("Range"), "Range"
        if raw is None:
            return None
        m = _RANGE.fullmatch(raw.strip())
        if not m or (m[2] and int(m[2]) < int(m[1])):
            if named == "Range":
                return None
            raise _bad_header("x-ms-range", f"x-ms-range {raw[:60]!r} (bytes=FIRST-[LAST])")
        first = int(m[1])
        if first >= size:
            self._size = size
            raise ArmError("InvalidRange", "The range specified is invalid for the current size of the resource.",
                           http_status=416)
        return first, min(int(m[2]) if m[2] else size - 1, size - 1)

    def _declared_length(self) -> int:
        """The request's Content-Length (-1 without one), refused before reading when it is not a length."""
        try:
            length = declared_length(self.headers)
        except BadLength as e:
            if e.chunked:
                raise ArmError("UnsupportedHeader", "One of the HTTP headers specified in the request is not "
                                                    "supported: Transfer-Encoding (send the body with a "
                                                    "Content-Length).") from None
            raise _bad_header("Content-Length", e.message) from None
        return -1 if length is None else length

    def _blob_headers(self, rec: BlobRecord, length: int) -> None:
        """A blob's headers; a SAS's response overrides (rscc, rscd, rsce, rscl, rsct) set theirs."""
        state, status, duration = self.provider.lease_view(rec)
        overrides = dict(zip(sas.OVERRIDDEN_HEADERS, self._overrides))
        self.send_header("Content-Type", overrides.pop("Content-Type") or rec.content_type)
        for name, value in overrides.items():
            if value:
                self.send_header(name, value)
        self.send_header("Content-Length", str(length))
        if rec.content_md5:
            self.send_header("Content-MD5", rec.content_md5)
        self.send_header("ETag", f'"{rec.etag}"')
        self.send_header("Last-Modified", _http_date(rec.last_modified))
        self.send_header("x-ms-blob-type", rec.blob_type)
        self.send_header("x-ms-lease-state", state)
        self.send_header("x-ms-lease-status", status)
        if duration:
            self.send_header("x-ms-lease-duration", duration)
        self.send_header("Accept-Ranges", "bytes")
        for name, value in _metadata_headers(rec.metadata).items():
            self.send_header(name, value)
        if rec.copy:
            for field in ("id", "status", "source", "progress"):
                self.send_header(f"x-ms-copy-{field}", rec.copy[field])
            self.send_header("x-ms-copy-completion-time", _http_date(rec.copy["completionTime"]))

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
        comp, restype = (q.get("comp") or [""])[0], (q.get("restype") or [""])[0]
        if not container:
            if comp != "list":
                raise ArmError("InvalidQueryParameterValue", "On an account, comp=list lists its containers.",
                               "comp", http_status=400)
            self._list_containers(account, q)
            return
        if not blob:
            if restype != "container":
                raise ArmError("InvalidQueryParameterValue", "On a container, restype=container (with comp=list, "
                                                             "acl or metadata).", "restype", http_status=400)
            if comp == "list":
                self._list(account, container, q)
            else:
                self._container_properties(account, container, comp, q)
            return
        if comp == "blocklist":
            self._block_list(account, container, blob, q)
            return
        self._overrides = self._authorize(account, container, blob, "r", q)
        rec = self.provider.blob(account, container, blob).value
        if self._unchanged_since(rec, write=False):
            self._not_modified(rec)
            return
        if self.command == "HEAD" or comp == "metadata":
            self.send_response(200)
            self._blob_headers(rec, rec.size if comp != "metadata" else 0)
            self.end_headers()
            return
        window = self._range(rec.size)
        if rec.blob_type == "PageBlob":
            try:
                size, chunks = disk_blobs.disk_content(self.provider, rec, window)
            except QemuImgError as e:
                raise ArmError("InternalError", f"The disk could not be read: {e}", http_status=500) from None
            self._send(rec, size, chunks, window)
            return
        with open(self.provider.body_path(rec), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self._send(rec, size, _file_chunks(f, *(window or (0, size - 1))), window)

    def _send(self, rec: BlobRecord, size: int, chunks: Iterator[bytes], window: tuple[int, int] | None) -> None:
        """Answer 200 with exactly `size` bytes from `chunks`, or 206 with the bytes of `window` (Content-Range);
        a source that gives another number of bytes ends the connection short (the client sees the answer is
        incomplete), never longer."""
        whole = size
        if window is not None:
            size = window[1] - window[0] + 1
        self.send_response(200 if window is None else 206)
        self._blob_headers(rec, size)
        if window is not None:
            self.send_header("Content-Range", f"bytes {window[0]}-{window[1]}/{whole}")
        self.end_headers()
        start, sent = time.monotonic(), 0
        for chunk in chunks:
            if sent + len(chunk) > size:
                raise OSError(f"{rec.name}: the body grew past the {size} bytes declared")
            self.wfile.write(chunk)
            sent += len(chunk)
            _check_pace(start, sent)
        if sent != size:
            raise OSError(f"{rec.name}: {sent} of the {size} bytes declared")

    def _list(self, account: str, container: str, q: dict[str, list[str]]) -> None:
        """List Blobs: prefix, marker, maxresults, include=metadata, and a delimiter that rolls the names
        under one prefix into a BlobPrefix (the "folders" of the reference's tools)."""
        self._authorize(account, container, "", "l", q)
        prefix, marker = (q.get("prefix") or [""])[0], (q.get("marker") or [""])[0]
        delimiter = (q.get("delimiter") or [""])[0]
        limit = self._max_results(q)
        with_meta = "metadata" in ",".join(q.get("include") or []).split(",")
        entries: list[BlobRecord | str] = []           # a blob, or a BlobPrefix's name
        cursor, more = marker, True
        while more and len(entries) < limit:
            page = min(DELIMITED_PAGE, limit - len(entries)) if delimiter else limit - len(entries)
            blobs, after = self.provider.list_blobs(account, container, prefix, cursor, page)
            more = bool(after)
            for b in blobs:
                rest = b.name[len(prefix):]
                if delimiter and delimiter in rest:
                    group = prefix + rest[:rest.index(delimiter) + len(delimiter)]
                    entries.append(group)
                    cursor, more = group + PAST_PREFIX, True      # the rest of that prefix is rolled into it
                    break
                entries.append(b)
                cursor = b.name
        if more and not self.provider.list_blobs(account, container, prefix, cursor, 1)[0]:
            more = False
        items = "".join(self._blob_item(e, with_meta) if isinstance(e, BlobRecord)
                        else f"<BlobPrefix><Name>{escape(e)}</Name></BlobPrefix>" for e in entries)
        self._enumeration(account, container, prefix, marker, q, f"<Blobs>{items}</Blobs>", cursor if more else "",
                          delimiter)

    def _blob_item(self, b: BlobRecord, with_meta: bool) -> str:
        state, status, _ = self.provider.lease_view(b)
        meta = _metadata_xml(b.metadata) if with_meta else ""
        return (f"<Blob><Name>{escape(b.name)}</Name><Properties><Last-Modified>{_http_date(b.last_modified)}"
                f"</Last-Modified><Etag>{b.etag}</Etag><Content-Length>{b.size}</Content-Length>"
                f"<Content-Type>{escape(b.content_type)}</Content-Type><BlobType>{b.blob_type}</BlobType>"
                f"<LeaseStatus>{status}</LeaseStatus><LeaseState>{state}</LeaseState></Properties>{meta}</Blob>")

    @staticmethod
    def _max_results(q: dict[str, list[str]]) -> int:
        try:
            n = int((q.get("maxresults") or [str(MAX_LIST_RESULTS)])[0])
        except ValueError:
            n = 0
        if n < 1:
            raise ArmError("InvalidQueryParameterValue", f"maxresults: a whole number, 1-{MAX_LIST_RESULTS}.",
                           "maxresults", http_status=400)
        return min(n, MAX_LIST_RESULTS)

    def _enumeration(self, account: str, container: str, prefix: str, marker: str, q: dict[str, list[str]],
                     items: str, next_marker: str, delimiter: str = "") -> None:
        """An EnumerationResults answer (of containers or blobs), with what was asked echoed."""
        asked = "".join(f"<{tag}>{escape(v)}</{tag}>" for tag, v in
                        (("Prefix", prefix), ("Marker", marker), ("MaxResults", (q.get("maxresults") or [""])[0]),
                         ("Delimiter", delimiter)) if v)
        named = f' ContainerName="{escape(container)}"' if container else ""
        body = (f'<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint='
                f'"{escape(self.provider.config.endpoint)}/{account}"{named}>{asked}{items}'
                f"<NextMarker>{escape(next_marker)}</NextMarker></EnumerationResults>").encode()
        self._reply(200, body=body, xml=True)

    def _body(self) -> Iterator[bytes]:
        """The request body, exactly its Content-Length: ArmError InvalidInput when it ends early."""
        if self._continue and self._unread > 0:
            self._continue = False
            self.wfile.write(f"{self.protocol_version} 100 Continue\r\n\r\n".encode())
            self.wfile.flush()
        start = time.monotonic()
        while self._unread > 0:
            chunk = self.rfile.read(min(CHUNK, self._unread))
            if not chunk:
                got = self._length - self._unread
                raise ArmError("InvalidInput", f"One of the request inputs is not valid: the body ended after {got} "
                                               f"of the {self._length} bytes its Content-Length declares.")
            self._unread -= len(chunk)
            _check_pace(start, self._length - self._unread)
            yield chunk

    def _put(self) -> None:
        account, container, blob, q = self._route()
        comp = (q.get("comp") or [""])[0]
        if not blob:
            if not container or q.get("restype") != ["container"]:
                raise ArmError("InvalidQueryParameterValue", "PUT on a container takes restype=container (with "
                                                             "comp=metadata or acl to change one).", "restype",
                               http_status=400)
            self._put_container(account, container, comp, q)
            return
        if comp in ("metadata", "properties"):
            self._authorize(account, container, blob, "w", q)
            self._unchanged_since(self.provider.blob(account, container, blob).value, write=True)
            if comp == "metadata":
                rec = self.provider.change_blob(account, container, blob, self.headers.get("x-ms-lease-id", ""),
                                                metadata=self._metadata())
            else:
                rec = self.provider.change_blob(account, container, blob, self.headers.get("x-ms-lease-id", ""),
                                                content_type=self._content_type())
            self._changed(200, rec.etag, rec.last_modified)
            return
        if q.get("comp") == ["lease"]:
            self._lease(account, container, blob, q)
            return
        if q.get("comp") in (["block"], ["blocklist"]):
            self._blocks(account, container, blob, q)
            return
        if self.headers.get("x-ms-copy-source"):
            self._copy(account, container, blob, q)
            return
        if self._length < 0:
            raise ArmError("MissingContentLengthHeader", "Content-Length is required for an upload.",
                           "Content-Length")
        if self._length > MAX_BLOCK_BLOB_BYTES:
            raise too_large()
        cur = self._write_target(account, container, blob, q)
        if self.headers.get("x-ms-blob-type", "") != "BlockBlob":     # refused unread: the connection closes
            raise ArmError("MissingRequiredHeader", "x-ms-blob-type: BlockBlob is required.")
        metadata = self._metadata()
        self._unchanged_since(cur, write=True)
        rec = self.provider.put_blob(account, container, blob, self._body(), self._content_type(),
                                     self.headers.get("x-ms-lease-id", ""), metadata=metadata, **self._at_commit())
        self._reply(201, {"ETag": f'"{rec.etag}"', "Content-MD5": rec.content_md5})

    def _blocks(self, account: str, container: str, blob: str, q: dict[str, list[str]]) -> None:
        """Put Block (comp=block&blockid=ID: 201) and Put Block List (comp=blocklist, the XML list: 201)."""
        if self._length < 0:
            raise ArmError("MissingContentLengthHeader", "Content-Length is required for an upload.",
                           "Content-Length")
        limit = MAX_BLOCK_BYTES if q["comp"] == ["block"] else blocks.MAX_BLOCK_LIST_BYTES
        if self._length > limit:
            raise too_large(limit)
        cur = self._write_target(account, container, blob, q)
        lease_id = self.headers.get("x-ms-lease-id", "")
        if q["comp"] == ["block"]:
            blocks.put_block(self.provider, account, container, blob, (q.get("blockid") or [""])[0], self._body(),
                             lease_id)
            self._reply(201)
            return
        self._unchanged_since(cur, write=True)
        wanted = blocks.parse_block_list(b"".join(self._body()))
        rec = blocks.put_block_list(self.provider, account, container, blob, wanted, self._content_type(),
                                    lease_id, self._metadata(), **self._at_commit())
        self._changed(201, rec.etag, rec.last_modified)

    def _block_list(self, account: str, container: str, blob: str, q: dict[str, list[str]]) -> None:
        """Get Block List (comp=blocklist&blocklisttype=committed|uncommitted|all)."""
        self._authorize(account, container, blob, "r", q)
        which = (q.get("blocklisttype") or ["committed"])[0].lower()
        if which not in ("committed", "uncommitted", "all"):
            raise ArmError("InvalidQueryParameterValue", "blocklisttype is committed, uncommitted or all.",
                           "blocklisttype", http_status=400)
        anonymous = self.headers.get("Authorization") is None and sas.parse(q) is None
        rec = self.provider.find_blob(account, container, blob)
        staged = [] if anonymous else blocks.staged(self.provider, account, container, blob)   # an upload going on
        if rec is None and not staged:                                                        # is its writer's
            raise ArmError("BlobNotFound", "The specified blob does not exist.", "blobName")
        self._reply(200, body=blocks.block_list_xml(self.provider, rec, staged, "committed" if anonymous else which),
                    xml=True)

    def _metadata(self) -> dict[str, str]:
        """The request's x-ms-meta-* (names as the reference allows them: identifiers, at most 8 KiB in all);
        400 InvalidMetadata otherwise."""
        found = {k[len("x-ms-meta-"):]: v for k, v in self.headers.items() if k.lower().startswith("x-ms-meta-")}
        if any(not _META_NAME.fullmatch(k) for k in found) or \
                sum(len(k) + len(v) for k, v in found.items()) > MAX_METADATA_BYTES:
            raise ArmError("InvalidMetadata", f"The metadata specified is invalid: names are identifiers (letters, "
                                              f"digits, '_', not starting with a digit), at most "
                                              f"{MAX_METADATA_BYTES} bytes in all.", "x-ms-meta", http_status=400)
        return found


    def _reply(self, status: int, headers: Mapping[str, str] | None = None, body: bytes = b"",
               xml: bool = False) -> None:
        """A whole answer that is not a blob's body: its headers, Content-Length, and the body (none to a HEAD)."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if xml:
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _changed(self, status: int, etag: str, last_modified: str, **more: str) -> None:
        """A write's answer: the resource's new ETag and Last-Modified (and `more` headers, by name)."""
        self._reply(status, {"ETag": f'"{etag}"', "Last-Modified": _http_date(last_modified), **more})

    def _put_container(self, account: str, container: str, comp: str, q: dict[str, list[str]]) -> None:
        """Create Container (201), Set Container Metadata (comp=metadata), Set Container ACL (comp=acl: its public
        access level; stored access policies are not offered)."""
        self._authorize(account, container, "", "c" if not comp else "w", q, account_level=True)
        level = self.headers.get("x-ms-blob-public-access") or "off"
        if level not in PUBLIC_ACCESS:
            raise _bad_header("x-ms-blob-public-access", "x-ms-blob-public-access is container or blob")
        if not comp:
            rec = self.provider.create_container(account, container, level, self._metadata())
            self._changed(201, rec.etag, rec.last_modified)
        elif comp == "metadata":
            rec = self.provider.change_container(account, container, metadata=self._metadata())
            self._changed(200, rec.etag, rec.last_modified)
        elif comp == "acl":
            if self._length > MAX_ACL_BYTES:
                raise too_large(MAX_ACL_BYTES)
            body = b"".join(self._body()) if self._length > 0 else b""
            if b"<SignedIdentifier>" in body:
                raise ArmError("InvalidXmlDocument", "Stored access policies (SignedIdentifiers) are not offered by "
                                                     "this fabric: send an empty list.", http_status=400)
            rec = self.provider.set_public_access(account, container, level)
            self._changed(200, rec.etag, rec.last_modified)
        else:
            raise ArmError("InvalidQueryParameterValue", "comp is metadata or acl.", "comp", http_status=400)

    def _container_properties(self, account: str, container: str, comp: str, q: dict[str, list[str]]) -> None:
        """Get Container Properties, Metadata, or ACL (comp=acl: its public access and no stored policies)."""
        if comp not in ("", "metadata", "acl"):
            raise ArmError("InvalidQueryParameterValue", "comp is list, metadata or acl.", "comp", http_status=400)
        self._authorize(account, container, "", "r", q, account_level=comp == "acl")
        rec = self.provider.container(account, container).value
        body = b'<?xml version="1.0" encoding="utf-8"?><SignedIdentifiers />' if comp == "acl" else b""
        headers = {"ETag": f'"{rec.etag}"'}
        if rec.last_modified:
            headers["Last-Modified"] = _http_date(rec.last_modified)
        if rec.public_access != "off":
            headers["x-ms-blob-public-access"] = rec.public_access
        if comp != "acl":
            headers.update(_metadata_headers(rec.metadata))
            headers.update({"x-ms-lease-state": "available", "x-ms-lease-status": "unlocked"})
        self._reply(200, headers, body, xml=True)

    def _list_containers(self, account: str, q: dict[str, list[str]]) -> None:
        """List Containers (comp=list on the account): prefix, marker, maxresults, include=metadata."""
        self._authorize(account, "", "", "l", q, account_level=True)
        prefix, marker = (q.get("prefix") or [""])[0], (q.get("marker") or [""])[0]
        limit = self._max_results(q)
        found = [c.value for c in self.provider.list_containers(account)
                 if c.value.name.startswith(prefix) and c.value.name > marker]
        page, more = found[:limit], len(found) > limit
        with_meta = "metadata" in ",".join(q.get("include") or []).split(",")
        items = "".join(
            f"<Container><Name>{escape(c.name)}</Name><Properties>"
            f"<Last-Modified>{_http_date(c.last_modified or c.created)}</Last-Modified><Etag>{c.etag}</Etag>"
            f"<LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState>"
            + (f"<PublicAccess>{c.public_access}</PublicAccess>" if c.public_access != "off" else "")
            + "</Properties>"
            + (_metadata_xml(c.metadata) if with_meta else "")
            + "</Container>" for c in page)
        self._enumeration(account, "", prefix, marker, q, f"<Containers>{items}</Containers>",
                          page[-1].name if more and page else "")

    def _unchanged_since(self, rec: BlobRecord | None, write: bool) -> bool:
        """The request's conditions (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) against the
        blob as it is (None: there is none): True when a read is answered 304 Not Modified; 412 ConditionNotMet
        when a condition fails otherwise; 409 BlobAlreadyExists for a write that asks `If-None-Match: *` of a
        blob that exists (the client library's upload without overwrite)."""
        h = self.headers
        etag = f'"{rec.etag}"' if rec else ""
        stamp = _parse_http_date(rec.last_modified) if rec else None
        modified = stamp.replace(microsecond=0) if stamp else None           # HTTP dates are whole seconds

        if_match, if_none = self._etags("If-Match"), self._etags("If-None-Match")
        failed = if_match is not None and not (rec and ("*" in if_match or etag in if_match))
        not_modified = False
        if if_none is not None and rec and ("*" in if_none or etag in if_none):
            if write and "*" in if_none:
                raise ArmError("BlobAlreadyExists", "The specified blob already exists.", http_status=409)
            not_modified = True
        for name, after in (("If-Modified-Since", True), ("If-Unmodified-Since", False)):
            since = _parse_http_date(h.get(name) or "") if h.get(name) else None
            if since is None or modified is None:
                continue
            if after and modified <= since:
                not_modified = True
            if not after and modified > since:
                failed = True
        if failed or (not_modified and write):
            raise ArmError("ConditionNotMet", "The condition specified using HTTP conditional header(s) is not "
                                              "met.", http_status=412)
        return not_modified

    def _etags(self, name: str) -> frozenset[str] | None:
        """The ETags (or `*`) an If-Match or If-None-Match header lists; None without the header."""
        value = self.headers.get(name)
        return None if value is None else frozenset(v.strip() for v in value.split(","))

    def _at_commit(self) -> dict[str, Any]:
        """If-Match and If-None-Match: * checked again by the write's own compare-and-swap (put_blob), so that
        two writers cannot both pass them."""
        return {"if_match": self._etags("If-Match"), "if_absent": "*" in (self._etags("If-None-Match") or ())}

    def _not_modified(self, rec: BlobRecord) -> None:
        """304, with the code the reference's service gives it (its client libraries read it)."""
        self.send_response(304)
        self.send_header("x-ms-error-code", "ConditionNotMet")
        self.send_header("ETag", f'"{rec.etag}"')
        self.send_header("Last-Modified", _http_date(rec.last_modified))
        self.end_headers()

    def _copy(self, account: str, container: str, blob: str, q: dict[str, list[str]]) -> None:
        """Copy Blob from a block blob of this fabric (x-ms-copy-source: its URL, with a SAS that lets it be
        read, or public, or of this account when the request carries its key); done before the answer (202,
        x-ms-copy-status: success). A disk (page blob) is not copied this way; a source this fabric cannot
        read is 404 CannotVerifyCopySource."""
        cur = self._write_target(account, container, blob, q)
        source = self.headers["x-ms-copy-source"]
        try:
            src = self.provider.locate(source, "x-ms-copy-source")
        except ArmError as e:
            raise ArmError("InvalidHeaderValue", e.message, "x-ms-copy-source", http_status=400) from None
        src_query = parse_qs(urlsplit(source).query)
        by_key = self.headers.get("Authorization") is not None and src[0] == account
        try:
            if not by_key:
                self._authorize(*src, "r", src_query, key=False)
            rec = self.provider.blob(*src).value
        except ArmError as e:
            raise ArmError("CannotVerifyCopySource", f"The copy source cannot be read: {e.message}",
                           "x-ms-copy-source", http_status=404) from None
        if rec.blob_type != "BlockBlob":
            raise ArmError("InvalidBlobType", "The blob type is invalid for this operation: the source is a disk "
                                              "(a page blob); copy block blobs.", "x-ms-copy-source",
                           http_status=409)
        self._unchanged_since(cur, write=True)
        copy_id = str(uuid.uuid4())
        with open(self.provider.body_path(rec), "rb") as f:
            made = self.provider.put_blob(
                account, container, blob, _file_chunks(f, 0, rec.size - 1), rec.content_type,
                self.headers.get("x-ms-lease-id", ""), blocks=blocks.committed(self.provider, rec) or None,
                metadata=self._metadata() or rec.metadata,
                limit=MAX_COMMITTED_BLOB_BYTES,
                copy={"id": copy_id, "status": "success", "source": source.split("?", 1)[0],
                      "progress": f"{rec.size}/{rec.size}", "completionTime": now()})
        self._changed(202, made.etag, made.last_modified, **{"x-ms-copy-id": copy_id, "x-ms-copy-status": "success"})

    def _content_type(self) -> str:
        """The blob's content type: x-ms-blob-content-type (what the client libraries send), else the upload's
        Content-Type."""
        return (self.headers.get("x-ms-blob-content-type") or self.headers.get("Content-Type")
                or "application/octet-stream")

    def _write_target(self, account: str, container: str, blob: str, q: dict[str, list[str]]) -> BlobRecord | None:
        """The blob a write replaces (None: a new one), once the request may write it: `w`, or `c` for a new
        blob. A missing container or a bad name is answered after the authorization, as for any request."""
        try:
            cur, err = self.provider.find_blob(account, container, blob), None
        except ArmError as e:
            cur, err = None, e
        self._authorize(account, container, blob, "w" if cur else "c", q)
        if err is not None:
            raise err
        return cur

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
        headers = {}
        if lease.id and action != "break":
            headers["x-ms-lease-id"] = lease.id
        if action == "break":
            headers["x-ms-lease-time"] = str(max(0, int(lease.break_at - self.provider.clock())))
        self._reply({"acquire": 201, "break": 202}.get(action, 200), headers)

    def _delete(self) -> None:
        account, container, blob, q = self._route()
        if not blob and container and q.get("restype") == ["container"]:
            self._authorize(account, container, "", "d", q, account_level=True)
            self.provider.delete_container(account, container)
            self._reply(202)
            return
        self._authorize(account, container, blob, "d", q)
        self._unchanged_since(self.provider.blob(account, container, blob).value, write=True)
        self.provider.delete_blob(account, container, blob, self.headers.get("x-ms-lease-id", ""))
        blocks.forget(self.provider, account, container, blob)
        self._reply(202)


def handler_class(provider: StorageProvider) -> type[BaseHTTPRequestHandler]:
    """The data plane's request handler over `provider`, for any http.server-style server."""
    return type("BlobHandler", (_Handler,), {"provider": provider})


def serve(listen: str, provider: StorageProvider, limits: Limits = Limits()) -> BoundedHTTPServer:
    """Start the data plane in its own threads; returns the server (its server_address has the real port)."""
    host, port = listen.rsplit(":", 1)
    srv = BoundedHTTPServer((host, int(port)), handler_class(provider), limits)
    srv.start()
    return srv
