"""The `ip` commands the node agent runs, each idempotent, each named by what it creates."""
from __future__ import annotations

import os
import subprocess

IP_TIMEOUT_S = 10


class NetError(Exception):
    pass


def run(*args: str, ns: str = "", check: bool = True) -> str:
    argv = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S)
    if check and r.returncode != 0:
        raise NetError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def link_exists(name: str, ns: str = "") -> bool:
    return subprocess.run((["ip", "-n", ns] if ns else ["ip"]) + ["link", "show", name],
                          capture_output=True).returncode == 0


def netns_exists(name: str) -> bool:
    return name in run("ip", "netns", "list").split()


def ensure_netns(name: str) -> bool:
    if netns_exists(name):
        return False
    run("ip", "netns", "add", name)
    run("ip", "link", "set", "lo", "up", ns=name)
    return True


def ensure_bridge(name: str) -> bool:
    """A bridge that carries only layer 2: it never gets an address."""
    if link_exists(name):
        return False
    run("ip", "link", "add", name, "type", "bridge")
    run("ip", "link", "set", name, "addrgenmode", "none")     # not even an IPv6 link-local address
    run("ip", "link", "set", name, "up")
    return True


def ensure_veth(bridge: str, host_end: str, ns: str, ns_end: str, addresses: list[str], mtu: int = 0) -> bool:
    """A veth from the bridge into the namespace, the namespace end named ns_end and holding addresses; with
    `mtu`, both ends take it (the namespace's TCP then sends segments that fit the network)."""
    created = False
    if not link_exists(ns_end, ns):
        if link_exists(host_end):
            run("ip", "link", "del", host_end)
        run("ip", "link", "add", host_end, "type", "veth", "peer", "name", f"{host_end}p")
        run("ip", "link", "set", host_end, "addrgenmode", "none")
        run("ip", "link", "set", f"{host_end}p", "netns", ns)
        run("ip", "link", "set", f"{host_end}p", "name", ns_end, ns=ns)
        created = True
    if mtu:
        run("ip", "link", "set", host_end, "mtu", str(mtu))
        run("ip", "link", "set", ns_end, "mtu", str(mtu), ns=ns)
    run("ip", "link", "set", host_end, "master", bridge)
    run("ip", "link", "set", host_end, "up")
    run("ip", "link", "set", ns_end, "up", ns=ns)
    have = run("ip", "-o", "addr", "show", "dev", ns_end, ns=ns)
    for addr in addresses:
        if f" {addr} " not in have:
            run("ip", "addr", "add", addr, "dev", ns_end, ns=ns)
    return created


def ensure_vxlan(name: str, vni: int, bridge: str, underlay_ns: str, local_ip: str, port: int, mtu: int) -> bool:
    """A VXLAN device on the bridge whose UDP socket lives in the underlay namespace (the host's network;
    in the one-machine lab a namespace per node): made there, then moved into this (the root) namespace."""
    created = False
    if not link_exists(name):
        args = ["ip", "link", "add", name, "type", "vxlan", "id", str(vni), "local", local_ip, "dstport", str(port),
                "nolearning"]
        run(*args, ns=underlay_ns)
        if underlay_ns:
            run("ip", "link", "set", name, "netns", str(os.getpid()), ns=underlay_ns)
        run("ip", "link", "set", name, "addrgenmode", "none")
        created = True
    run("ip", "link", "set", name, "mtu", str(mtu))
    run("ip", "link", "set", name, "master", bridge)
    run("ip", "link", "set", name, "up")
    return created


def isolate(dev: str) -> None:
    """Isolated bridge ports talk to the VMs' taps but never to each other: the service namespace's veth
    and the VXLAN device are both isolated, so each node's gateway, DHCP and metadata answer only its own
    VMs, while VM-to-VM traffic crosses between nodes."""
    run("bridge", "link", "set", "dev", dev, "isolated", "on")


def bridge_ports(bridge: str) -> set[str]:
    """The interfaces enslaved to a bridge (none when it does not exist)."""
    if not link_exists(bridge):
        return set()
    out = run("ip", "-o", "link", "show", "master", bridge)
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line}


def flood_peers(dev: str) -> set[str]:
    """Underlay addresses the VXLAN device floods broadcast and unknown traffic to."""
    out = run("bridge", "fdb", "show", "dev", dev)
    return {line.split(" dst ")[1].split()[0] for line in out.splitlines()
            if line.startswith("00:00:00:00:00:00") and " dst " in line}


def set_flood_peers(dev: str, peers: set[str]) -> tuple[set[str], set[str]]:
    """Make the device's flood list exactly `peers`; returns (added, removed)."""
    have = flood_peers(dev)
    for p in sorted(peers - have):
        run("bridge", "fdb", "append", "00:00:00:00:00:00", "dev", dev, "dst", p)
    for p in sorted(have - peers):
        run("bridge", "fdb", "del", "00:00:00:00:00:00", "dev", dev, "dst", p)
    return peers - have, have - peers


def delete_link(name: str) -> None:
    """Delete a link if it exists; one that vanishes meanwhile (a veth whose peer's namespace was just
    deleted goes with it) is not an error."""
    if link_exists(name):
        run("ip", "link", "del", name, check=False)
        if link_exists(name):
            raise NetError(f"ip link del {name}: the link is still there")


def delete_netns(name: str) -> None:
    if netns_exists(name):
        run("ip", "netns", "del", name)
