"""The CustomScript 2.1 handler the wireserver's handler repository serves to the reference's Linux agent, run as
that agent runs it: from its unpacked package, with HandlerEnvironment.json, config/<seq>.settings and
ConfigSequenceNumber; its script fetched over HTTP; its status file read back as the agent reads it."""
from __future__ import annotations

import io
import json
import os
import subprocess
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from nodeagent.netsvc.wireserver import handler_manifest_xml, handler_package

HANDLER = ("Microsoft.Azure.Extensions.CustomScript", "2.1")


def unpacked(tmp: Path) -> Path:
    """The package as the agent unpacks it (zipfile.extractall, which keeps no modes; the agent then adds +x)."""
    package = handler_package(*HANDLER)
    assert package is not None
    base = tmp / "handler"
    zipfile.ZipFile(io.BytesIO(package)).extractall(base)
    for f in base.rglob("*"):
        if f.is_file():
            f.chmod(f.stat().st_mode | 0o100)
    env = {k: str(tmp / k) for k in ("logFolder", "configFolder", "statusFolder")}
    (base / "HandlerEnvironment.json").write_text(json.dumps(
        [{"name": HANDLER[0], "version": 1.0, "handlerEnvironment": {**env, "heartbeatFile": str(tmp / "hb")}}]))
    return base


def enable(tmp: Path, base: Path, seq: int, public: dict[str, Any], wait: bool = True) -> dict[str, Any]:
    (tmp / "configFolder").mkdir(exist_ok=True)
    (tmp / "configFolder" / f"{seq}.settings").write_text(json.dumps(
        {"runtimeSettings": [{"handlerSettings": {"protectedSettings": None, "publicSettings": public}}]}))
    manifest = json.loads((base / "HandlerManifest.json").read_text())[0]["handlerManifest"]
    r = subprocess.run(f"{base}/{manifest['enableCommand']}", shell=True, cwd=base, capture_output=True, text=True,
                       env={**os.environ, "ConfigSequenceNumber": str(seq),
                            "CUSTOM_SCRIPT_DOWNLOADS": str(tmp / "downloads"), "PATH": os.environ["PATH"]},
                       timeout=60)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30          # enable returns at once; the command runs on, then reports
    while True:
        status: dict[str, Any] = json.loads((tmp / "statusFolder" / f"{seq}.status").read_text())[0]["status"]
        if not wait or status["status"] != "transitioning" or time.monotonic() > deadline:
            return status
        time.sleep(0.05)


def test_the_package_runs_the_command_on_the_downloaded_file_and_reports_its_output(tmp_path: Path) -> None:
    class Blob(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = b"echo hello from $(basename $(pwd)); echo oops >&2; exit ${1:-0}\n"
            self.send_response(200 if self.path.startswith("/scripts/run.sh") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Blob)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/scripts/run.sh?sv=2021&sig=x"
    try:
        base = unpacked(tmp_path)
        ok = enable(tmp_path, base, 0, {"fileUris": [url], "commandToExecute": "sh run.sh"})
        assert (ok["status"], ok["code"], ok["operation"]) == ("success", 0, "Enable")
        assert ok["formattedMessage"]["message"] == "Enable succeeded: \n[stdout]\nhello from 0\n\n[stderr]\noops\n"
        again = enable(tmp_path, base, 0, {"fileUris": [url], "commandToExecute": "sh run.sh 3"})
        assert again == ok                                    # a sequence number runs once
        # a command that runs on after enable returned (the agent kills enable after 5 minutes)
        gate = tmp_path / "go"
        long = {"fileUris": [], "commandToExecute": f"while [ ! -e {gate} ]; do sleep 0.05; done; echo late"}
        assert enable(tmp_path, base, 3, long, wait=False)["status"] == "transitioning"
        gate.touch()
        done = enable(tmp_path, base, 3, long)
        assert done["status"] == "success" and "late" in done["formattedMessage"]["message"]
        failed = enable(tmp_path, base, 1, {"fileUris": [url], "commandToExecute": "sh run.sh 3"})
        assert failed["status"] == "error"
        assert "command terminated with exit status=3" in failed["formattedMessage"]["message"]
        missing = enable(tmp_path, base, 2, {"fileUris": [url.replace("run.sh", "gone.sh")],
                                             "commandToExecute": "sh gone.sh"})
        assert missing["status"] == "error" and "failed to download file gone.sh" in missing["formattedMessage"]["message"]
    finally:
        srv.shutdown()


def test_the_manifest_names_the_package_of_the_version_asked_for() -> None:
    xml = handler_manifest_xml("10.0.0.1", *HANDLER)
    assert "<Version>2.1</Version>" in xml
    assert "http://10.0.0.1/handlers/Microsoft.Azure.Extensions.CustomScript/2.1/" \
           "Microsoft.Azure.Extensions.CustomScript__2.1.zip" in xml
    assert handler_package("Microsoft.Azure.Extensions.CustomScript", "9.9") is None
