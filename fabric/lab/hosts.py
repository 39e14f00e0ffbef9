"""Simulated hosts: several hosts on one machine, each a network namespace with a private mount namespace of
its own, in which its own virtlogd and libvirtd run, joined by a switch on a test network that exists only
inside those namespaces.

    switch namespace  NS-sw: bridge sw0
    host H            NS-H:  eth0 (HOSTS_PREFIX address) -> sw0; lo up
                      a holder process (`sleep infinity`) keeps H's mount namespace, where /run/libvirt is a
                      tmpfs and /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt are
                      H's own folders (its libvirtd sees only its own domains, its qemu.conf is its own)
    H.run(argv), H.spawn(name, argv)   a program inside H (nsenter into the holder's namespaces)

Nothing is shared between simulated hosts but the kernel (and what the kernel keeps machine-wide: cgroups,
/dev/kvm). Everything is removed by the exact names and pids made here (`down`).
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from fabric.files import PRIVATE_DIR, TRAVERSE_DIR, ensure_dir, private_opener
from fabric.hostinfo import running_pid
from fabric.lab.processes import pid_alive
from nodeagent.netsvc import iproute

HOSTS_PREFIX = ipaddress.IPv4Network("192.168.253.0/24")
LIBVIRT_DIRS = {"lib": "/var/lib/libvirt", "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}
READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


@dataclasses.dataclass
class SimulatedHost:
    name: str
    root: Path
    ns: str
    address: str
    holder: subprocess.Popen[bytes] | None = None
    spawned: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)

    @property
    def nbd_tls(self) -> Path:
        """Where this host's qemu finds its NBD client certificate (its qemu.conf says so)."""
        return self.root / "nbd-tls"

    def argv(self, argv: list[str]) -> list[str]:
        assert self.holder is not None, f"host {self.name} is not up"
        return ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "--", *argv]

    def run(self, argv: list[str], timeout_s: float = 120.0, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(argv), capture_output=True, text=True, timeout=timeout_s, check=check,
                              env={**os.environ, **(env or {})})

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """A long-running program inside this host, logged to ROOT/logs/NAME.log."""
        logs = ensure_dir(self.root / "logs", PRIVATE_DIR)
        with open(logs / f"{name}.log", "ab", opener=private_opener) as log:
            proc = subprocess.Popen(self.argv(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.spawned[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.spawned.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_GRACE_S)

    def log(self, name: str) -> str:
        path = self.root / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class SimulatedHosts:
    def __init__(self, root: Path, names: list[str], tag: str) -> None:
        """`tag` names this set's namespaces (fl-TAG-sw, fl-TAG-HOST): short, unique on the machine."""
        self.root = root
        self.switch = f"fl-{tag}-sw"
        self.hosts = {n: SimulatedHost(n, root / n, f"fl-{tag}-{n}", str(HOSTS_PREFIX.network_address + i + 1))
                      for i, n in enumerate(names)}

    def __getitem__(self, name: str) -> SimulatedHost:
        return self.hosts[name]

    def up(self) -> None:
        ensure_dir(self.root, TRAVERSE_DIR)
        iproute.ensure_netns(self.switch)
        iproute.run("ip", "link", "add", "sw0", "type", "bridge", ns=self.switch)
        iproute.run("ip", "link", "set", "sw0", "up", ns=self.switch)
        for i, h in enumerate(self.hosts.values()):
            self._network(h, i)
            self._mounts_and_libvirt(h)
        for h in self.hosts.values():                # their libvirtds start side by side
            deadline = time.monotonic() + READY_TIMEOUT_S
            # until the holder says "ready", /run/libvirt in its namespace may still be the machine's
            while "ready" not in h.log("host") or h.run(["virsh", "-c", "qemu:///system", "version"]).returncode:
                if h.holder is None or h.holder.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"simulated host {h.name}: libvirtd did not answer\n{h.log('host')}")
                time.sleep(0.2)

    def _network(self, h: SimulatedHost, i: int) -> None:
        iproute.ensure_netns(h.ns)
        iproute.run("ip", "link", "set", "lo", "up", ns=h.ns)
        iproute.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}", ns=h.ns)
        iproute.run("ip", "link", "set", f"p{i}", "netns", self.switch, ns=h.ns)
        iproute.run("ip", "link", "set", f"p{i}", "master", "sw0", ns=self.switch)
        iproute.run("ip", "link", "set", f"p{i}", "up", ns=self.switch)
        iproute.run("ip", "addr", "add", f"{h.address}/{HOSTS_PREFIX.prefixlen}", "dev", "eth0", ns=h.ns)
        iproute.run("ip", "link", "set", "eth0", "up", ns=h.ns)

    def _mounts_and_libvirt(self, h: SimulatedHost) -> None:
        """The host's own libvirt folders (its configuration copied from this machine's, without its networks
        or domains) mounted over the machine's in a private mount namespace, and its own daemons."""
        lv = ensure_dir(h.root / "libvirt", TRAVERSE_DIR)
        etc = lv / "etc"
        if not etc.exists():
            shutil.copytree("/etc/libvirt", etc, symlinks=True,
                            ignore=lambda d, names: [n for n in names if n.endswith(".xml") or n == "autostart"])
            ensure_dir(h.nbd_tls, 0o750)                    # libvirtd refuses a certificate folder that is not there
            with open(etc / "qemu.conf", "a") as conf:     # qemu's NBD client certificate: the node agent's
                conf.write(f'\n# simulated host {h.name}\nnbd_tls_x509_cert_dir = "{h.nbd_tls}"\n'
                           f"nbd_tls_x509_verify = 1\n")
        mounts = ["mount -t tmpfs -o mode=0755 tmpfs /run/libvirt", f"mount --bind {etc} /etc/libvirt"]
        cache = lv / "cache"
        if not cache.exists() and Path("/var/cache/libvirt").is_dir():
            # a copy of this machine's probe of its qemu binaries (the same ones): without it each libvirtd
            # probes them again at start, seconds of CPU
            shutil.copytree("/var/cache/libvirt", cache, symlinks=True)
        for own, d in LIBVIRT_DIRS.items():
            mounts.append(f"mount --bind {ensure_dir(lv / own, TRAVERSE_DIR)} {d}")
        script = " && ".join([*mounts, f"virtlogd -d -p {lv}/virtlogd.pid", f"libvirtd -d -p {lv}/libvirtd.pid",
                              "echo ready", "exec sleep infinity"])
        logs = ensure_dir(h.root / "logs", PRIVATE_DIR)
        with open(logs / "host.log", "ab", opener=private_opener) as log:
            h.holder = subprocess.Popen(["ip", "netns", "exec", h.ns, "unshare", "-m", "--propagation", "private",
                                         "--", "sh", "-c", script], stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)

    def stop_all(self, name: str) -> None:
        """SIGTERM the program `name` on every host at once, then wait for each."""
        running = [h for h in self.hosts.values() if name in h.spawned and h.spawned[name].poll() is None]
        for h in running:
            h.spawned[name].send_signal(signal.SIGTERM)
        for h in running:
            h.stop(name)

    def down(self) -> None:
        for h in self.hosts.values():
            for name in list(h.spawned):
                h.stop(name)
        daemons = []
        for h in self.hosts.values():
            if h.holder is not None and h.holder.poll() is None:
                listed = h.run(["virsh", "-c", "qemu:///system", "list", "--all", "--name"]).stdout.split()
                for dom in listed:                    # this host's own libvirtd: every domain in it is ours
                    h.run(["virsh", "-c", "qemu:///system", "destroy", dom])
                    h.run(["virsh", "-c", "qemu:///system", "undefine", dom, "--nvram"])
                for d in ("libvirtd", "virtlogd"):
                    pid = running_pid(h.root / "libvirt" / f"{d}.pid", d)
                    if pid:
                        os.kill(pid, signal.SIGTERM)
                        daemons.append(pid)
        deadline = time.monotonic() + STOP_GRACE_S
        for pid in daemons:
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
        for h in self.hosts.values():
            if h.holder is not None and h.holder.poll() is None:
                h.holder.terminate()
                h.holder.wait(STOP_GRACE_S)
            iproute.delete_netns(h.ns)
        iproute.delete_netns(self.switch)
