"""The controller's HTTPS endpoint, beside its gRPC API: joining, and the gallery's files. The controller's
certificate; a client certificate asked for and checked when given, not required (a joining node has none
yet):

    GET  /v1/cluster-info   {"ca": PEM, "controller": "HOST:PORT"}       public: the node checks the CA's hash
    POST /v1/join           {"token", "node", "csr"} -> {"certificate", "controller"}   the token decides
    GET  /v1/gallery/PUBLISHER/OFFER/SKU/VERSION/FILE                    an enrolled node's certificate: a file of
                                                                         a published image (the node checks its
                                                                         sha256 against its assignment's)

Errors are {"error": {code, message, target}} with 400 (bad field), 401 (token refused), 409 (name enrolled,
or a race), 503 (etcd away). Each connection gets JOIN_IO_TIMEOUT_S per socket operation, its TLS handshake
included (done in the connection's own thread, never in the accepting one); bodies are at most MAX_BODY_BYTES.
"""
from __future__ import annotations

import json
import shutil
import logging
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509

from fabric.core.errors import ArmError, Kind
from fabric.enrollment import Enrollment
from fabric.gallery import Gallery
from fabric.netio import TlsHttpServer
from fabric.pki import Credential, PkiError, identity_of
from fabric.store import StoreUnavailable

log = logging.getLogger(__name__)

JOIN_IO_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 16 * 1024
_STATUS = {Kind.INVALID: 400, Kind.DENIED: 401, Kind.EXISTS: 409, Kind.ABORTED: 409, Kind.NOT_FOUND: 404,
           Kind.UNAVAILABLE: 503, Kind.PRECONDITION: 409}


class _Handler(BaseHTTPRequestHandler):
    server: JoinServer
    protocol_version = "HTTP/1.1"
    timeout = JOIN_IO_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        log.info("join endpoint: %s %s", self.address_string(), format % args)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(raw)
        self.close_connection = True

    def _error(self, err: ArmError) -> None:
        self._send(err.http_status or _STATUS.get(err.kind, 400), {"error": err.body()})

    def do_GET(self) -> None:
        if self.path.startswith("/v1/gallery/"):
            self._gallery_file(self.path.removeprefix("/v1/gallery/").split("/"))
            return
        if self.path != "/v1/cluster-info":
            self._error(ArmError("ResourceNotFound", f"No {self.path[:100]} here: GET /v1/cluster-info, "
                                                     f"POST /v1/join, GET /v1/gallery/...", http_status=404))
            return
        self._send(200, {"ca": self.server.credential.ca, "controller": self.server.advertise})

    def _enrolled_node(self) -> str:
        """The node whose enrolled certificate this connection presented ("" for none)."""
        der = self.server.peer_certificate(self.request)
        if not der:
            return ""
        try:
            cert = x509.load_der_x509_certificate(der)
            who = identity_of(cert)
        except (ValueError, PkiError):
            return ""
        held = self.server.enrollment.enrolled(who.node) if who.node else None
        return who.node if held is not None and held.serial == f"{cert.serial_number:x}" else ""

    def _gallery_file(self, parts: list[str]) -> None:
        try:
            node = self._enrolled_node()
        except StoreUnavailable as exc:
            self._error(ArmError("StoreUnavailable", str(exc), http_status=503))
            return
        if not node:
            self._error(ArmError("AuthorizationFailed", "The gallery's files are for enrolled nodes: present the "
                                                        "node's certificate.", http_status=403))
            return
        path = self.server.gallery.file_for(*parts) if len(parts) == 5 and self.server.gallery else None
        if path is None:
            self._error(ArmError("ArtifactNotFound", f"No published image file {'/'.join(parts)[:200]}.",
                                 http_status=404))
            return
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.send_header("Connection", "close")
        self.end_headers()
        with open(path, "rb") as f:
            shutil.copyfileobj(f, self.wfile, 1 << 20)
        self.close_connection = True
        log.info("gallery: %s fetched %s (%d bytes)", node, "/".join(parts), size)

    def do_POST(self) -> None:
        if self.path != "/v1/join":
            self._error(ArmError("ResourceNotFound", f"No {self.path[:100]} here: POST /v1/join.", http_status=404))
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY_BYTES:
            self._error(ArmError("InvalidParameter", f"The body must have a Content-Length from 1 to "
                                                     f"{MAX_BODY_BYTES} bytes.", "body", http_status=400))
            return
        try:
            body = json.loads(self.rfile.read(length))
            fields = {k: body[k] for k in ("token", "node", "csr")}
            if not all(isinstance(v, str) for v in fields.values()):
                raise TypeError("token, node and csr are strings")
        except (ValueError, KeyError, TypeError) as exc:
            self._error(ArmError("InvalidParameter", f"The body must be JSON with token, node and csr strings "
                                                     f"({type(exc).__name__}: {exc}).", "body", http_status=400))
            return
        try:
            cert = self.server.enrollment.enroll(fields["token"], fields["node"], fields["csr"])
        except ArmError as err:
            log.warning("join of node %r refused: %s", fields["node"][:63], err.message)
            self._error(err)
            return
        except StoreUnavailable as exc:
            self._error(ArmError("StoreUnavailable", f"{exc}; nothing was enrolled.", http_status=503))
            return
        log.info("node %s enrolled with token %s", fields["node"], fields["token"].split(".")[0])
        self._send(200, {"certificate": cert, "controller": self.server.advertise})


class JoinServer(TlsHttpServer):
    def __init__(self, listen: str, enrollment: Enrollment, credential: Credential, advertise: str,
                 gallery: Gallery | None = None) -> None:
        host, port = listen.rsplit(":", 1)
        super().__init__((host.strip("[]"), int(port)), _Handler, credential.ssl_context(server=True),
                         JOIN_IO_TIMEOUT_S)
        self.enrollment = enrollment
        self.credential = credential
        self.advertise = advertise
        self.gallery = gallery


def serve(listen: str, enrollment: Enrollment, credential: Credential, advertise: str,
          gallery: Gallery | None = None) -> JoinServer:
    srv = JoinServer(listen, enrollment, credential, advertise, gallery)
    threading.Thread(target=srv.serve_forever, name="join-endpoint", daemon=True).start()
    return srv
