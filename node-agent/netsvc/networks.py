"""All networks of one node: converge bridges, service namespaces and dnsmasq to the VMs assigned here.

A network's resources exist on a node while a VM of that network is assigned
to it. What the agent made is recorded by a folder per network
(`{state}/networks/{vni}`): only those are ever torn down, by their exact
names, so other bridges and namespaces on the host are never touched.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fabric.network import naming
from nodeagent.netsvc import iproute
from fabric.files import TRAVERSE_DIR, ensure_dir, private_opener, rotate, write_if_changed
from nodeagent.netsvc.dnsmasq import Dnsmasq, DnsmasqSpec, Reservation
from nodeagent.netsvc.portsec import Port, PortSecurity


IMDS_ADDRESS = "169.254.169.254"
METADATA_START_TIMEOUT_S = 5.0
# what the metadata process speaks of the guest protocol; a running one that speaks another is replaced
# (2: the host plugin, the configuration documents and the handler repository for the reference's agent)
METADATA_PROTOCOL = "2"
log = logging.getLogger("nodeagent")


def stop_pid(pid: int, timeout_s: float = METADATA_START_TIMEOUT_S) -> None:
    """SIGTERM to a process this agent started, and wait for it to be gone."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return                  # exited (its sockets closed); reaped by whoever started it
        except (OSError, IndexError):
            return
        time.sleep(0.02)
PORT_RECHECK_S = 5.0          # how often unchanged port filters are checked against the kernel
NETWORK_RECHECK_S = 30.0      # how often an unchanged network is checked against the kernel and its processes
RESERVATION_EVENT = "DHCP reservation written"


@dataclasses.dataclass(frozen=True)
class NetSpec:
    vni: int
    prefix: str
    gateway: str
    domain: str
    dhcp_hosts: tuple[Reservation, ...]
    dns_hosts: tuple[Reservation, ...]
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)   # private ip -> IMDS/goal-state doc
    peers: frozenset[str] = frozenset()   # underlay addresses of the other nodes with VMs of this network
    blob_names: tuple[str, ...] = ()      # {account}.blob.{domain} of every storage account
    blob_stamp: str = ""                  # their CNAME target, answered with the gateway


