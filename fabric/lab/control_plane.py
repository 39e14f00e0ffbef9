"""A cluster's control plane on this host: its trust (the cluster CA, etcd's CA), an etcd member and a
controller. `fabric lab up` runs one on 127.0.0.1 with node agents beside it; `fabric cluster init` runs one
on a host's address for node agents on other hosts. The same files, the same programs, the same flags.

    ROOT/pki/ca.pem, ca.key             the cluster CA (key root only): the controller signs joining nodes
    ROOT/pki/controller.json            the controller's API certificate (its address and localhost)
    ROOT/pki/etcd/                      etcd's CA, the member's certificate and key
    ROOT/pki/etcd-client.json           the controller's etcd client credential
    ROOT/etcd/                          the member's data
    ROOT/controller/                    the controller's state (blob bodies)

Ports: etcd client P and peer P+1 (on the host's address: other control-plane hosts' members and controllers
call it, with certificates of etcd's CA); the controller's API
C, blob data plane C+1 (HTTP), join endpoint C+2 and the blob data plane over TLS C+3, on the host's address.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from fabric.files import PRIVATE_DIR, ensure_dir
from fabric.lab.etcd import ETCD_START_TIMEOUT_S, EtcdCa, Member, client_urls, wait_answering
from fabric.lab.processes import Processes
from fabric.pki import ADMINS, CONTROLLERS, Authority, Credential, Identity, PkiError
from fabric.store import Store

CONTROLLER_READY_TIMEOUT_S = 30.0
RENEW_DAYS = 30                 # a credential that expires sooner is issued again at the next start
ETCD_CREDENTIAL = "pki/etcd-client.json"


def say(msg: str) -> None:
    sys.stderr.write(f"fabric: {msg}\n")


def wait(what: str, ready: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    raise RuntimeError(f"{what} not ready after {timeout_s:g} s{tail}")


def fits(path: Path, ca_pem: str, server: str) -> bool:
    """A credential of this CA, for this server, valid for RENEW_DAYS more."""
    try:
        cred = Credential.load(path)
    except PkiError:
        return False
    return cred.ca == ca_pem and cred.controller == server and cred.valid_for(RENEW_DAYS)


def listening(port: int) -> bool:
    """Whether a socket listens on this TCP port in this network namespace (the kernel's tables, not a
    connection attempt: connecting to a free port in the ephemeral range can connect to itself, and a port is
    free once its listener died)."""
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


Launch = Callable[[str, list[str], str], object]      # (name, argv, marker): start it unless it runs


class ControlPlaneHost:
    def __init__(self, root: Path, procs: Processes, address: str, etcd_port: int, controller_port: int,
                 name: str = "controller", launch: Launch | None = None) -> None:
        self.root = root
        self.procs = procs
        self.launch: Launch = launch or procs.start
        self.address = address
        self.name = name              # the controller's and the etcd member's
        self.member = Member(name, address, etcd_port, etcd_port + 1)
        self.members = [self.member]  # the etcd cluster this member belongs to (`join` names them all)
        self.controller_port = controller_port
        self.pki = root / "pki"

    @property
    def api(self) -> str:
        return f"{self.address}:{self.controller_port}"

    @property
    def blob_listen(self) -> str:
        return f"{self.address}:{self.controller_port + 1}"

    @property
    def join_address(self) -> str:
        return f"{self.address}:{self.controller_port + 2}"

    @property
    def etcd_url(self) -> str:
        """Every member's client URL, this host's first."""
        return client_urls([self.member, *(m for m in self.members if m != self.member)])

    @property
    def etcd_credential(self) -> Path:
        return self.root / ETCD_CREDENTIAL

    def ports(self) -> list[tuple[str, int]]:
        return [("etcd", self.member.client_port), ("etcd", self.member.peer_port),
                *(("controller", self.controller_port + i) for i in range(4))]

    def cluster_ca(self) -> Authority:
        """The cluster CA (made at the first start)."""
        ensure_dir(self.pki, PRIVATE_DIR)
        try:
            return Authority.load(self.pki)
        except PkiError:
            ca = Authority.create(self.root.name)
            ca.save(self.pki)
            say(f"cluster CA made ({ca.fingerprint})")
            return ca

    def admin_credential(self, path: Path) -> None:
        """An admin's credential at `path` (kept while it fits)."""
        ca = self.cluster_ca()
        if not fits(path, ca.cert_pem.decode(), self.api):
            ca.credential(Identity("admin", ADMINS), self.api).save(path)

    def start_etcd(self, state: str = "new") -> str:
        """The etcd member (unless running), TLS on its client and peer ports with certificates of etcd's CA
        (`state`: "existing" for a member added to a running cluster); returns the fabric id kept in it."""
        etcd_ca = EtcdCa(ensure_dir(self.pki, PRIVATE_DIR) / "etcd")
        argv = self.member.argv(self.members, self.root / "etcd", etcd_ca.member_files(self.member), state)
        self.launch("etcd", argv, str(self.root / "etcd"))
        if not fits(self.etcd_credential, etcd_ca.ca.cert_pem.decode(), self.etcd_url):
            etcd_ca.client(self.name, self.etcd_url).save(self.etcd_credential)
        store = self.store()
        try:
            wait_answering(store, ETCD_START_TIMEOUT_S)
            return store.fabric_id()
        finally:
            store.close()

    def start_controller(self, gallery: Path, location: str, extension_timeout_s: int = 300) -> None:
        ca = self.cluster_ca()
        credential = self.pki / "controller.json"
        if not fits(credential, ca.cert_pem.decode(), self.api):
            ca.credential(Identity(f"controller:{self.name}", CONTROLLERS), self.api,
                          (self.address, "localhost")).save(credential)
        self.launch("controller", [
            sys.executable, "-m", "fabric.controller.main", "--name", self.name, "--etcd", self.etcd_url,
            "--etcd-credential", str(self.etcd_credential), "--credential", str(credential),
            "--ca-dir", str(self.pki), "--listen", self.api, "--join-listen", self.join_address,
            "--blob-listen", self.blob_listen, "--gallery", str(gallery), "--location", location,
            "--state-dir", str(self.root / "controller"), "--extension-timeout", str(extension_timeout_s),
            "--log-file", str(self.procs.log_path("controller"))], "fabric.controller.main")
        wait("controller", lambda: listening(self.controller_port) and listening(self.controller_port + 2),
             CONTROLLER_READY_TIMEOUT_S, self.procs.log_path("controller"))

    def store(self) -> Store:
        return Store(self.etcd_url, tls=Credential.load(self.etcd_credential))
