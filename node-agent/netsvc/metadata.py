"""The metadata service and the wireserver of one network, run inside its service namespace.

    python -m nodeagent.netsvc.metadata --folder DIR --pid-file FILE

Listens on port 80 of every address of the namespace: 169.254.169.254 (IMDS)
and the gateway (the wireserver, DHCP option 245). It answers only from
DIR/metadata.json, which the node agent rewrites atomically:
    {"<private ip>": {"compute": {...}, "network": {...}, "incarnation": N}}
and identifies the calling VM by its source address (the namespace only sees
its own network's bridge, so an address names one VM).

IMDS:  GET /metadata/instance?api-version=...  with `Metadata: true`; refused
       without the header or api-version (400), with X-Forwarded-For (400);
       more than RATE_LIMIT_PER_S requests a second from one VM: 429.
Wire:  GET /machine?comp=goalstate (x-ms-version) -> the goal state with its
       incarnation; POST /machine?comp=health -> the guest's health report,
       kept in DIR/health/<ip>.json for the node agent.
       GET /machine?comp=extensionsconfig -> the VM's extensions, one element a
       line for a shell agent: each plugin's settings flattened to
       <Setting name="fileUris.0">base64</Setting> (protected="true" for the
       protected ones, which only this VM ever receives).
       POST /machine?comp=status&extension=NAME -> one extension's status (JSON),
       kept in DIR/status/<ip>/<NAME>.json for the node agent.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

from fabric.files import write_atomic
from nodeagent.netsvc.relay import UnixHTTPConnection, relay

RATE_LIMIT_PER_S = 5
MAX_HEALTH_BYTES = 64 * 1024
MAX_STATUS_BYTES = 64 * 1024
PORT = 80


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


class RateLimit:
    def __init__(self, per_s: int) -> None:
        self.per_s = per_s
        self.seen: dict[str, deque[float]] = defaultdict(deque)
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            q = self.seen[key]
            while q and now - q[0] >= 1.0:
                q.popleft()
            if len(q) >= self.per_s:
                return False
            q.append(now)
            return True


def goal_state_xml(ip: str, doc: dict[str, Any], host: str) -> str:
    c = doc.get("compute", {})
    inc = int(doc.get("incarnation", 1))
    return ('<?xml version="1.0" encoding="utf-8"?><GoalState><Version>2012-11-30</Version>'
            f"<Incarnation>{inc}</Incarnation><Machine><ExpectedState>Started"
            "</ExpectedState></Machine><Container><ContainerId>" + escape(c.get("resourceGroupName", "")) +
            "</ContainerId><RoleInstanceList><RoleInstance><InstanceId>" + escape(c.get("vmId", "")) +
            "</InstanceId><State>Started</State><Configuration><ExtensionsConfig>" +
            escape(f"http://{host}/machine?comp=extensionsconfig&incarnation={inc}") +
            "</ExtensionsConfig></Configuration></RoleInstance></RoleInstanceList></Container></GoalState>")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """JSON settings as (path, text) pairs: {"fileUris": ["a"]} -> [("fileUris.0", "a")]."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in flatten(v, f"{prefix}.{i}" if prefix else str(i))]
    return [(prefix, value if isinstance(value, str) else json.dumps(value))]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def extensions_config_xml(doc: dict[str, Any]) -> str:
    """The VM's extensions; one element a line so that a shell agent can read it with `while read`."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<Extensions incarnation="{int(doc.get("incarnation", 1))}">']
    for e in doc.get("extensions", []):
        lines.append(f'<Plugin name="{escape(e["name"])}" handler="{escape(e["handler"])}" '
                     f'version="{escape(e["version"])}" seqNo="{int(e["seq"])}" '
                     f'timeoutSeconds="{int(e["timeoutSeconds"])}">')
        lines.append(f"<PublicSettings>{_b64(json.dumps(e.get('settings', {})))}</PublicSettings>")
        lines.append(f"<ProtectedSettingKeys>{_b64(' '.join(sorted(e.get('protectedSettings', {}))))}"
                     "</ProtectedSettingKeys>")
        for path, text in flatten(e.get("settings", {})):
            lines.append(f'<Setting name="{escape(path)}">{_b64(text)}</Setting>')
        for path, text in flatten(e.get("protectedSettings", {})):
            lines.append(f'<Setting name="{escape(path)}" protected="true">{_b64(text)}</Setting>')
        lines.append("</Plugin>")
    lines.append("</Extensions>")
    return "\n".join(lines) + "\n"


def make_handler(folder: Path, docs: Documents, limit: RateLimit, blob_relay: str) -> type[BaseHTTPRequestHandler]:
    health = folder / "health"
    health.mkdir(exist_ok=True)
    statuses = folder / "status"
    statuses.mkdir(exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        server_version = "fabriclab-metadata/1.0"
        sys_version = ""

        def log_message(self, *_: object) -> None:
            pass

        def _send(self, status: int, body: str, ctype: str = "application/json; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, json.dumps({"error": message}))

        def _blob(self) -> bool:
            """Requests for {account}.blob.{domain} go to the node agent, and on to the blob service."""
            if blob_relay and ".blob." in (self.headers.get("Host") or ""):
                relay(self, UnixHTTPConnection(blob_relay))
                return True
            return False

        def do_HEAD(self) -> None:  # noqa: N802
            if not self._blob():
                self._error(405, "Method not allowed")

        def do_PUT(self) -> None:  # noqa: N802
            if not self._blob():
                self._error(405, "Method not allowed")

        def do_DELETE(self) -> None:  # noqa: N802
            if not self._blob():
                self._error(405, "Method not allowed")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self._blob():
                return
            url = urlsplit(self.path)
            q = parse_qs(url.query)
            ip = self.client_address[0]
            doc = docs.for_ip(ip)
            if url.path.startswith("/metadata/"):
                if self.headers.get("X-Forwarded-For"):
                    return self._error(400, "Bad request. X-Forwarded-For header is not allowed.")
                if self.headers.get("Metadata", "").lower() != "true":
                    return self._error(400, "Bad request. Required metadata header not specified")
                if not q.get("api-version"):
                    return self._error(400, "Bad request. api-version was not specified in the request.")
                if not limit.allow(ip):
                    return self._error(429, "Too many requests")
                if doc is None:
                    return self._error(404, f"no VM with address {ip} on this network")
                if url.path.rstrip("/") == "/metadata/instance":
                    return self._send(200, json.dumps({"compute": doc.get("compute", {}),
                                                       "network": doc.get("network", {})}))
                return self._error(404, "Not found")
            if url.path == "/machine" and q.get("comp") == ["goalstate"]:
                if not self.headers.get("x-ms-version"):
                    return self._error(400, "x-ms-version header is required")
                if doc is None:
                    return self._error(404, f"no VM with address {ip} on this network")
                return self._send(200, goal_state_xml(ip, doc, self.headers.get("Host") or ""),
                                  "text/xml; charset=utf-8")
            if url.path == "/machine" and q.get("comp") == ["extensionsconfig"]:
                if doc is None:
                    return self._error(404, f"no VM with address {ip} on this network")
                return self._send(200, extensions_config_xml(doc), "text/xml; charset=utf-8")
            return self._error(404, "Not found")

        def do_POST(self) -> None:  # noqa: N802
            if self._blob():
                return
            url = urlsplit(self.path)
            ip = self.client_address[0]
            length = int(self.headers.get("Content-Length") or 0)
            q = parse_qs(url.query)
            if url.path != "/machine" or q.get("comp") not in (["health"], ["status"]):
                return self._error(404, "Not found")
            if length > (MAX_HEALTH_BYTES if q["comp"] == ["health"] else MAX_STATUS_BYTES):
                return self._error(413, "report too large")
            body = self.rfile.read(length).decode(errors="replace")
            doc = docs.for_ip(ip)
            if doc is None:
                return self._error(404, f"no VM with address {ip} on this network")
            if q["comp"] == ["health"]:
                write_atomic(health / f"{ip}.json", json.dumps({"time": time.time(), "report": body}))
                return self._send(200, "", "text/plain")
            name = (q.get("extension") or [""])[0]
            # only a name of this VM's goal state (checked by the controller) ever becomes a file name here
            if not any(e["name"] == name for e in doc.get("extensions", [])):
                return self._error(404, f"no extension '{name}' in this VM's goal state")
            try:
                status = json.loads(body)
            except ValueError as e:
                return self._error(400, f"the status is not JSON: {e}")
            if not isinstance(status, dict):
                return self._error(400, "the status is not a JSON object")
            mine = statuses / ip
            mine.mkdir(exist_ok=True)
            write_atomic(mine / f"{name}.json", json.dumps({"time": time.time(), "status": status}))
            return self._send(200, "", "text/plain")

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser(prog="fabriclab-metadata")
    ap.add_argument("--folder", required=True, type=Path)
    ap.add_argument("--pid-file", required=True, type=Path)
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument("--blob-relay", default="", help="the node agent's UNIX socket for blob requests")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("0.0.0.0", args.port), make_handler(args.folder, Documents(args.folder),
                                                                  RateLimit(RATE_LIMIT_PER_S), args.blob_relay))
    srv.daemon_threads = True
    write_atomic(args.pid_file, str(os.getpid()))
    srv.serve_forever()


if __name__ == "__main__":
    main()
