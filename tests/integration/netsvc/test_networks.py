"""A node's network services for real: bridge, service namespace and dnsmasq, queried with dig inside it."""
from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

from fabric.lab import underlay
from fabric.network import naming
from fabric.model import SubStatus
from nodeagent.guest_reports import extension_status
from nodeagent.netsvc import iproute
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.networks import Networks, NetSpec

DOMAIN = "abcdefghijklmnopqrstuvwxyz.internal.fabriclab.test"


def spec(vni: int, dhcp: tuple[Reservation, ...], dns: tuple[Reservation, ...]) -> NetSpec:
    return NetSpec(vni=vni, prefix="10.77.0.0/24", gateway="10.77.0.1", domain=DOMAIN, dhcp_hosts=dhcp, dns_hosts=dns)


def dig(ns: str, name: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "dig", "+short", "+time=2", "+tries=1", "@10.77.0.1", name],
                          capture_output=True, text=True).stdout.strip()


A = Reservation("52:54:00:00:00:0a", "10.77.0.4", "vm-a")
B = Reservation("52:54:00:00:00:0b", "10.77.0.5", "vm-b")


def test_dns_answers_short_names_and_fqdns_and_nothing_outside(networks: Networks) -> None:
    events = networks.converge({9001: spec(9001, (A,), (A, B))})
    assert any("dnsmasq started" in e for e in events[9001])
    ns = naming.service_ns(networks.tag, 9001)
    assert dig(ns, "vm-a") == "10.77.0.4"
    assert dig(ns, f"vm-b.{DOMAIN}") == "10.77.0.5"
    assert dig(ns, "example.com") == ""                       # no upstream: nothing is forwarded
    bridge = networks.bridge(9001)
    assert "inet" not in subprocess.run(["ip", "-o", "addr", "show", "dev", bridge], capture_output=True,
                                        text=True).stdout          # layer 2 only in the root namespace


def test_reservations_change_by_reload_and_a_killed_dnsmasq_comes_back(networks: Networks) -> None:
    networks.converge({9002: spec(9002, (A,), (A,))})
    ns = naming.service_ns(networks.tag, 9002)
    events = networks.converge({9002: spec(9002, (A, B), (A, B))})
    assert any("dnsmasq reloaded" in e for e in events[9002])
    assert dig(ns, "vm-b") == "10.77.0.5"
    hosts = (networks.root / "9002" / "dhcp-hosts").read_text()
    assert "52:54:00:00:00:0b,10.77.0.5,vm-b,infinite" in hosts
    dm = networks.dnsmasq(9002)
    pid = dm.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    events = networks.converge({9002: spec(9002, (A, B), (A, B))})
    assert any("dnsmasq started" in e for e in events[9002])
    assert dig(ns, "vm-a") == "10.77.0.4"


def test_removal_leaves_nothing_and_touches_nothing_else(networks: Networks) -> None:
    other_ns = f"not-ours-{uuid.uuid4().hex[:6]}"
    iproute.ensure_netns(other_ns)
    try:
        networks.converge({9003: spec(9003, (A,), (A,))})
        ns, bridge = naming.service_ns(networks.tag, 9003), networks.bridge(9003)
        pid = networks.dnsmasq(9003).pid()
        networks.converge({})
        assert not iproute.netns_exists(ns) and not iproute.link_exists(bridge)
        assert pid is not None and networks.dnsmasq(9003).pid() is None
        assert iproute.netns_exists(other_ns)
    finally:
        iproute.delete_netns(other_ns)


def http_from(ns: str, *curl_args: str) -> tuple[int, str]:
    r = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", "3", "-w", "\n%{http_code}", *curl_args],
                       capture_output=True, text=True)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


IMDS = "http://169.254.169.254/metadata/instance?api-version=2021-02-01"


def test_imds_answers_the_calling_vm_only_and_refuses_bad_requests(guest: str) -> None:
    code, body = http_from(guest, "-H", "Metadata: true", IMDS)
    assert code == 200
    doc = json.loads(body)
    assert doc["compute"]["vmId"] == "vm-a-id" and "vm-b-id" not in body
    assert http_from(guest, IMDS)[0] == 400                                   # no Metadata header
    assert http_from(guest, "-H", "Metadata: true", "-H", "X-Forwarded-For: 1.2.3.4", IMDS)[0] == 400
    assert http_from(guest, "-H", "Metadata: true", "http://169.254.169.254/metadata/instance")[0] == 400
    # a flood is cut to the rate (the exact bucket, request by request, is tests/unit/test_guestlimits.py)
    codes = [http_from(guest, "-H", "Metadata: true", IMDS)[0] for _ in range(25)]
    assert set(codes) == {200, 429} and codes[0] == 200