class Networks:
    def __init__(self, state_dir: Path, tag: str, underlay_ns: str = "", underlay_ip: str = "",
                 blob_relay: str = "", port_recheck_s: float = PORT_RECHECK_S,
                 network_recheck_s: float = NETWORK_RECHECK_S) -> None:
        self.blob_relay = blob_relay
        self.underlay_ns = underlay_ns
        self.underlay_ip = underlay_ip
        self.root = state_dir / "networks"
        ensure_dir(self.root, TRAVERSE_DIR)       # dnsmasq reads its files here by name after dropping root
        self.tag = tag
        self.ports = PortSecurity(tag, self.root / "port-security.json")
        self.port_recheck_s = port_recheck_s
        self.network_recheck_s = network_recheck_s
        self._secured: frozenset[Port] | None = None
        self._secured_at = 0.0
        self._ensured: dict[int, tuple[NetSpec, float]] = {}   # vni -> the spec last made so, and when

    def secure(self, ports: list[Port]) -> dict[str, list[str]]:
        """Port security for exactly these VM ports (see portsec), and nothing through any other interface on
        this agent's bridges but its service veths and VXLAN devices; what changed, per tap. A new set of ports
        is applied at once; the same set is checked against the kernel (a flushed table, a stray interface)
        at most every port_recheck_s, not on every pass of a booting guest's fast polling."""
        want, now_s = frozenset(ports), time.monotonic()
        if want == self._secured and now_s - self._secured_at < self.port_recheck_s:
            return {}
        events = self.ports.converge(want, self._strays({p.tap for p in want}))
        self._secured, self._secured_at = want, now_s
        return events

    def _strays(self, taps: set[str]) -> set[str]:
        vnis = self._vnis()
        ours = {n for vni in vnis for n in (naming.host_veth(self.tag, vni), naming.vxlan(self.tag, vni))}
        return {name for vni in vnis for name in iproute.bridge_ports(self.bridge(vni))} - taps - ours

    def _vnis(self) -> list[int]:
        return [int(f.name) for f in self.root.iterdir() if f.name.isdigit()]

    def teardown(self) -> None:
        """Everything this agent made for networks: port filters, bridges, namespaces, processes."""
        self.ports.converge(())
        self.converge({})

    def bridge(self, vni: int) -> str:
        return naming.bridge(self.tag, vni)

    def tap(self, mac: str) -> str:
        """The tap of the VM NIC with this MAC on this node (the name its port filters match)."""
        return naming.tap(self.tag, mac)

    def dnsmasq(self, vni: int) -> Dnsmasq:
        """The network's dnsmasq on this node (its files and process, named by the network)."""
        return Dnsmasq(self.root / str(vni))

    def converge(self, specs: dict[int, NetSpec]) -> dict[int, list[str]]:
        """Make every network of `specs` present and current, remove the others this agent made.
        Returns, per network, what was done (for the trace). A network whose spec is the one last made and
        whose processes run (a killed dnsmasq comes back at the next pass) is checked against the kernel (a
        deleted bridge) at most every network_recheck_s, not on every pass."""
        done: dict[int, list[str]] = {}
        now_s = time.monotonic()
        for vni, spec in specs.items():
            last = self._ensured.get(vni)
            if last is not None and last[0] == spec and now_s - last[1] < self.network_recheck_s and \
                    self.dnsmasq(vni).pid() is not None and self.metadata_pid(vni) is not None:
                continue
            self._ensured.pop(vni, None)          # a failure half-way is made again at the next pass
            done[vni] = self._ensure(spec)
            self._ensured[vni] = (spec, now_s)
        for vni in self._vnis():
            if vni not in specs:
                self._ensured.pop(vni, None)
                self.remove(vni)
                done[vni] = ["removed"]
        return {k: v for k, v in done.items() if v}

    def _ensure(self, spec: NetSpec) -> list[str]:
        ensure_dir(self.root / str(spec.vni), TRAVERSE_DIR)    # its metadata.json and guest reports are 0600
        bridge, veth = self.bridge(spec.vni), naming.host_veth(self.tag, spec.vni)
        ns = naming.service_ns(self.tag, spec.vni)
        plen = ipaddress.IPv4Network(spec.prefix).prefixlen
        events = []
        if iproute.ensure_bridge(bridge):
            events.append(f"bridge {bridge} created (layer 2 only, no address)")
        if iproute.ensure_netns(ns):
            events.append(f"service namespace {ns} created")
        # the services' end has the network's MTU: a guest that ignores DHCP's MTU option (cloud-init's first,
        # ephemeral DHCP) still gets answers larger than a packet (IMDS with SSH keys)
        if iproute.ensure_veth(bridge, veth, ns, naming.SERVICE_IFACE, [f"{spec.gateway}/{plen}", f"{IMDS_ADDRESS}/32"],
                               mtu=naming.VXLAN_MTU):
            events.append(f"veth {veth} <-> {ns}:{naming.SERVICE_IFACE} ({spec.gateway}/{plen}, {IMDS_ADDRESS})")
        if self.underlay_ip:
            vx = naming.vxlan(self.tag, spec.vni)
            if iproute.ensure_vxlan(vx, spec.vni, bridge, self.underlay_ns, self.underlay_ip, naming.VXLAN_PORT,
                                    naming.VXLAN_MTU):
                events.append(f"vxlan {vx} (VNI {spec.vni}) on {bridge}, underlay {self.underlay_ip}")
            iproute.isolate(vx)
            iproute.isolate(veth)
            new_peers, gone_peers = iproute.set_flood_peers(vx, set(spec.peers))
            if new_peers or gone_peers:
                events.append(f"vxlan peers: {', '.join(sorted(spec.peers)) or 'none'}")
        action, reserved = self.dnsmasq(spec.vni).converge(DnsmasqSpec(
            ns=ns, interface=naming.SERVICE_IFACE, prefix=spec.prefix, gateway=spec.gateway, domain=spec.domain,
            dhcp_hosts=spec.dhcp_hosts, dns_hosts=spec.dns_hosts,
            cnames=tuple((n, spec.blob_stamp) for n in spec.blob_names) if spec.blob_stamp else (),
            host_records=((spec.blob_stamp, spec.gateway),) if spec.blob_stamp else ()))
        events += [f"{RESERVATION_EVENT}: {line}" for line in reserved]
        if action:
            events.append(f"dnsmasq {action}: {len(spec.dhcp_hosts)} reservations, {len(spec.dns_hosts)} DNS names")
        folder = self.root / str(spec.vni)
        write_if_changed(folder / "metadata.json", json.dumps(spec.metadata, sort_keys=True, indent=1))
        if self.metadata_pid(spec.vni) is None:
            self._start_metadata(spec.vni, ns)
            events.append(f"metadata service and wireserver started on {IMDS_ADDRESS}:80 and {spec.gateway}:80")
        return events

    def metadata_pid(self, vni: int) -> int | None:
        """The pid of the network's metadata process when it runs (it is started by this agent)."""
        folder = self.root / str(vni)
        try:
            pid = int((folder / "metadata.pid").read_text())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        if "nodeagent.netsvc.metadata" not in cmd or str(folder) not in cmd:
            return None
        if f"--protocol\0{METADATA_PROTOCOL}\0" not in cmd + "\0":
            # started by an earlier agent, speaking less of the guest protocol (no host plugin, say): ours,
            # stopped by its pid so that the current one takes its ports
            log.info("metadata process %d of network %d speaks an older protocol: replacing it", pid, vni)
            stop_pid(pid)
            return None
        return pid

    def _start_metadata(self, vni: int, ns: str) -> None:
        folder = self.root / str(vni)
        (folder / "metadata.pid").unlink(missing_ok=True)
        log = folder / "metadata.log"
        rotate(log)
        with open(log, "ab", opener=private_opener) as out:      # until its logging is set up (then bounded)
            subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "nodeagent.netsvc.metadata",
                              "--folder", str(folder), "--pid-file", str(folder / "metadata.pid"),
                              "--protocol", METADATA_PROTOCOL,
                              "--blob-relay", self.blob_relay, "--log-file", str(log)],
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + METADATA_START_TIMEOUT_S
        while self.metadata_pid(vni) is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def health(self, vni: int, ip: str) -> dict[str, Any] | None:
        """The last health report a guest posted to the wireserver, with its time."""
        return self._posted(vni, "health", ip)

    def agent_status(self, vni: int, ip: str) -> dict[str, Any] | None:
        """The last status the guest agent put (its status blob: the agent's and its handlers'), with its time."""
        return self._posted(vni, "agent", ip)

    def _posted(self, vni: int, kind: str, ip: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / str(vni) / kind / f"{ip}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def extension_statuses(self, vni: int, ip: str) -> dict[str, dict[str, Any]]:
        """Extension name -> the last status the guest posted for it, with its time."""
        out = {}
        for f in sorted((self.root / str(vni) / "status" / ip).glob("*.json")):
            try:
                data = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                out[f.stem] = data
        return out

    def remove(self, vni: int) -> None:
        self.dnsmasq(vni).stop()
        pid = self.metadata_pid(vni)
        if pid is not None:
            stop_pid(pid)
        iproute.delete_link(naming.vxlan(self.tag, vni))
        iproute.delete_link(naming.host_veth(self.tag, vni))
        iproute.delete_netns(naming.service_ns(self.tag, vni))
        iproute.delete_link(self.bridge(vni))
        shutil.rmtree(self.root / str(vni), ignore_errors=True)
