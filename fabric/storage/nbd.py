"""Disks over the network: the storage host exports disk blobs to nodes with NBD over TLS.

Each node gets a server of its own: one `qemu-storage-daemon` per node, listening on the storage host's
address, with the controller's certificate, a client certificate required (verify-peer) and accepted only
for that node's qemu (an authz-simple object on CN=nbd:NAME,O=nbd-clients: a certificate that opens no
API, fabric.pki.nbd_identity), checked against the cluster CA's revocation list of removed nodes: a node
cannot open another node's exports even if it learns their names, and a removed node none. A disk is exported (`grant`) only when the node API has checked
that the VM is assigned to the asking node; what no assignment names any more is withdrawn (`keep_only`).
qemu's image locking refuses to open one body for writing twice, so a disk is never exported to two
writers, whichever daemon asks.

The daemons outlive the controller (a controller restart must not cut a running VM's disk): each is
detached, remembered by its folder (ROOT/NODE: pid, port, its QMP socket, its TLS files), and found again.

    ROOT/NODE/pid, port, qmp.sock, tls/{ca-cert,server-cert,server-key}.pem
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fabric.files import PRIVATE, PRIVATE_DIR, SHARED, ensure_dir, write_atomic
from fabric.hostinfo import free_port, running_pid
from fabric.model import Assignment, EnrollmentRecord
from fabric.pki import NBD_CLIENTS, Credential, nbd_identity
from fabric.store import Store, keys
from fabric.store.informer import informed

log = logging.getLogger(__name__)

QMP_TIMEOUT_S = 10.0
START_TIMEOUT_S = 10.0


class NbdError(Exception):
    """The storage host could not export a disk; the message says why."""


@dataclasses.dataclass(frozen=True)
class Export:
    node: str
    name: str          # the NBD export name
    host: str
    port: int


def export_name(body: Path) -> str:
    """The export of a disk body: named by its body (one export per disk, whoever asks)."""
    return "d" + hashlib.sha256(str(body).encode()).hexdigest()[:24]


class Qmp:
    """A QMP session on a unix socket: commands in, their returns out (events skipped)."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(QMP_TIMEOUT_S)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self._line()                                   # the greeting
        self.execute("qmp_capabilities")

    def _line(self) -> dict[str, Any]:
        raw = self.reader.readline()
        if not raw:
            raise NbdError("the storage daemon closed its QMP socket")
        msg: dict[str, Any] = json.loads(raw)
        return msg

    def execute(self, command: str, **arguments: Any) -> Any:
        self.sock.sendall(json.dumps({"execute": command, "arguments": arguments}).encode() + b"\n")
        while True:
            msg = self._line()
            if "return" in msg:
                return msg["return"]
            if "error" in msg:
                raise NbdError(f"{command}: {msg['error'].get('desc', msg['error'])}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class NbdExports:
    def __init__(self, root: Path, address: str, credential: Credential,
                 revocation_list: Callable[[], str] | None = None) -> None:
        self.root = root
        self.address = address            # where nodes reach the storage host
        self.credential = credential      # the controller's: the servers' certificate, the CA clients must be of
        self.revocation_list = revocation_list    # PEM of the certificates of removed nodes, read at each start
        self._lock = threading.RLock()      # grants, and a withdrawal from reading what is wanted to the end

    def _folder(self, node: str) -> Path:
        return self.root / node

    def _running(self, node: str) -> int:
        """The port of the node's daemon when it runs (0: not running)."""
        folder = self._folder(node)
        if not running_pid(folder / "pid", "qemu-storage-daemon"):
            return 0
        try:
            return int((folder / "port").read_text())
        except (OSError, ValueError):
            return 0

    def _start(self, node: str) -> int:
        folder = ensure_dir(self._folder(node), PRIVATE_DIR)
        tls = ensure_dir(folder / "tls", PRIVATE_DIR)
        write_atomic(tls / "ca-cert.pem", self.credential.ca, SHARED)
        write_atomic(tls / "server-cert.pem", self.credential.certificate, SHARED)
        write_atomic(tls / "server-key.pem", self.credential.key, PRIVATE)
        if self.revocation_list is not None:
            write_atomic(tls / "ca-crl.pem", self.revocation_list(), SHARED)
        port = free_port()
        (folder / "qmp.sock").unlink(missing_ok=True)
        argv = ["qemu-storage-daemon",
                "--object", f"tls-creds-x509,id=tls0,dir={tls},endpoint=server,verify-peer=on",
                "--object", f"authz-simple,id=authz0,identity=CN={nbd_identity(node).name},,O={NBD_CLIENTS}",
                "--nbd-server", f"addr.type=inet,addr.host={self.address},addr.port={port},tls-creds=tls0,"
                                f"tls-authz=authz0",
                "--chardev", f"socket,id=qmp,path={folder / 'qmp.sock'},server=on,wait=off",
                "--monitor", "chardev=qmp", "--pidfile", str(folder / "pid"), "--daemonize"]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False,
                           start_new_session=True)
        if r.returncode != 0:
            raise NbdError(f"the NBD server for node {node} did not start: {r.stderr.strip()}")
        write_atomic(folder / "port", str(port), SHARED)
        log.info("NBD server for node %s on %s:%d (TLS, only nbd:%s's certificate)", node, self.address, port, node)
        return port

    def _qmp(self, node: str) -> tuple[int, Qmp]:
        port = self._running(node) or self._start(node)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                return port, Qmp(self._folder(node) / "qmp.sock")
            except OSError:
                if time.monotonic() > deadline:
                    raise NbdError(f"the NBD server for node {node} does not answer on its QMP socket") from None
                time.sleep(0.05)

    def grant(self, node: str, body: Path) -> Export:
        """Export a disk body to `node` (idempotent); where the node finds it."""
        name = export_name(body)
        with self._lock:
            port, qmp = self._qmp(node)
            try:
                if name not in {e["id"] for e in qmp.execute("query-block-exports")}:
                    try:
                        qmp.execute("blockdev-add", **{"node-name": name, "driver": "qcow2",
                                                      "file": {"driver": "file", "filename": str(body)}})
                    except NbdError as exc:
                        raise NbdError(f"disk {body.name} cannot be opened for node {node}: {exc}") from None
                    qmp.execute("block-export-add", type="nbd", id=name, **{"node-name": name}, name=name,
                                writable=True)
                    log.info("exported %s to node %s as %s", body.name, node, name)
            finally:
                qmp.close()
        return Export(node, name, self.address, port)

    def exported(self, node: str) -> set[str]:
        if not self._running(node):
            return set()
        with self._lock:
            _, qmp = self._qmp(node)
            try:
                return {e["id"] for e in qmp.execute("query-block-exports")}
            finally:
                qmp.close()

    def revoke(self, node: str, name: str) -> None:
        """Withdraw one export (its node's open connection is closed with it)."""
        with self._lock:
            if not self._running(node):
                return
            _, qmp = self._qmp(node)
            try:
                qmp.execute("block-export-del", id=name, mode="hard")
                deadline = time.monotonic() + QMP_TIMEOUT_S
                while name in {e["id"] for e in qmp.execute("query-block-exports")}:
                    if time.monotonic() > deadline:
                        raise NbdError(f"export {name} of node {node} is still being removed")
                    time.sleep(0.05)
                qmp.execute("blockdev-del", **{"node-name": name})
                log.info("withdrew export %s from node %s", name, node)
            finally:
                qmp.close()

    def keep_only(self, wanted: Callable[[], dict[str, set[str]]],
                  confirm: Callable[[], dict[str, set[str]]] | None = None) -> list[tuple[str, str]]:
        """Withdraw every export not in wanted()[node]; stop the servers of nodes with none. When that would
        change anything and `confirm` is given, confirm() decides instead (wanted() may be a view, confirm() the
        store). Both are read under the lock grants take, so a grant made for an assignment they did not see yet
        is never withdrawn. What was withdrawn."""
        gone = []
        with self._lock:
            nodes = [f.name for f in sorted(self.root.iterdir())] if self.root.is_dir() else []
            exported = {node: self.exported(node) for node in nodes}

            def changes(want: dict[str, set[str]]) -> bool:
                return any(exported[n] - want.get(n, set()) or (not want.get(n) and self._running(n)) for n in nodes)
            want = wanted()
            if confirm is not None and changes(want):
                want = confirm()
            for node in nodes:
                for name in exported[node] - want.get(node, set()):
                    self.revoke(node, name)
                    gone.append((node, name))
                if not want.get(node) and self._running(node):
                    self.stop(node)
        return gone

    def stop(self, node: str) -> None:
        """Stop a node's server (by its pid file, when it is still a qemu-storage-daemon): every export of the
        node ends with it."""
        with self._lock:
            self._stop(node)

    def _stop(self, node: str) -> None:
        pid = running_pid(self._folder(node) / "pid", "qemu-storage-daemon")
        if pid:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + QMP_TIMEOUT_S
            while os.path.exists(f"/proc/{pid}") and self._running(node) and time.monotonic() < deadline:
                time.sleep(0.05)


def withdraw_unassigned(store: Store, exports: NbdExports) -> list[tuple[str, str]]:
    """Withdraw every export that no assignment of an enrolled node names any more (the VM deleted, deallocated
    or moved; the node removed): each controller does it for its own exports. Decided on the watch-fed views
    (nothing read from etcd while every export is wanted), confirmed on the store before anything is
    withdrawn. What was withdrawn."""
    def wanted_of(assignments: Iterable[Assignment], enrolled: set[str]) -> dict[str, set[str]]:
        want: dict[str, set[str]] = {}
        for a in assignments:
            if a.on_node and a.node in enrolled:
                want.setdefault(a.node, set()).update(
                    export_name(Path(r.path)) for r in (a.os_disk, *(d.ref for d in a.data_disks)) if r.path)
        return want
    return exports.keep_only(
        lambda: wanted_of((v.value for v in informed(store, keys.ASSIGNMENTS, Assignment).list()),
                          {v.value.node for v in informed(store, keys.ENROLLMENTS, EnrollmentRecord).list()}),
        lambda: wanted_of((v.value for v in store.list(keys.ASSIGNMENTS, Assignment)),
                          {k.rsplit("/", 1)[1] for k in store.key_list(keys.ENROLLMENTS)}))
