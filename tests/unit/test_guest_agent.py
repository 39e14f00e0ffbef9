"""The guest agent's protocol functions (images/.../agent.sh), run on this host by the busybox the image carries,
against a wireserver stand-in at the HTTP level that records what it was sent and answers as told."""
from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.unit.test_guest_handler import LIB, busybox


class Wire:
    """Answers each POST with the next status of `answers` (200 once they run out) and keeps the bodies."""

    def __init__(self) -> None:
        self.answers: list[int] = []
        self.posts: list[tuple[str, bytes]] = []
        wire = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wire.posts.append((self.path, body))
                code = wire.answers.pop(0) if wire.answers else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.srv.server_address[1]}"


@pytest.fixture
def wire() -> Iterator[Wire]:
    w = Wire()
    yield w
    w.srv.shutdown()


def agent(tmp: Path, wire: Wire, script: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "wire": wire.address, "EXT_WORK": str(tmp), "EXT_STATE": str(tmp),
           "EXT_LOGS": str(tmp), "LIB": str(LIB)}
    prelude = f'. "{LIB}/lib.sh"; . "{LIB}/agent.sh"; log() {{ echo "agent: $*" >> "{tmp}/log"; }}; '
    return subprocess.run([busybox(), "sh", "-c", prelude + script], env=env, capture_output=True, text=True,
                          timeout=60)


def test_a_status_the_wireserver_refuses_is_replaced_at_once_by_an_error(tmp_path: Path, wire: Wire) -> None:
    (tmp_path / "status").write_text('[{"status": {"status": "success", "code": 0}}]')
    wire.answers = [400]
    r = agent(tmp_path, wire, f'report_status CustomScriptExtension Microsoft.Compute.CustomScriptExtension 1.8 3 '
                              f'"{tmp_path}/status" "{tmp_path}/handler.log"; echo "rc=$?"')
    assert r.stdout.strip() == "rc=0", r.stderr
    assert len(wire.posts) == 2
    refused = json.loads(wire.posts[1][1])
    top = refused["status"][0]["status"]
    assert (refused["seqNo"], top["status"]) == (3, "error")
    assert top["formattedMessage"]["message"].startswith(
        "The guest agent could not report the status the handler Microsoft.Compute.CustomScriptExtension 1.8 "
        "wrote: the wireserver refused it (server returned error: HTTP/1.0 400")
    assert "refused the status of extension CustomScriptExtension" in (tmp_path / "log").read_text()


def test_a_status_nobody_took_is_not_reported_as_done(tmp_path: Path, wire: Wire) -> None:
    (tmp_path / "status").write_text('[{"status": {"status": "success", "code": 0}}]')
    wire.answers = [503]
    r = agent(tmp_path, wire, f'report_status X Microsoft.Compute.CustomScriptExtension 1.8 1 "{tmp_path}/status" '
                              f'"{tmp_path}/h.log"; echo "rc=$?"')
    assert r.stdout.strip() == "rc=1" and len(wire.posts) == 1


@pytest.mark.parametrize("container", ["Blog_RG(1).x", "a'b c", "$(touch pwned)", "`touch pwned`; x"])
def test_health_carries_goal_state_values_as_data(tmp_path: Path, wire: Wire, container: str) -> None:
    """The goal state's values (the container id is the resource group's name) are read back as data: the agent
    once sourced them, and a group named Blog_RG(1).x stopped it with a syntax error."""
    (tmp_path / "goalstate").write_text(f"7\n{container}\nvm-id\n")
    r = agent(tmp_path, wire, f'GOALSTATE="{tmp_path}/goalstate" VERSION=9.9 resource_disk=kept; cd "{tmp_path}"; '
                              'report_health; echo "rc=$?"')
    assert r.stdout.strip() == "rc=0", r.stderr
    [(path, body)] = wire.posts
    assert path == "/machine?comp=health"
    assert (f"<GoalStateIncarnation>7</GoalStateIncarnation><Container><ContainerId>{container}</ContainerId>"
            ) in body.decode()
    assert not (tmp_path / "pwned").exists()
