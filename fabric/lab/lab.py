"""`fabric lab up|down|status`: a whole fabric on one machine.

up:   builds the default gallery image when missing, makes the lab's cluster
      CA and the controller's and the admin's credentials when missing
      (fabric.pki; the CLI finds admin.json by default), then starts an etcd
      member (TLS with etcd's own CA, pki/etcd), the controller (with the CA
      key: it enrolls nodes) and N node agents (own names, state folders and
      fault domains), each a separate process that first joins with a one-time
      token, as on a real cluster; waits until every node has registered.
      Idempotent: what already runs is left alone.
down: stops the node agents (which power off their domains), the controller
      and etcd: only the pids the lab started. --purge then removes the lab
      folder and any domain still owned by the lab's nodes.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fabric.gallery import Gallery, default_source_hash, parse_urn
from fabric.hostinfo import host_memory_mb
from fabric.lab import underlay
from fabric.files import PRIVATE_DIR, ensure_dir
from fabric.lab.config import ADMIN_CREDENTIAL, ETCD_CREDENTIAL, make_lab_dir, read_lab, write_lab
from fabric.lab.etcd import ETCD_START_TIMEOUT_S, EtcdCa, Member, wait_answering
from fabric.lab.processes import Processes
from fabric.model import NodeRecord
from fabric.enrollment import Enrollment
from fabric.join import JoinError, join
from fabric.pki import ADMINS, CONTROLLERS, Authority, Credential, Identity, PkiError, serial_of
from fabric.store import Store, keys

NODES_READY_TIMEOUT_S = 60.0
CONTROLLER_READY_TIMEOUT_S = 30.0
CLEAN_UP_TIMEOUT_S = 120.0
RENEW_DAYS = 30                 # a lab credential that expires sooner is issued again by `lab up`
LAB_TOKEN_TTL_S = 300           # the token each lab node joins with
DEFAULTS = {"etcd_port": 23790, "controller_port": 7450, "location": "local"}


def _say(msg: str) -> None:
    sys.stderr.write(f"lab: {msg}\n")


def _wait(what: str, ready: Any, timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} not ready after {timeout_s:g} s{tail}")


class Lab:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs = Processes(root)

    @property
    def gallery_dir(self) -> Path:
        return self.root / "gallery"

    def config(self) -> dict[str, Any]:
        return read_lab(self.root) or {}

    def store(self) -> Store:
        """A connection to the lab's etcd, with the lab's etcd client credential."""
        cfg = self.config()
        return Store(cfg["etcd"], tls=Credential.load(Path(cfg["etcd_credential"])))

    def up(self, nodes: int, image: str, hypervisor: str, etcd_port: int, controller_port: int,
           location: str, extension_timeout_s: int = 300) -> dict[str, Any]:
        make_lab_dir(self.root)
        cfg = self.config()
        if cfg and self.procs.alive("etcd"):
            etcd_port, controller_port = cfg["etcd_port"], cfg["controller_port"]
            location = cfg["location"]
        running_nodes = [n for n in cfg.get("nodes", []) if self.procs.alive(n)]
        if len(running_nodes) > nodes:
            raise RuntimeError(f"the lab runs {len(running_nodes)} node agents; run `fabric lab down` before "
                               f"starting it with --nodes {nodes}")
        for name, port in (("etcd", etcd_port), ("etcd", etcd_port + 1), ("controller", controller_port),
                           ("controller", controller_port + 1), ("controller", controller_port + 2)):
            if not self.procs.alive(name) and _listening(port):
                raise RuntimeError(f"port {port} for the lab's {name} is in use by another process "
                                   f"({_listener(port)}); choose another with --{name}-port")
        resolved = self._ensure_image(image)
        etcd_url = f"https://127.0.0.1:{etcd_port}"
        blob_port = controller_port + 1
        cfg = {"etcd": etcd_url, "etcd_credential": str(self.root / ETCD_CREDENTIAL), "etcd_port": etcd_port, "controller": f"127.0.0.1:{controller_port}",
               "controller_port": controller_port, "blob_endpoint": f"http://127.0.0.1:{blob_port}", "location": location, "gallery": str(self.gallery_dir),
               "image": resolved, "nodes": [f"node-{i}" for i in range(1, nodes + 1)]}
        write_lab(self.root, cfg)
        cfg["fabric_id"] = self._start_etcd(etcd_port)
        write_lab(self.root, cfg)
        controller_credential = self._ensure_pki(cfg["controller"])
        py = sys.executable
        join_address = f"127.0.0.1:{controller_port + 2}"
        self.procs.start("controller", [py, "-m", "fabric.controller.main", "--etcd", etcd_url,
                                        "--etcd-credential", cfg["etcd_credential"],
                                        "--credential", str(controller_credential),
                                        "--ca-dir", str(self.root / "pki"), "--join-listen", join_address,
                                        "--listen", cfg["controller"], "--gallery", str(self.gallery_dir),
                                        "--location", location,
                                        "--state-dir", str(self.root / "controller"),
                                        "--blob-listen", f"127.0.0.1:{blob_port}",
                                        "--extension-timeout", str(extension_timeout_s),
                                        "--log-file", str(self.procs.log_path("controller"))],
                         marker="fabric.controller.main")
        store = self.store()
        try:
            _wait("controller", lambda: _listening(controller_port) and _listening(controller_port + 2),
                  CONTROLLER_READY_TIMEOUT_S, self.procs.log_path("controller"))
            self._enroll_nodes(store, join_address, [n for n in cfg["nodes"] if not self.procs.alive(n)])
            self._start_nodes(cfg, hypervisor)
            _wait(f"{nodes} node agents", lambda: all(store.get(keys.node(n), NodeRecord) for n in cfg["nodes"]),
                  NODES_READY_TIMEOUT_S, self.procs.log_path(cfg["nodes"][-1]))
        finally:
            store.close()
        return cfg

    def _start_nodes(self, cfg: dict[str, Any], hypervisor: str) -> None:
        py = sys.executable
        nodes = len(cfg["nodes"])
        host_cores = os.cpu_count() or 1
        mem_mb = host_memory_mb()
        underlays = underlay.ensure(self.root, cfg["nodes"])
        for i, name in enumerate(cfg["nodes"]):
            state = self.root / "nodes" / name
            ul_ns, ul_ip = underlays[name]
            self.procs.start(name, [py, "-m", "nodeagent.main", "--name", name, "--fault-domain", str(i),
                                    "--state-dir", str(state), "--hypervisor", hypervisor,
                                    "--credential", str(self.root / "pki" / f"{name}.json"),
                                    "--cores", str(max(1, host_cores // nodes)),
                                    "--memory-mb", str(mem_mb // nodes), "--underlay-ns", ul_ns,
                                    "--underlay-ip", ul_ip, "--power-off-on-exit",
                                    "--log-file", str(self.procs.log_path(name))],
                             marker=f"--name {name}")

    def _enroll_nodes(self, store: Store, join_address: str, nodes: list[str]) -> None:
        """Each node joins as on a real cluster (fabric.join, with a one-time token through the controller's
        join endpoint) unless its credential still fits and is the one enrolled."""
        enrollment = Enrollment(store, Authority.load(self.root / "pki"))
        for node in nodes:
            path = self.root / "pki" / f"{node}.json"
            held = enrollment.enrolled(node)
            if held and self._fits(path) and held.serial == serial_of(Credential.load(path).certificate.encode()):
                continue
            if held:
                enrollment.remove(node)
            token, _ = enrollment.create_token(LAB_TOKEN_TTL_S, f"fabric lab up: {node}")
            try:
                join(join_address, token, node).save(path)
            except JoinError as exc:
                raise RuntimeError(f"{node} could not join the lab's controller: {exc}") from None
            _say(f"{node} joined (certificate {serial_of(Credential.load(path).certificate.encode())})")

    def _fits(self, path: Path) -> bool:
        """A credential of this lab's cluster CA and controller, valid for RENEW_DAYS more."""
        try:
            ca = (self.root / "pki" / "ca.pem").read_text()
        except OSError:
            return False
        return _fits(path, ca, self.config().get("controller", ""))

    def _ensure_pki(self, controller: str) -> Path:
        """The lab's cluster CA (its key root only, in pki/), the controller's credential for its API's TLS,
        and the admin credential the CLI finds by default. Kept while they fit; made again when not. (Nodes
        join with tokens: _enroll_nodes.)"""
        pki = ensure_dir(self.root / "pki", PRIVATE_DIR)
        try:
            ca = Authority.load(pki)
        except PkiError:
            ca = Authority.create(self.root.name)
            ca.save(pki)
            _say(f"cluster CA made ({ca.fingerprint})")

        host = controller.rsplit(":", 1)[0]
        wanted = {pki / "controller.json": (Identity("controller:lab", CONTROLLERS), (host, "localhost")),
                  self.root / ADMIN_CREDENTIAL: (Identity("admin", ADMINS), ())}
        for path, (identity, hosts) in wanted.items():
            if not self._fits(path):
                ca.credential(identity, controller, hosts).save(path)
        return pki / "controller.json"

    def _ensure_image(self, urn: str) -> str:
        publisher, offer, sku, version = parse_urn(urn)
        gallery = Gallery(self.gallery_dir)
        if version.lower() == "latest":
            versions = gallery.versions(publisher, offer, sku)
            # a new version when the image's sources changed since the latest was built (VMs keep theirs)
            stale = bool(versions) and (publisher, offer, sku) == ("fabriclab", "busybox", "lab") and \
                gallery.built_from(publisher, offer, sku, versions[-1]) != default_source_hash()
            if not versions or stale:
                _say(f"building the default image {publisher}:{offer}:{sku} "
                     f"({'its sources changed since ' + versions[-1] if stale else 'first run'})")
                self._build(gallery, dt.datetime.now(dt.timezone.utc).strftime("1.0.%Y%m%d%H%M"))
        elif version not in gallery.versions(publisher, offer, sku):
            self._build(gallery, version)
        rec = gallery.resolve(urn)
        return f"{rec.publisher}:{rec.offer}:{rec.sku}:{rec.exact_version}"

    def _build(self, gallery: Gallery, version: str) -> None:
        try:
            gallery.build_default(version)
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"image build failed:\n{exc.stdout}") from None

    def _start_etcd(self, port: int) -> str:
        """Start the lab's etcd member (unless running), TLS on its client and peer ports with certificates of
        the lab's etcd CA (pki/etcd); returns the fabric id kept in it."""
        member = Member("lab", "127.0.0.1", port, port + 1)
        etcd_ca = EtcdCa(ensure_dir(self.root / "pki", PRIVATE_DIR) / "etcd")
        argv = member.argv([member], self.root / "etcd", etcd_ca.member_files(member))
        self.procs.start("etcd", argv, marker=str(self.root / "etcd"))
        client = self.root / ETCD_CREDENTIAL
        if not _fits(client, etcd_ca.ca.cert_pem.decode(), member.client_url):
            etcd_ca.client("lab", member.client_url).save(client)
        store = Store(member.client_url, tls=Credential.load(client))
        try:
            wait_answering(store, ETCD_START_TIMEOUT_S)
            return store.fabric_id()
        finally:
            store.close()

    def down(self, purge: bool) -> list[str]:
        cfg = self.config()
        stopped = []
        for name in [*cfg.get("nodes", []), "controller", "etcd"]:
            if self.procs.stop(name):
                stopped.append(name)
        if purge:
            self._clean_up_nodes(cfg.get("fabric_id", ""), cfg.get("nodes", []))
            underlay.remove(self.root, cfg.get("nodes", []))
            if self.root.exists():
                shutil.rmtree(self.root)
        return stopped

    def _clean_up_nodes(self, fabric_id: str, nodes: list[str]) -> None:
        """What the lab's nodes left (an agent died before powering off): each node agent's own clean-up,
        which removes its domains, port filters, bridges and namespaces by their exact names."""
        for node in nodes if fabric_id else []:
            subprocess.run([sys.executable, "-m", "nodeagent.main", "--name", node, "--state-dir",
                            str(self.root / "nodes" / node), "--clean-up", fabric_id], check=False,
                           timeout=CLEAN_UP_TIMEOUT_S)

    def status(self) -> list[list[str]]:
        cfg = self.config()
        rows = []
        for name in ["etcd", "controller", *cfg.get("nodes", [])]:
            pid = self.procs.pid(name)
            rows.append([name, str(pid or "-"), "running" if pid else "stopped", str(self.procs.log_path(name))])
        return rows


def _fits(path: Path, ca_pem: str, server: str) -> bool:
    """A credential of this CA, for this server, valid for RENEW_DAYS more."""
    try:
        cred = Credential.load(path)
    except PkiError:
        return False
    return cred.ca == ca_pem and cred.controller == server and cred.valid_for(RENEW_DAYS)


def _listener(port: int) -> str:
    """Who listens on a TCP port, as `ss` tells it."""
    r = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False)
    return " ".join(r.stdout.split()[3:]) or "?"


def _listening(port: int) -> bool:
    """Whether a socket listens on this TCP port (the kernel's tables, not a connection attempt: connecting to
    a free port in the ephemeral range can connect to itself, and a port is free once its listener died)."""
    want = f"{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and fields[1].rsplit(":", 1)[1] == want:      # 0A: LISTEN
                return True
    return False

