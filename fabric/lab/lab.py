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
from pathlib import Path
from typing import Any

from fabric.core.errors import ArmError
from fabric.gallery import BUILDERS, Gallery, default_source_hash, parse_urn
from fabric.hostinfo import host_memory_mb
from fabric.lab import underlay
from fabric.lab.config import ADMIN_CREDENTIAL, make_lab_dir, read_lab, write_lab
from fabric.lab.control_plane import ControlPlaneHost, fits, listening, say, wait
from fabric.lab.processes import Processes
from fabric.model import NodeRecord
from fabric.enrollment import Enrollment
from fabric.join import JoinError, join
from fabric.pki import Credential, serial_of
from fabric.store import Store, keys

NODES_READY_TIMEOUT_S = 60.0
CLEAN_UP_TIMEOUT_S = 120.0
LAB_TOKEN_TTL_S = 300           # the token each lab node joins with
DEFAULTS = {"etcd_port": 23790, "controller_port": 7450, "location": "local"}


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

    def control_plane(self, etcd_port: int, controller_port: int) -> ControlPlaneHost:
        return ControlPlaneHost(self.root, self.procs, "127.0.0.1", etcd_port, controller_port, name="lab")

    def up(self, nodes: int, image: str, hypervisor: str, etcd_port: int, controller_port: int,
           location: str, extension_timeout_s: int = 300) -> dict[str, Any]:
        check_image(self.gallery_dir, image)      # before anything is made
        make_lab_dir(self.root)
        cfg = self.config()
        if cfg and self.procs.alive("etcd"):
            etcd_port, controller_port = cfg["etcd_port"], cfg["controller_port"]
            location = cfg["location"]
        running_nodes = [n for n in cfg.get("nodes", []) if self.procs.alive(n)]
        if len(running_nodes) > nodes:
            raise RuntimeError(f"the lab runs {len(running_nodes)} node agents; run `fabric lab down` before "
                               f"starting it with --nodes {nodes}")
        cp = self.control_plane(etcd_port, controller_port)
        for name, port in cp.ports():
            if not self.procs.alive(name) and listening(port):
                raise RuntimeError(f"port {port} for the lab's {name} is in use by another process "
                                   f"({_listener(port)}); choose another with --{name}-port")
        resolved = ensure_image(self.gallery_dir, image)
        cfg = {"etcd": cp.etcd_url, "etcd_credential": str(cp.etcd_credential), "etcd_port": etcd_port,
               "controller": cp.api, "controller_port": controller_port,
               "blob_endpoint": f"http://{cp.blob_listen}", "location": location,
               "gallery": str(self.gallery_dir), "image": resolved,
               "nodes": [f"node-{i}" for i in range(1, nodes + 1)]}
        write_lab(self.root, cfg)
        cfg["fabric_id"] = cp.start_etcd()
        write_lab(self.root, cfg)
        cp.admin_credential(self.root / ADMIN_CREDENTIAL)
        cp.start_controller(self.gallery_dir, location, extension_timeout_s)
        store = cp.store()
        try:
            self._enroll_nodes(store, cp, [n for n in cfg["nodes"] if not self.procs.alive(n)])
            self._start_nodes(cfg, hypervisor)
            wait(f"{nodes} node agents", lambda: all(store.get(keys.node(n), NodeRecord) for n in cfg["nodes"]),
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
                                    "--underlay-ip", ul_ip, "--power-off-on-exit", "--disk-access", "path",
                                    "--log-file", str(self.procs.log_path(name))],
                             marker=f"--name {name}")

    def _enroll_nodes(self, store: Store, cp: ControlPlaneHost, nodes: list[str]) -> None:
        """Each node joins as on a real cluster (fabric.join, with a one-time token through the controller's
        join endpoint) unless its credential still fits and is the one enrolled."""
        ca = cp.cluster_ca()
        enrollment = Enrollment(store, ca)
        for node in nodes:
            path = self.root / "pki" / f"{node}.json"
            held = enrollment.enrolled(node)
            if held and fits(path, ca.cert_pem.decode(), cp.api) and Credential.load(path).serves and \
                    held.serial == serial_of(Credential.load(path).certificate.encode()):
                continue
            if held:
                enrollment.remove(node)
            token, _ = enrollment.create_token(LAB_TOKEN_TTL_S, f"fabric lab up: {node}")
            try:
                join(cp.join_address, token, node).save(path)
            except JoinError as exc:
                raise RuntimeError(f"{node} could not join the lab's controller: {exc}") from None
            say(f"{node} joined (certificate {serial_of(Credential.load(path).certificate.encode())})")

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


def _listener(port: int) -> str:
    """Who listens on a TCP port, as `ss` tells it."""
    r = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False)
    return " ".join(r.stdout.split()[3:]) or "?"


def check_image(gallery_dir: Path, urn: str) -> None:
    """Refuse an image the lab's gallery does not hold and the lab cannot build (it builds only the images of
    BUILDERS), naming what it can build and what the gallery holds."""
    try:
        publisher, offer, sku, version = parse_urn(urn)
    except ArmError as exc:
        raise RuntimeError(f"--image {urn}: {exc.message}") from None
    if (publisher, offer, sku) in BUILDERS:
        return
    versions = Gallery(gallery_dir).versions(publisher, offer, sku) if gallery_dir.is_dir() else []
    if versions and (version.lower() == "latest" or version in versions):
        return
    held = sorted(":".join(f.parent.relative_to(gallery_dir).parts) for f in gallery_dir.glob("*/*/*/*/image.json")) \
        if gallery_dir.is_dir() else []
    raise RuntimeError(f"--image {urn}: the lab's gallery ({gallery_dir}) does not hold it and the lab builds only "
                       f"{', '.join(':'.join(k) for k in BUILDERS)} (:latest or a version a.b.c); the gallery holds "
                       f"{', '.join(held) or 'nothing yet'}")


def ensure_image(gallery_dir: Path, urn: str) -> str:
    """The image in the gallery (the default one built when missing, or rebuilt as a new version when its
    sources changed); returns its exact URN."""
    publisher, offer, sku, version = parse_urn(urn)
    gallery = Gallery(gallery_dir)
    if version.lower() == "latest":
        versions = gallery.versions(publisher, offer, sku)
        # a new version when the image's sources changed since the latest was built (VMs keep theirs)
        stale = bool(versions) and (publisher, offer, sku) in BUILDERS and \
            gallery.built_from(publisher, offer, sku, versions[-1]) != default_source_hash((publisher, offer, sku))
        if not versions or stale:
            say(f"building the image {publisher}:{offer}:{sku} "
                f"({'its sources changed since ' + versions[-1] if stale else 'first run'})")
            _build(gallery, (publisher, offer, sku), dt.datetime.now(dt.timezone.utc).strftime("1.0.%Y%m%d%H%M"))
    elif version not in gallery.versions(publisher, offer, sku):
        _build(gallery, (publisher, offer, sku), version)
    rec = gallery.resolve(urn)
    return f"{rec.publisher}:{rec.offer}:{rec.sku}:{rec.exact_version}"


def _build(gallery: Gallery, image: tuple[str, str, str], version: str) -> None:
    try:
        gallery.build(image, version)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"image build failed:\n{exc.stdout}") from None
