"""etcd members as fabriclab starts them: one for a one-machine lab, three for a cluster that must outlive one;
TLS on the client and the peer ports, with certificates of etcd's own CA (fabric.pki), so that only the
control plane, which alone holds such certificates, reads or writes the fabric's state.

    EtcdCa(folder)              etcd's CA: ca.pem, ca.key; member certificates; client credentials
    Member(...).argv(...)       the command line of one member
    Etcd(root, members, tls)    real members on free loopback ports, for tests and benchmarks
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from fabric.files import PRIVATE_DIR, ensure_dir
from fabric.hostinfo import free_port
from fabric.pki import CONTROLLERS, ETCD_MEMBERS, Authority, Credential, Identity, PkiError, load_cert
from fabric.store import Store, StoreUnavailable, keys
from fabric.store.client import ETCD_CALL_TIMEOUT_S

ETCD_START_TIMEOUT_S = 30.0
RENEW_DAYS = 30


@dataclasses.dataclass(frozen=True)
class Member:
    name: str
    host: str
    client_port: int
    peer_port: int
    tls: bool = True

    @property
    def client_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.peer_port}"

    def argv(self, cluster: list[Member], data_dir: Path, tls_dir: Path | None, state: str = "new") -> list[str]:
        """This member's etcd command: `cluster` is every member (itself included); `tls_dir` holds ca.pem,
        NAME.pem and NAME.key (EtcdCa.member_files) and turns on client and peer certificate checks."""
        etcd = shutil.which("etcd")
        if etcd is None:
            raise RuntimeError("etcd is not installed: run deploy/install.sh (Debian package etcd-server)")
        argv = [etcd, "--name", self.name, "--data-dir", str(data_dir),
                "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", ",".join(f"{m.name}={m.peer_url}" for m in cluster),
                "--initial-cluster-state", state]
        if self.tls:
            if tls_dir is None:
                raise ValueError(f"etcd member {self.name}: TLS needs its certificate folder")
            ca, cert, key = (str(tls_dir / f) for f in ("ca.pem", f"{self.name}.pem", f"{self.name}.key"))
            argv += ["--cert-file", cert, "--key-file", key, "--client-cert-auth", "--trusted-ca-file", ca,
                     "--peer-cert-file", cert, "--peer-key-file", key, "--peer-client-cert-auth",
                     "--peer-trusted-ca-file", ca]
        return argv


def client_urls(cluster: list[Member]) -> str:
    return ",".join(m.client_url for m in cluster)


class EtcdCa:
    """etcd's CA in a folder of its own (root only): it signs the members' certificates and the control
    plane's client certificates, and nothing else."""

    def __init__(self, folder: Path) -> None:
        self.folder = ensure_dir(folder, PRIVATE_DIR)
        try:
            self.ca = Authority.load(folder)
        except PkiError:
            self.ca = Authority.create(f"etcd {folder.parent.name}")
            self.ca.save(folder)

    def member_files(self, member: Member) -> Path:
        """ca.pem, NAME.pem, NAME.key for a member, made when missing, of another CA or expiring within
        RENEW_DAYS; returns the folder."""
        try:
            cert = load_cert((self.folder / f"{member.name}.pem").read_bytes())
            cert.verify_directly_issued_by(self.ca.cert)
            current = (self.folder / f"{member.name}.key").exists() and \
                cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=RENEW_DAYS)
        except (OSError, PkiError, InvalidSignature, ValueError, TypeError):
            current = False
        if not current:
            self.ca.credential(Identity(f"etcd:{member.name}", ETCD_MEMBERS), "",
                               (member.host, "localhost")).save_pem(self.folder, member.name)
        return self.folder

    def client(self, name: str, endpoints: str) -> Credential:
        return self.ca.credential(Identity(f"controller:{name}", CONTROLLERS), endpoints)


class Etcd:
    """Real etcd members in a temporary folder, on free loopback ports: one (plain, the fastest, for the tests
    that need a store) or several, with TLS."""

    def __init__(self, root: Path, members: int = 1, tls: bool = False) -> None:
        self.root = root
        self.members = [Member(f"m{i}", "127.0.0.1", free_port(), free_port(), tls) for i in range(members)]
        self.url = client_urls(self.members)
        self.ca = EtcdCa(root / "etcd-ca") if tls else None
        self.credential = self.ca.client("tests", self.url) if self.ca else None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for m in self.members:
            tls_dir = self.ca.member_files(m) if self.ca else None
            self.procs[m.name] = subprocess.Popen(
                m.argv(self.members, self.root / f"data-{m.name}", tls_dir),
                stdout=open(self.root / f"etcd-{m.name}.log", "ab"), stderr=subprocess.STDOUT)
        store = self.store()
        try:
            wait_answering(store, ETCD_START_TIMEOUT_S)
        finally:
            store.close()

    def store(self, timeout_s: float | None = None) -> Store:
        return Store(self.url, timeout_s or ETCD_CALL_TIMEOUT_S, tls=self.credential)

    def kill(self, name: str) -> None:
        """SIGKILL one member, as a host dying would."""
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def wait_answering(store: Store, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            store.get_raw(keys.SUBSCRIPTION)
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise RuntimeError(f"etcd at {store.endpoints} did not answer within {timeout_s:g} s") from None
            time.sleep(0.1)
