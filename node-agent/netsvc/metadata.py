"""The metadata service and the wireserver of one network, run inside its service namespace.

    python -m nodeagent.netsvc.metadata --folder DIR --pid-file FILE

Listens on port 80 of every address of the namespace: 169.254.169.254 (IMDS)
and the gateway (the wireserver, DHCP option 245). It answers only from
DIR/metadata.json, which the node agent rewrites atomically:
    {"<private ip>": {"compute": {...}, "network": {...}, "incarnation": N}}
and identifies the calling VM by its source address (the namespace only sees
its own network's bridge, and port security lets a VM send only from its own
address: see portsec). The wireserver's documents are built in wireserver.py.

IMDS:  GET /metadata/instance?api-version=...  with `Metadata: true`; refused
       (400) without the header, without a known api-version, or with an
       X-Forwarded-For or Forwarded header (even empty: IMDS is never proxied);
       more than IMDS_RATE.per_s requests a second from one VM: 429.
Wire:  GET /?comp=versions; GET /machine[/]?comp=goalstate (x-ms-version) -> the
       goal state with its incarnation and the URLs of its documents: the
       hosting environment and shared configs, and the extensions config in the
       reference's schema (for WALinuxAgent; wireserver.py).
       POST /machine?comp=health -> the guest's health report (NotReady with
       Provisioning or ProvisioningFailed, Ready), kept in DIR/health/<ip>.json.
       PUT  /machine/C/R?comp=status -> the guest agent's status (the status blob
       of the extensions config), kept in DIR/agent/<ip>.json.
       POST /machine?comp=telemetrydata, POST /HealthService: accepted, not kept.
       GET /machine?comp=extensionsconfig -> the busybox agent's extensions, one
       element a line: each plugin's settings flattened to
       <Setting name="fileUris.0">base64</Setting> (protected="true" for the
       protected ones, which only this VM ever receives).
       POST /machine?comp=status&extension=NAME -> one extension's status (JSON),
       kept in DIR/status/<ip>/<NAME>.json for the node agent.
       More than WIRESERVER_RATE allows from one VM: 429.
Host plugin, port 32526 of the same addresses: GET /versions, GET /health,
       GET /vmSettings (404: not supported, the agent falls back to the goal
       state), PUT /status (the status blob, base64 in a JSON envelope; kept as
       the direct PUT is). Its requests count in the wireserver's rate and
       connection caps.

Guests are not trusted: a body's Content-Length is checked before it is read
(relay.content_length: a number, within the endpoint's limit), JSON from a
guest is refused past MAX_JSON_DEPTH levels of nesting before it is parsed,
every connection has SOCKET_TIMEOUT_S to send its request, and one VM holds
at most MAX_CONNECTIONS_PER_VM connections at once (beyond that it is
answered 429 at once), so that a guest can starve neither its neighbours nor
the node.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fabric.files import ensure_dir, log_to, write_atomic
from fabric.netio import QuietClientErrors
from nodeagent.netsvc.guestlimits import (IMDS_RATE, MAX_JSON_DEPTH, WIRESERVER_RATE, ConnectionCap, RateLimit,
                                           json_depth_ok)
from nodeagent.netsvc.relay import RefusedLength, UnixHTTPConnection, content_length, relay
from nodeagent.netsvc.wireserver import (HOST_PLUGIN_PORT, HOST_PLUGIN_VERSIONS, container_id,
                                         extensions_config_reference_xml, extensions_config_xml, goal_state_xml,
                                         handler_folder, handler_manifest_xml, handler_package,
                                         hosting_environment_xml, role_path, shared_config_xml, versions_xml)

MAX_HEALTH_BYTES = 64 * 1024
MAX_STATUS_BYTES = 64 * 1024
MAX_AGENT_STATUS_BYTES = 512 * 1024     # the guest agent's whole status, its handlers' included (base64 through
                                        # the host plugin)
MAX_TELEMETRY_BYTES = 1024 * 1024       # a batch of the guest agent's events (accepted, not kept)
XML = "text/xml; charset=utf-8"
SOCKET_TIMEOUT_S = 10.0        # to send a request (and each read of a relayed body) before the connection is closed
MAX_CONNECTIONS_PER_VM = 8
PORT = 80
# the versions of the reference's IMDS that the guests of this fabric ask for; others are refused, as it does
IMDS_API_VERSIONS = ("2017-03-01", "2017-04-02", "2017-08-01", "2017-12-01", "2018-02-01", "2018-04-02",
                     "2018-10-01", "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04",
                     "2019-08-01", "2019-08-15", "2019-11-01", "2020-06-01", "2020-07-15", "2020-09-01",
                     "2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01",
                     "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13", "2022-02-01",
                     "2022-03-01", "2022-05-01", "2022-07-01", "2022-08-01", "2022-09-01", "2023-07-01")


def imds_lookup(instance: dict[str, Any], subpath: str) -> tuple[bool, Any]:
    """The part of the instance document a sub-path names, as the reference's IMDS walks it:
    /compute/osProfile/adminUsername, /network/interface/0/ipv4/ipAddress/0/privateIpAddress."""
    value: Any = instance
    for part in (p for p in subpath.split("/") if p):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and re.fullmatch(r"[0-9]{1,6}", part) and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def imds_text(value: Any) -> str:
    """format=text: a leaf as it is; a branch as the names under it, a line each ("name/" for a branch)."""
    if isinstance(value, dict):
        return "\n".join(f"{k}/" if isinstance(v, (dict, list)) else k for k, v in value.items())
    if isinstance(value, list):
        return "\n".join(f"{i}/" if isinstance(v, (dict, list)) else str(i) for i, v in enumerate(value))
    return value if isinstance(value, str) else json.dumps(value)


def keep(path: Path, doc: dict[str, Any], **report: Any) -> None:
    """A guest's report for the node agent, with when it came and the container of the VM its address then
    served: a later VM at the same address never reads it as its own (guest_reports.mine)."""
    write_atomic(path, json.dumps({"time": time.time(), **report, "container": container_id(doc)}))


class Documents:
    """metadata.json, read again on every request (a few KB; an mtime check can miss two rewrites within one
    clock tick, and a VM would then be unknown to its own wireserver)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "metadata.json"
        self._raw = b""
        self._docs: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_ip(self, ip: str) -> dict[str, Any] | None:
        with self._lock:
            try:
                raw = self.path.read_bytes()
                if raw != self._raw:
                    self._docs, self._raw = json.loads(raw), raw
            except (OSError, ValueError):
                pass
            doc = self._docs.get(ip)
            return doc if isinstance(doc, dict) else None


