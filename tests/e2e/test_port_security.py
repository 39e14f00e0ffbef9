"""A hostile guest against the VM next to it, on real VMs: each attack of the shared-lab finding, refused by its
port's filters, while the victim keeps its gateway, IMDS and DHCP; the filters go with the NICs.

The attacker and the victim are two of three VMs that share a node (two nodes: two of three always do). The
attacks run as CustomScript extensions, so that they start when the test says, with their output coming back
in the extension's status.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from fabric.network import naming
from tests.e2e.conftest import LabHandle

IMAGE = "fabriclab:busybox:lab:latest"
IMDS = "'http://169.254.169.254/metadata/instance?api-version=2021-02-01'"


def stdout_of(ext: dict[str, Any]) -> str:
    view = ext["properties"]["instanceView"]
    out: str = next(s["message"] for s in view["substatuses"] if s["code"].startswith("ComponentStatus/StdOut/"))
    return out


def run(lab: LabHandle, vm: str, script: Path, *extra: str) -> dict[str, Any]:
    ext: dict[str, Any] = lab.json("vm", "extension", "set", "-g", "E2E", "--vm-name", vm, "--custom-script",
                                   str(script), *extra)
    return ext


def chain(lab: LabHandle, node: str, tap: str) -> str:
    table = f"fabriclab-{naming.node_tag(lab.lab.config()['fabric_id'], node)}"
    r = subprocess.run(["nft", "list", "chain", "bridge", table, f"port-{tap}"], capture_output=True, text=True)
    return r.stdout


def drops(listing: str, rule: str) -> int:
    line = next(x for x in listing.splitlines() if rule in x)
    return int(line.split("packets ")[1].split()[0])


def test_a_guest_cannot_spoof_poison_arp_or_serve_dhcp_to_its_neighbour(lab: LabHandle, tmp_path: Path) -> None:
    names = ["ps-1", "ps-2", "ps-3"]
    for name in names:
        lab.fabric("vm", "create", "-g", "E2E", "-n", name, "--image", IMAGE, "--size", "Lab_A0", "--no-wait")
    vms = {}
    for name in names:
        op = lab.json("vm", "show", "-g", "E2E", "-n", name)["properties"]["lastOperationId"]
        assert lab.fabric("operation", "wait", op, check=False).returncode == 0
        vm = lab.json("vm", "show", "-g", "E2E", "-n", name, "--instance-view")
        nic = lab.json("network", "nic", "show", "-g", "E2E", "-n",
                       vm["properties"]["networkProfile"]["networkInterfaces"][0]["id"].rsplit("/", 1)[1])
        vms[name] = {"node": vm["properties"]["instanceView"]["nodeName"],
                     "mac": nic["properties"]["macAddress"].replace("-", ":").lower(),
                     "ip": nic["properties"]["ipConfigurations"][0]["properties"]["privateIpAddress"],
                     "port": nic["properties"]["port"], "bridge": nic["properties"]["bridge"]}
    attacker, victim = next((a, v) for a in names for v in names if a < v and vms[a]["node"] == vms[v]["node"])
    me, them = vms[attacker], vms[victim]
    node = me["node"]
    tag = naming.node_tag(lab.lab.config()["fabric_id"], node)
    tap = naming.tap(tag, me["mac"])
    assert me["port"] == tap                                            # `nic show` names the filtered port
    assert f" {tap}: " in subprocess.run(["ip", "-o", "link", "show", "master", me["bridge"]], capture_output=True,
                                        text=True).stdout            # on the bridge `nic show` names
    gateway = "10.0.0.1"
    svc_mac = subprocess.run(["ip", "-n", naming.service_ns(tag, json.loads(lab.fabric(
        "network", "vnet", "show", "-g", "E2E", "-n", "E2E-vnet").stdout)["properties"]["vni"]), "-br", "link",
        "show", naming.SERVICE_IFACE], capture_output=True, text=True).stdout.split()[2]

    attack = tmp_path / "attack.sh"
    attack.write_text(
        f"A={me['ip']}; V={them['ip']}; G={gateway}\n"
        f"imds() {{ timeout 3 wget -q -O - --header 'Metadata: true' {IMDS} 2>/dev/null; }}\n"
        # address spoofing: the victim's address, then its IMDS document and goal state
        "ip addr del $A/24 dev eth0; ip addr add $V/24 dev eth0; ip route add default via $G 2>/dev/null\n"
        "echo \"spoofed imds: [$(imds | head -c 200)]\"\n"
        "echo \"spoofed goalstate: [$(timeout 3 wget -q -O - --header 'x-ms-version: 2012-11-30' "
        "\"http://$G/machine?comp=goalstate\" 2>/dev/null | head -c 200)]\"\n"
        "ip addr del $V/24 dev eth0; ip addr add $A/24 dev eth0; ip route add default via $G 2>/dev/null\n"
        # a rogue DHCP server, for the rest of the attack (it answers from the attacker's own address)
        "printf 'start 10.0.0.200\\nend 10.0.0.210\\ninterface eth0\\nlease_file %s/rogue.leases\\n"
        "pidfile %s/rogue.pid\\nopt router %s\\nopt dns %s\\n' \"$PWD\" \"$PWD\" $A $A > rogue.conf\n"
        "touch rogue.leases; udhcpd -f rogue.conf > rogue.log 2>&1 & rogue=$!\n"
        # ARP spoofing: the gateway's address, announced again and again while the victim watches
        "ip addr add $G/32 dev eth0\n"
        "for i in $(seq 1 12); do arping -U -c 1 -s $G -I eth0 $G >/dev/null 2>&1; sleep 1; done\n"
        "ip addr del $G/32 dev eth0; ip route replace default via $G dev eth0\n"
        "kill $rogue; echo \"rogue server: $(grep -c OFFER rogue.log) offers\"; head -c 300 rogue.log\n"
        "echo \"own imds: [$(imds | head -c 60)]\"\n")
    watch = tmp_path / "watch.sh"
    watch.write_text(
        f"for i in $(seq 1 12); do\n"
        f"  echo \"gateway: $(ip neigh show {gateway})\"\n"
        f"  timeout 3 wget -q -O - --header 'Metadata: true' {IMDS} >/dev/null 2>&1 && echo imds ok || echo imds lost\n"
        f"  udhcpc -i eth0 -n -q -t 2 -T 2 -s /bin/true 2>&1 | grep -o 'obtained from [0-9.]*'\n"
        f"  sleep 1\n"
        f"done\n")
    op = run(lab, attacker, attack, "--no-wait")["id"]
    seen = stdout_of(run(lab, victim, watch))
    assert lab.fabric("operation", "wait", op, check=False).returncode == 0
    said = stdout_of(lab.json("vm", "extension", "show", "-g", "E2E", "--vm-name", attacker, "-n",
                              "CustomScriptExtension", "--instance-view"))

    # spoofing: no document, no goal state of the victim's; its own address still works
    assert "spoofed imds: []" in said and "spoofed goalstate: []" in said, said
    assert "own imds: [" in said and "own imds: []" not in said, said
    # ARP: the victim's gateway stayed the service namespace's MAC, and IMDS never went away
    gw_lines = [x for x in seen.splitlines() if x.startswith("gateway:")]
    assert gw_lines and all(me["mac"] not in x.lower() for x in gw_lines), seen
    assert any(svc_mac.lower() in x.lower() for x in gw_lines), seen
    assert "imds lost" not in seen and "imds ok" in seen, seen
    # DHCP: every lease the victim was offered came from the fabric's server
    offers = [x for x in seen.splitlines() if x.startswith("obtained from")]
    assert offers and set(offers) == {f"obtained from {gateway}"}, seen
    # the attacker's port dropped what it tried: foreign addresses, ARP for the gateway, DHCP offers
    listing = chain(lab, node, tap)
    assert drops(listing, "arp saddr ip") + drops(listing, f"ip saddr != {me['ip']}") > 0, listing
    assert drops(listing, "udp sport 67") > 0 and "rogue server: 0 offers" not in said, listing + said

    # the create's trace shows the port's filters, set once (the domain was defined with its tap named)
    op = lab.json("vm", "show", "-g", "E2E", "-n", attacker)["properties"]["lastOperationId"]
    trace = lab.fabric("operation", "show", op, "--trace").stdout
    assert f"port security on {tap}: only MAC {me['mac']} and IP {me['ip']}" in trace
    assert "domain-redefined" not in trace
    # the filters go with the NICs
    for name in names:
        lab.fabric("vm", "delete", "-g", "E2E", "-n", name, "--yes")
    assert chain(lab, node, tap) == ""