def test_wireserver_goal_state_and_health(guest: str, networks: Networks) -> None:
    code, body = http_from(guest, "-H", "x-ms-version: 2012-11-30", "http://10.77.0.1/machine?comp=goalstate")
    assert code == 200 and "<Incarnation>3</Incarnation>" in body and "<InstanceId>vm-a-id</InstanceId>" in body.splitlines()
    assert http_from(guest, "http://10.77.0.1/machine?comp=goalstate")[0] == 400   # no x-ms-version
    code, _ = http_from(guest, "-X", "POST", "-H", "x-ms-version: 2012-11-30", "--data",
                        "<Health><State>Ready</State><AgentVersion>9.9</AgentVersion></Health>",
                        "http://10.77.0.1/machine?comp=health")
    assert code == 200
    report = networks.health(9004, A.ip)
    assert report is not None and "<State>Ready</State>" in report["report"]
    assert networks.health(9004, B.ip) is None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_wireserver_gives_each_vm_its_own_extensions_and_keeps_their_statuses(guest: str,
                                                                             networks: Networks) -> None:
    code, body = http_from(guest, "http://10.77.0.1/machine?comp=extensionsconfig")
    assert code == 200 and "b-secret" not in body and b64("b-secret") not in body
    lines = body.splitlines()
    assert ('<Plugin name="CustomScriptExtension" handler="Microsoft.Compute.CustomScriptExtension" version="1.8" '
            'seqNo="2" timeoutSeconds="300">') in lines
    assert f'<Setting name="fileUris.0">{b64("http://a.blob.x/c/s.sh?sig=1")}</Setting>' in lines
    assert f'<Setting name="commandToExecute" protected="true">{b64("sh s.sh a-secret")}</Setting>' in lines
    _, gs = http_from(guest, "-H", "x-ms-version: 2012-11-30", "http://10.77.0.1/machine?comp=goalstate")
    assert "type=extensionsConfig&amp;incarnation=3</ExtensionsConfig>" in gs

    post = ["-X", "POST", "-H", "Content-Type: application/json"]
    status = {"name": "CustomScriptExtension", "seqNo": 2, "handler": "Microsoft.Compute.CustomScriptExtension",
              "version": "1.8", "handlerLog": "[1+00000001] [INFO] done",
              "status": [{"status": {"status": "error", "code": 2, "operation": "Enable",
                                     "formattedMessage": {"message": "Command 'x' exited with code 2"},
                                     "substatus": [{"name": "StdErr", "status": "error",
                                                    "formattedMessage": {"message": "boom"}}]}}]}
    assert http_from(guest, *post, "--data", json.dumps(status),
                     "http://10.77.0.1/machine?comp=status&extension=Other")[0] == 404      # B's, not A's
    assert http_from(guest, *post, "--data", "{not json",
                     "http://10.77.0.1/machine?comp=status&extension=CustomScriptExtension")[0] == 400
    assert http_from(guest, *post, "--data", json.dumps(status),
                     "http://10.77.0.1/machine?comp=status&extension=CustomScriptExtension")[0] == 200
    [(name, posted)] = networks.extension_statuses(9004, A.ip).items()
    got = extension_status(posted)
    assert name == "CustomScriptExtension"
    assert (got.seq, got.status, got.code, got.message, got.log) == (
        2, "error", 2, "Command 'x' exited with code 2", "[1+00000001] [INFO] done")
    assert got.substatuses == [SubStatus(name="StdErr", status="error", message="boom")]
    # whatever a guest sends, the node makes a bounded record of it
    assert extension_status({"time": 1, "status": {"status": "nonsense", "seqNo": "x"}}).seq == -1
    huge = extension_status({"time": 1, "status": {"handlerLog": "x" * 100000}})
    assert len(huge.log) == 4096 and huge.status == "error"


def test_vxlan_carries_a_network_between_two_nodes_underlays(networks: Networks) -> None:
    """Two nodes, each with its underlay in a namespace joined by a switch namespace, as the lab builds them."""
    t = uuid.uuid4().hex[:4]
    lab_root = Path("/var/lib/fabriclab") / f"test-ul-{t}"
    underlays = underlay.ensure(lab_root, ["n1", "n2"])
    made: list[str] = []
    states: list[Path] = []
    nodes: list[Networks] = []
    try:
        for i, name in enumerate(["n1", "n2"]):
            state = Path("/var/lib/fabriclab") / f"test-net-{t}-{i}"
            state.mkdir(parents=True, mode=0o755)
            states.append(state)
            nodes.append(Networks(state, f"{t[:3]}{i}", *underlays[name]))
        ips = [underlays["n1"][1], underlays["n2"][1]]
        guests = [(A, nodes[0]), (B, nodes[1])]
        for i, n in enumerate(nodes):
            n.converge({9005: dataclasses.replace(spec(9005, (guests[i][0],), (A, B)),
                                                  peers=frozenset({ips[1 - i]}))})
        for i, (host, n) in enumerate(guests):
            ns = f"fabriclab-test-g{i}-{t}"
            made.append(ns)
            iproute.ensure_netns(ns)
            iproute.ensure_veth(n.bridge(9005), f"flg{t}{i}", ns, "eth0", [f"{host.ip}/24"])
            iproute.run("ip", "link", "set", "eth0", "mtu", "1450", ns=ns)
        r = subprocess.run(["ip", "netns", "exec", made[0], "busybox", "ping", "-c", "3", "-W", "2", B.ip],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        # each node's gateway answers only its own side: the MAC guest A learns for .1 is its node's
        arp = subprocess.run(["ip", "netns", "exec", made[0], "busybox", "ping", "-c", "1", "-W", "2", "10.77.0.1"],
                             capture_output=True, text=True)
        assert arp.returncode == 0
        neigh = iproute.run("ip", "neigh", "show", "10.77.0.1", ns=made[0])
        svc_mac = iproute.run("ip", "-br", "link", "show", "svc0", ns=naming.service_ns(nodes[0].tag, 9005)).split()[2]
        assert svc_mac in neigh
    finally:
        for n in nodes:
            n.converge({})
        for ns in made:
            iproute.delete_netns(ns)
        for i in range(2):
            iproute.delete_link(f"flg{t}{i}")
        underlay.remove(lab_root, ["n1", "n2"])
        for state in states:
            shutil.rmtree(state, ignore_errors=True)
