"""dnsmasq for one network on one node, run inside the network's service namespace.

Static reservations only (MAC -> IP, hostname = VM name, infinite lease); DNS
for every VM of the network by short name and FQDN (`--expand-hosts` over an
addn-hosts file); router and DNS server = the gateway; option 245 = the
wireserver address, sent even to a client that does not ask for it (the
reference's guest agents look for it; many DHCP clients do not request it).
No upstream resolvers: nothing is forwarded outside.
Reservations change by rewriting the files and sending SIGHUP; the process is
found again after an agent restart by its pid file, and only a pid whose
command line names this network's folder is ever signalled.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

from fabric.network import naming
from fabric.files import SHARED, rotate, write_if_changed

START_TIMEOUT_S = 5.0


@dataclasses.dataclass(frozen=True)
class Reservation:
    mac: str
    ip: str
    name: str


@dataclasses.dataclass(frozen=True)
class DnsmasqSpec:
    ns: str
    interface: str
    prefix: str          # the subnet, e.g. 10.0.0.0/24
    gateway: str         # where dnsmasq listens; also the router, the DNS server and the wireserver (option 245)
    domain: str          # the network's DNS suffix
    dhcp_hosts: tuple[Reservation, ...]   # reservations of this node's VMs
    dns_hosts: tuple[Reservation, ...]    # every VM of the network, for DNS
    cnames: tuple[tuple[str, str], ...] = ()        # (alias, target): storage accounts' blob names
    host_records: tuple[tuple[str, str], ...] = ()  # (name, address): the storage stamp's name


class Dnsmasq:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pid_file = folder / "dnsmasq.pid"
        self.hosts_file = folder / "dhcp-hosts"
        self.addn_hosts = folder / "addn-hosts"
        self.log_file = folder / "dnsmasq.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            return None
        return pid if str(self.folder) in cmd and "dnsmasq" in cmd else None

    def converge(self, spec: DnsmasqSpec) -> tuple[str, list[str]]:
        """Start, reload or leave dnsmasq: (what it did: "started", "reloaded" or "", reservations added)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        rotate(self.log_file, in_place=True)      # dnsmasq keeps it open, as nobody: copied and truncated
        before = set(self.hosts_file.read_text().splitlines()) if self.hosts_file.exists() else set()
        lines = [f"{h.mac},{h.ip},{h.name},infinite" for h in spec.dhcp_hosts]
        added = [line for line in lines if line not in before]
        changed = write_if_changed(self.hosts_file, "".join(f"{line}\n" for line in lines), SHARED)
        changed |= write_if_changed(self.addn_hosts, "".join(f"{h.ip} {h.name}\n" for h in spec.dns_hosts), SHARED)
        pid = self.pid()
        argv = self._argv(spec)
        args_file = self.folder / "argv"
        if pid is not None and args_file.exists() and args_file.read_text() != "\n".join(argv):
            self.stop()                 # new CNAMEs or records: dnsmasq reads those only at start
            pid = None
        if pid is None:
            self._start(argv)
            args_file.write_text("\n".join(argv))
            return "started", added
        if changed:
            os.kill(pid, signal.SIGHUP)
            return "reloaded", added
        return "", added

    def _argv(self, spec: DnsmasqSpec) -> list[str]:
        net = ipaddress.IPv4Network(spec.prefix)
        return ["ip", "netns", "exec", spec.ns, "dnsmasq", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
                "--strict-order", "--bind-interfaces", f"--interface={spec.interface}", "--except-interface=lo",
                f"--listen-address={spec.gateway}",
                f"--dhcp-range={net.network_address},static,{net.netmask},infinite",
                f"--dhcp-hostsfile={self.hosts_file}", f"--addn-hosts={self.addn_hosts}", "--expand-hosts",
                f"--domain={spec.domain}", f"--local=/{spec.domain}/",
                f"--dhcp-option=option:router,{spec.gateway}", f"--dhcp-option=option:dns-server,{spec.gateway}",
                f"--dhcp-option=option:domain-search,{spec.domain}", f"--dhcp-option-force=245,{spec.gateway}",
                f"--dhcp-option=option:mtu,{naming.VXLAN_MTU}",
                f"--dhcp-leasefile={self.folder / 'leases'}", f"--pid-file={self.pid_file}", "--log-dhcp",
                f"--log-facility={self.log_file}",
                *(f"--host-record={name},{addr}" for name, addr in spec.host_records),
                *(f"--cname={alias},{target}" for alias, target in spec.cnames)]

    def _start(self, argv: list[str]) -> None:
        self.pid_file.unlink(missing_ok=True)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S)
        if r.returncode != 0:
            raise RuntimeError(f"dnsmasq did not start: {r.stderr.strip()}")
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.pid() is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + START_TIMEOUT_S
            while self.pid() is not None and time.monotonic() < deadline:
                time.sleep(0.02)
