"""The wireserver, host plugin and IMDS as the reference's own guest software speaks to them: every request
that unmodified cloud-init 22.4 and WALinuxAgent 2.7.3 made during a real Debian 12 boot
(tests/data/guest-requests, captured once) is replayed from a guest's namespace, in order, following the
URLs of the goal state this wireserver gives, as the agents do; then each document is read the way
WALinuxAgent reads it."""
from __future__ import annotations

import ast
import base64
import dataclasses
import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fabric.network import naming
from nodeagent.guest_reports import agent_status, extension_status, handler_statuses
from nodeagent.netsvc.networks import Networks, stop_pid
from tests.integration.netsvc import test_networks

CAPTURE = Path(__file__).resolve().parents[2] / "data" / "guest-requests" / "debian12-cloud-init-waagent.log"
WIRE, IMDS, PLUGIN = "10.77.0.1", "169.254.169.254", "10.77.0.1:32526"
REQUEST = re.compile(r'^\d\d:\d\d:\d\d \S+ "(\w+) (\S+) HTTP/1.1" (\d+) - (\{.*\})$')

# run inside the guest's namespace: each request of stdin (JSON), paced at the wireserver's sustained rate
REPLAY = r"""
import http.client, json, sys, time
out = []
for r in json.load(sys.stdin):
    c = http.client.HTTPConnection(r["host"], timeout=5)
    c.request(r["method"], r["path"], body=r["body"].encode() if r["body"] is not None else None,
              headers=r["headers"])
    resp = c.getresponse()
    out.append({"status": resp.status, "body": resp.read().decode(errors="replace")})
    time.sleep(0.2)
print(json.dumps(out))
"""


def captured() -> list[dict[str, Any]]:
    """The capture's requests, each with the body logged before it (health reports, status blobs)."""
    requests, pending = [], []
    for line in CAPTURE.read_text().splitlines():
        m = REQUEST.match(line)
        if not m:
            pending.append(line)
            continue
        method, path, status, headers = m.groups()
        text = "\n".join(pending).strip()
        pending = []
        body = None
        if "health body:" in text:
            body = text.split("health body:", 1)[1].strip()
        elif "hgap status:" in text:
            body = text.split("hgap status:", 1)[1].strip()
        elif text.startswith("body:"):
            body = text[len("body:"):].strip()
        requests.append({"method": method, "path": path, "status": int(status), "body": body,
                         "headers": ast.literal_eval(headers)})      # the capture logs Python dicts
    return requests