def make_handler(folder: Path, docs: Documents, blob_relay: str) -> type[BaseHTTPRequestHandler]:
    health = ensure_dir(folder / "health")
    statuses = ensure_dir(folder / "status")
    agent_statuses = ensure_dir(folder / "agent")
    imds_limit, wire_limit = RateLimit(IMDS_RATE), RateLimit(WIRESERVER_RATE)

    class Handler(BaseHTTPRequestHandler):
        server: MetadataServer
        server_version = "fabriclab-metadata/1.0"
        sys_version = ""
        timeout = SOCKET_TIMEOUT_S

        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: str, ctype: str = "application/json; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str, **extra: Any) -> None:
            self._send(status, json.dumps({"error": message, **extra}))

        def _blob(self) -> bool:
            """Requests for {account}.blob.{domain} go to the node agent, and on to the blob service."""
            if blob_relay and ".blob." in (self.headers.get("Host") or ""):
                relay(self, UnixHTTPConnection(blob_relay))
                return True
            return False

        def do_HEAD(self) -> None:  # noqa: N802
            if not self._blob():
                self._error(405, "Method not allowed")

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._blob():
                self._error(405, "Method not allowed")

        def _plain_ok(self) -> None:
            self._send(200, "", "text/plain")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self._blob():
                return
            url = urlsplit(self.path)
            q = parse_qs(url.query)
            ip = self.client_address[0]
            if url.path.startswith("/metadata/") and not self.server.host_plugin:
                return self._imds(url.path, q, ip)
            if not wire_limit.allow(ip):
                return self._error(429, "Too many requests")
            if self.server.host_plugin:
                return self._host_plugin_get(url.path, ip)
            if url.path == "/" and q.get("comp") == ["versions"]:
                return self._send(200, versions_xml(), XML)
            doc = docs.for_ip(ip)
            if url.path.startswith("/handlers/"):
                return self._handler(url.path, doc, ip)
            machine = url.path.rstrip("/") == "/machine"
            if machine and q.get("comp") == ["extensionsconfig"]:
                if doc is None:
                    return self._error(404, f"no VM with address {ip} on this network")
                return self._send(200, extensions_config_xml(doc), XML)
            if not (url.path.startswith("/machine") and q.get("comp") in (["goalstate"], ["config"])):
                return self._error(404, "Not found")
            if not self.headers.get("x-ms-version"):
                return self._error(400, "x-ms-version header is required")
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            host = self.headers.get("Host") or ""
            if machine and q["comp"] == ["goalstate"]:
                return self._send(200, goal_state_xml(doc, host), XML)
            if q["comp"] == ["config"] and url.path == role_path(doc):
                kind = (q.get("type") or [""])[0]
                if kind == "hostingEnvironmentConfig":
                    return self._send(200, hosting_environment_xml(doc), XML)
                if kind == "sharedConfig":
                    return self._send(200, shared_config_xml(doc, ip), XML)
                if kind == "extensionsConfig":
                    return self._send(200, extensions_config_reference_xml(doc, host), XML)
            return self._error(404, "Not found")

        def _handler(self, path: str, doc: dict[str, Any] | None, ip: str) -> None:
            """The handler repository: /handlers/<handler>/<version>/manifest.xml and its package."""
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            parts = path.split("/")
            if len(parts) != 5 or handler_folder(parts[2], parts[3]) is None:
                return self._error(404, "no such handler in this fabric's handler repository")
            handler, version, name = parts[2], parts[3], parts[4]
            if name == "manifest.xml":
                return self._send(200, handler_manifest_xml(self.headers.get("Host") or "", handler, version), XML)
            package = handler_package(handler, version)
            if name != f"{handler}__{version}.zip" or package is None:
                return self._error(404, "no such file in this handler's package")
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(package)))
            self.end_headers()
            self.wfile.write(package)

        def _host_plugin_get(self, path: str, ip: str) -> None:
            """The host plugin (port 32526): its versions, its health; no vmSettings (the agent then reads
            the extensions from the wireserver's goal state); no artifact proxy."""
            if path == "/versions":
                return self._send(200, json.dumps(list(HOST_PLUGIN_VERSIONS)))
            if path == "/health":
                return self._plain_ok()
            if docs.for_ip(ip) is None:
                return self._error(404, f"no VM with address {ip} on this network")
            if path == "/vmSettings":
                return self._error(404, "vmSettings is not supported by this host plugin: read the goal state "
                                        "from the wireserver")
            return self._error(404, "Not found")

        def _body(self, limit: int) -> str | None:
            """The request's body, within limit, or None when refused (answered) or cut short."""
            try:
                length = content_length(self.headers, limit)
            except RefusedLength as e:
                self.close_connection = True
                self._error(e.status, e.message)
                return None
            raw = self.rfile.read(length)
            if len(raw) < length:
                return None                              # the guest stopped short: nothing is kept
            return raw.decode(errors="replace")

        def _json_object(self, body: str, what: str) -> dict[str, Any] | None:
            """A guest's JSON object, or None when refused (answered)."""
            if not json_depth_ok(body):
                self._error(400, f"the {what} nests deeper than {MAX_JSON_DEPTH} levels")
                return None
            try:
                value = json.loads(body)
            except ValueError as e:
                self._error(400, f"the {what} is not JSON: {e}")
                return None
            if not isinstance(value, dict):
                self._error(400, f"the {what} is not a JSON object")
                return None
            return value

        def _imds(self, path: str, q: dict[str, list[str]], ip: str) -> None:
            for proxied in ("X-Forwarded-For", "Forwarded"):
                if proxied in self.headers:
                    return self._error(400, f"Bad request. {proxied} header is not allowed.")
            if self.headers.get("Metadata", "").lower() != "true":
                return self._error(400, "Bad request. Required metadata header not specified")
            if q.get("api-version", [""])[-1] not in IMDS_API_VERSIONS:
                return self._error(400, "Bad request. api-version is invalid or was not specified in the request.",
                                   **{"newest-versions": list(IMDS_API_VERSIONS[-3:][::-1])})
            if not imds_limit.allow(ip):
                return self._error(429, "Too many requests")
            doc = docs.for_ip(ip)
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            if not (path + "/").startswith("/metadata/instance/"):
                return self._error(404, "Not found")
            found, value = imds_lookup({"compute": doc.get("compute", {}), "network": doc.get("network", {})},
                                       path[len("/metadata/instance"):])
            if not found:
                return self._error(404, "Not found")
            fmt = (q.get("format") or ["json"])[-1]
            if fmt not in ("json", "text"):
                return self._error(400, "Bad request. format must be json or text")
            if fmt == "json":
                return self._send(200, json.dumps(value))
            return self._send(200, imds_text(value), "text/plain; charset=utf-8")

        def do_PUT(self) -> None:  # noqa: N802
            """The guest agent's status: through the host plugin (PUT /status, the status base64 in a JSON
            envelope) or straight to the status blob of the extensions config (PUT, the status itself)."""
            if self._blob():
                return
            url = urlsplit(self.path)
            ip = self.client_address[0]
            q = parse_qs(url.query)
            via_plugin = self.server.host_plugin
            if not ((via_plugin and url.path == "/status") or
                    (not via_plugin and url.path.startswith("/machine/") and q.get("comp") == ["status"])):
                return self._error(404, "Not found")
            if not wire_limit.allow(ip):
                return self._error(429, "Too many requests")
            body = self._body(MAX_AGENT_STATUS_BYTES)
            if body is None:
                return
            doc = docs.for_ip(ip)
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            if via_plugin:
                envelope = self._json_object(body, "request")
                if envelope is None:
                    return
                try:
                    body = base64.b64decode(str(envelope.get("content", "")), validate=True).decode()
                except (ValueError, UnicodeDecodeError):
                    return self._error(400, "content is not base64 of UTF-8 text")
            status = self._json_object(body, "status")
            if status is None:
                return
            keep(agent_statuses / f"{ip}.json", doc, status=status)
            self.send_response(201 if not via_plugin else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            if self._blob():
                return
            url = urlsplit(self.path)
            ip = self.client_address[0]
            q = parse_qs(url.query)
            comp = (q.get("comp") or [""])[0]
            if self.server.host_plugin or not (
                    (url.path == "/machine" and comp in ("health", "status", "telemetrydata"))
                    or url.path == "/HealthService"):
                return self._error(404, "Not found")
            if not wire_limit.allow(ip):
                return self._error(429, "Too many requests")
            body = self._body(MAX_TELEMETRY_BYTES if url.path == "/HealthService" or comp == "telemetrydata"
                              else MAX_HEALTH_BYTES if comp == "health" else MAX_STATUS_BYTES)
            if body is None:
                return
            doc = docs.for_ip(ip)
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            if url.path == "/HealthService" or comp == "telemetrydata":
                return self._plain_ok()                 # accepted, as the reference's are; not kept
            if comp == "health":
                keep(health / f"{ip}.json", doc, report=body)
                return self._plain_ok()
            name = (q.get("extension") or [""])[0]
            # only a name of this VM's goal state (checked by the controller) ever becomes a file name here
            if not any(e["name"] == name for e in doc.get("extensions", [])):
                return self._error(404, f"no extension '{name}' in this VM's goal state")
            status = self._json_object(body, "status")
            if status is None:
                return
            mine = ensure_dir(statuses / ip)
            keep(mine / f"{name}.json", doc, status=status)
            return self._plain_ok()

    return Handler


class MetadataServer(QuietClientErrors, ThreadingHTTPServer):
    """One thread a connection, at most MAX_CONNECTIONS_PER_VM of them for one VM: a VM over its cap is answered
    429 and closed without a thread. Each connection has SOCKET_TIMEOUT_S to send its request."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 cap: ConnectionCap | None = None, host_plugin: bool = False) -> None:
        super().__init__(address, handler)
        self.cap = cap or ConnectionCap(MAX_CONNECTIONS_PER_VM)     # shared by the wireserver and host plugin
        self.host_plugin = host_plugin

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.cap.enter(client_address[0]):
            try:
                request.sendall(TOO_MANY_CONNECTIONS)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.cap.leave(client_address[0])      # no thread took the connection: its slot is free again
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.cap.leave(client_address[0])


_BUSY = json.dumps({"error": f"Too many connections: at most {MAX_CONNECTIONS_PER_VM} from one VM"}).encode()
TOO_MANY_CONNECTIONS = (f"HTTP/1.0 429 Too Many Requests\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        f"Content-Length: {len(_BUSY)}\r\n\r\n").encode() + _BUSY


def main() -> None:
    ap = argparse.ArgumentParser(prog="fabriclab-metadata")
    ap.add_argument("--folder", required=True, type=Path)
    ap.add_argument("--pid-file", required=True, type=Path)
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument("--host-plugin-port", type=int, default=HOST_PLUGIN_PORT)
    ap.add_argument("--protocol", default="", help="what the node agent expects it to speak (networks.py)")
    ap.add_argument("--blob-relay", default="", help="the node agent's UNIX socket for blob requests")
    ap.add_argument("--log-file", type=Path, help="log here, bounded (rotated), with stdout and stderr")
    args = ap.parse_args()
    log_to(args.log_file, "%(asctime)s metadata %(levelname)s %(message)s")
    handler = make_handler(args.folder, Documents(args.folder), args.blob_relay)
    srv = MetadataServer(("0.0.0.0", args.port), handler)
    plugin = MetadataServer(("0.0.0.0", args.host_plugin_port), handler, cap=srv.cap, host_plugin=True)
    threading.Thread(target=plugin.serve_forever, name="host-plugin", daemon=True).start()
    write_atomic(args.pid_file, str(os.getpid()))
    srv.serve_forever()


if __name__ == "__main__":
    main()