def replay(ns: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", REPLAY], input=json.dumps(requests),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    answers: list[dict[str, Any]] = json.loads(r.stdout)
    return answers


def request(method: str, url: str, body: str | None = None, **headers: str) -> dict[str, Any]:
    """A request to a URL the wireserver gave (its host and its path with the query), for `replay`."""
    u = urlsplit(url)
    return {"host": u.netloc, "method": method, "path": f"{u.path}?{u.query}", "body": body, "headers": headers}


def goal_state(ns: str) -> ET.Element:
    [answer] = replay(ns, [{"host": WIRE, "method": "GET", "path": "/machine/?comp=goalstate", "body": None,
                            "headers": {"x-ms-version": "2012-11-30"}}])
    assert answer["status"] == 200
    return ET.fromstring(answer["body"])


def as_sent(r: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """A captured request as the agent would send it here: to the host it went to (the host plugin's paths to
    port 32526), a configuration document at the URL this goal state gives, a status blob in the host plugin's
    envelope."""
    url = urlsplit(r["path"])
    q = parse_qs(url.query)
    host, path, body = WIRE, r["path"], r["body"]
    if url.path.startswith("/metadata/"):
        host = IMDS
    elif url.path in ("/versions", "/health", "/vmSettings", "/status"):
        host = PLUGIN
    elif q.get("comp") == ["config"]:
        path = urls[q["type"][0]]
    elif q.get("comp") == ["extensionsconfig"]:        # the URL the probe's goal state named
        path = urls["extensionsConfig"]
    if url.path == "/status":
        body = json.dumps({"requestUri": "status-blob", "headers": [{"headerName": "x-ms-blob-type",
                                                                   "headerValue": "BlockBlob"}],
                           "content": base64.b64encode(body.encode()).decode()})
    return {"host": host, "method": r["method"], "path": path, "body": body, "headers": r["headers"]}


def test_the_captured_requests_of_both_real_agents_are_answered_as_the_reference_answers(
        guest: str, networks: Networks) -> None:
    gs = goal_state(guest)
    config = gs.find("Container/RoleInstanceList/RoleInstance/Configuration")
    assert config is not None
    urls = {kind: request("GET", config.findtext(tag) or "")["path"]
            for tag, kind in (("HostingEnvironmentConfig", "hostingEnvironmentConfig"),
                              ("SharedConfig", "sharedConfig"), ("ExtensionsConfig", "extensionsConfig"))}
    requests = captured()
    assert len(requests) == 46
    started = time.time()
    answers = replay(guest, [as_sent(r, urls) for r in requests])
    got = [(r["method"], urlsplit(r["path"]).path, a["status"]) for r, a in zip(requests, answers)]
    want = [(r["method"], urlsplit(r["path"]).path, r["status"]) for r in requests]
    assert got == want                  # 200 everywhere, 404 for vmSettings (not supported: the goal state is used)

    health = networks.health(9004, "10.77.0.4")
    blob = networks.agent_status(9004, "10.77.0.4")
    assert health is not None and blob is not None
    seen = agent_status([health], started, time.time(), [blob])
    assert (seen.status, seen.version, seen.provisioning) == ("Ready", "2.7.3.0", "Ready")


def test_documents_carry_what_walinuxagent_reads(guest: str) -> None:
    gs = goal_state(guest)
    assert gs.findtext("Version") == "2012-11-30" and gs.findtext("Incarnation") == "3"
    container = gs.findtext("Container/ContainerId")
    role = gs.find("Container/RoleInstanceList/RoleInstance")
    assert container and role is not None and role.findtext("InstanceId")
    config = role.find("Configuration")
    assert config is not None and config.findtext("ConfigName")

    def fetch(tag: str) -> ET.Element:
        [a] = replay(guest, [request("GET", config.findtext(tag) or "", **{"x-ms-version": "2012-11-30"})])
        assert a["status"] == 200, a
        return ET.fromstring(a["body"])

    hec = fetch("HostingEnvironmentConfig")
    assert hec.find("Incarnation").get("instance") == role.findtext("InstanceId")     # type: ignore[union-attr]
    assert hec.find("Role").get("name") and hec.find("Deployment").get("name")       # type: ignore[union-attr]
    shared = fetch("SharedConfig")
    assert shared.find("Instances/Instance").get("address") == "10.77.0.4"           # type: ignore[union-attr]

    ext = fetch("ExtensionsConfig")
    assert ext.find("GuestAgentExtension/GAFamilies/GAFamily") is not None
    assert (ext.find("StatusUploadBlob").get("statusBlobType"), bool(ext.findtext("StatusUploadBlob"))) == (  # type: ignore[union-attr]
        "BlockBlob", True)
    [plugin] = ext.findall("Plugins/Plugin")
    assert (plugin.get("name"), plugin.get("version")) == ("Microsoft.Compute.CustomScriptExtension", "1.8")
    assert plugin.get("location", "").startswith("http://")
    [settings] = ext.findall("PluginSettings/Plugin")
    runtime = settings.find("RuntimeSettings")
    assert runtime is not None and runtime.get("seqNo") == "2"
    handler = json.loads(runtime.text or "")["runtimeSettings"][0]["handlerSettings"]
    assert handler["publicSettings"] == {"fileUris": ["http://a.blob.x/c/s.sh?sig=1"]}
    assert "a-secret" not in (runtime.text or "")        # protected settings need the VM's certificate


def test_a_status_blob_put_straight_to_its_url_counts_and_its_handlers_become_extension_statuses(
        guest: str, networks: Networks) -> None:
    gs = goal_state(guest)
    config = gs.find("Container/RoleInstanceList/RoleInstance/Configuration")
    assert config is not None
    [a] = replay(guest, [request("GET", config.findtext("ExtensionsConfig") or "",
                                 **{"x-ms-version": "2012-11-30"})])
    blob_url = ET.fromstring(a["body"]).findtext("StatusUploadBlob") or ""
    status = {"version": "1.1", "aggregateStatus": {
        "guestAgentStatus": {"version": "2.7.3.0", "status": "Ready"},
        "handlerAggregateStatus": [{
            "handlerName": "Microsoft.Compute.CustomScriptExtension", "handlerVersion": "1.8", "status": "Ready",
            "runtimeSettingsStatus": {"sequenceNumber": 2, "settingsStatus": {"status": {
                "name": "Microsoft.Compute.CustomScriptExtension", "operation": "Enable", "status": "success",
                "code": 0, "formattedMessage": {"lang": "en-US", "message": "Enable succeeded"}}}}}]}}
    [put] = replay(guest, [request("PUT", blob_url, json.dumps(status), **{"x-ms-blob-type": "BlockBlob"})])
    assert put["status"] == 201
    blob = networks.agent_status(9004, "10.77.0.4")
    assert blob is not None and blob["status"] == status
    [(handler, posted)] = handler_statuses(blob).items()
    st = extension_status(posted)
    assert (handler, st.seq, st.status, st.code, st.message) == (
        "Microsoft.Compute.CustomScriptExtension", 2, "success", 0, "Enable succeeded")


def test_guests_bad_protocol_input_is_refused_and_nothing_is_kept(guest: str, networks: Networks) -> None:
    bad = [("PUT", PLUGIN, "/status", "not json"),
           ("PUT", PLUGIN, "/status", json.dumps({"content": "%%% not base64"})),
           ("PUT", PLUGIN, "/status", json.dumps({"content": base64.b64encode(b"[1, 2]").decode()})),
           ("GET", PLUGIN, "/metadata/instance?api-version=2021-08-01", None),
           ("GET", WIRE, "/machine/someone-else/x?comp=config&type=sharedConfig", None)]
    answers = replay(guest, [{"host": h, "method": m, "path": p, "body": b,
                              "headers": {"x-ms-version": "2012-11-30", "Metadata": "true"}} for m, h, p, b in bad])
    assert [a["status"] for a in answers] == [400, 400, 400, 404, 404]
    assert networks.agent_status(9004, "10.77.0.4") is None


def test_imds_sub_paths_and_text_format(guest: str) -> None:
    base = "/metadata/instance{}?api-version=2021-08-01{}"
    paths = [("/compute", ""), ("/compute/vmId", "&format=text"), ("/compute", "&format=text"),
             ("/network/interface/0/macAddress", "&format=text"), ("/compute/nothing", ""),
             ("", "&extended=true")]
    answers = replay(guest, [{"host": IMDS, "method": "GET", "path": base.format(p, f), "body": None,
                              "headers": {"Metadata": "true"}} for p, f in paths])
    assert [a["status"] for a in answers] == [200, 200, 200, 200, 404, 200]
    assert json.loads(answers[0]["body"])["vmId"] == "vm-a-id"
    assert answers[1]["body"] == "vm-a-id"
    assert "vmId" in answers[2]["body"].splitlines()
    assert answers[3]["body"] == "52540000000A"
    assert set(json.loads(answers[5]["body"])) == {"compute", "network"}


def test_an_answer_larger_than_a_packet_reaches_a_guest_that_ignores_the_dhcp_mtu(guest: str) -> None:
    """The instance document with SSH keys is several packets. A guest whose interface says 1500 (cloud-init's
    ephemeral DHCP does not apply the MTU option) must still get it whole over the network's smaller MTU:
    the service end sends segments that fit. (A veth guest here gets it either way; a real Debian guest did
    not, before the service end took the network's MTU: tests/e2e/test_real_guests.py.)"""
    [a] = replay(guest, [{"host": IMDS, "method": "GET", "path": "/metadata/instance?api-version=2021-08-01",
                          "body": None, "headers": {"Metadata": "true"}}])
    assert a["status"] == 200 and len(a["body"]) > 2000
    assert len(json.loads(a["body"])["compute"]["publicKeys"]) == 4


def test_a_metadata_process_of_an_earlier_agent_is_replaced_by_one_that_speaks_the_protocol(
        guest: str, networks: Networks) -> None:
    """A network made before an upgrade keeps its metadata process; the upgraded agent replaces it (by its pid:
    it is one of this agent's), so that the guests get the host plugin and the documents they need."""
    first = networks.metadata_pid(9004)
    assert first is not None
    stop_pid(first)
    folder, ns = networks.root / "9004", naming.service_ns(networks.tag, 9004)
    # as an earlier agent started it (no --protocol): it answers port 80 only
    subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "nodeagent.netsvc.metadata", "--folder",
                      str(folder), "--pid-file", str(folder / "metadata.pid"), "--host-plugin-port", "0"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (folder / "metadata.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    older = int((folder / "metadata.pid").read_text())
    spec = dataclasses.replace(test_networks.spec(9004, (test_networks.A, test_networks.B),
                                                  (test_networks.A, test_networks.B)),
                               metadata=json.loads((folder / "metadata.json").read_text()))
    networks.converge({9004: spec})
    now = networks.metadata_pid(9004)
    assert now is not None and now != older
    [a] = replay(guest, [{"host": PLUGIN, "method": "GET", "path": "/versions", "body": None, "headers": {}}])
    assert a["status"] == 200 and "2015-09-01" in json.loads(a["body"])
