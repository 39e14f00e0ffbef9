"""The cluster's certificate authority, and the credentials every program and user holds.

Every connection between fabriclab's programs, and from a user to the controller, is TLS verified by the
cluster CA in both directions. Who is calling is in the client's certificate: the subject's common name says
who (`admin`,
`node:node-1`, `controller:host-a`), its organisation the role (`admins`, `nodes`, `controllers`).

etcd has a CA of its own (kept beside the cluster CA): only the control plane holds certificates from it, so a
node's certificate, valid for the node API, opens nothing in etcd.

A credential file (`Credential`) holds what a client needs in one JSON document: the server's address,
the CA certificate it must present a certificate from, and the client's own certificate and key. It is
written 0600: the key in it is the identity.

Keys are ECDSA P-256; the CA's key never leaves the control plane host (0600, root).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fabric.files import PRIVATE, SHARED, write_atomic

ADMINS = "admins"
NODES = "nodes"
CONTROLLERS = "controllers"
ETCD_MEMBERS = "etcd-members"       # certificates of the etcd CA only: a member's, for its client and peer ports
NBD_CLIENTS = "nbd-clients"         # a node's qemu, for its disks over NBD and nothing else (nbd:NODE)
ROLES = (ADMINS, NODES, CONTROLLERS, ETCD_MEMBERS, NBD_CLIENTS)
CA_DAYS = 3650
CERT_DAYS = 365
CLOCK_SKEW = dt.timedelta(minutes=5)      # a certificate is valid from a little before it was made


class PkiError(Exception):
    """A certificate, key or credential that cannot be used; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Identity:
    name: str        # admin, node:node-1, controller:host-a
    role: str        # one of ROLES

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise PkiError(f"role {self.role!r} is not one of {', '.join(ROLES)}")

    @property
    def node(self) -> str:
        """The node name of a node's identity ("" for any other)."""
        return self.name.split(":", 1)[1] if self.role == NODES and self.name.startswith("node:") else ""


def node_identity(node: str) -> Identity:
    return Identity(f"node:{node}", NODES)


def nbd_identity(node: str) -> Identity:
    """What a node's qemu presents to the storage host: it opens that node's disk exports, nothing else."""
    return Identity(f"nbd:{node}", NBD_CLIENTS)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise PkiError(f"not a PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError("the private key is not an ECDSA key")
    return key


def load_cert(pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate: {exc}") from None


def fingerprint(cert_pem: bytes) -> str:
    """sha256:HEX of the certificate's DER form: what a join token carries to pin the CA."""
    der = load_cert(cert_pem).public_bytes(serialization.Encoding.DER)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def identity_of(cert: x509.Certificate) -> Identity:
    return identity_of_name(cert.subject)


def identity_of_name(name: x509.Name) -> Identity:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    org = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if len(cn) != 1 or len(org) != 1:
        raise PkiError("the certificate names no single common name and organisation")
    return Identity(str(cn[0].value), str(org[0].value))


def serial_of(cert_pem: bytes) -> str:
    """The certificate's serial number in hex: what an enrollment records and the node API checks."""
    return f"{load_cert(cert_pem).serial_number:x}"


def signing_request(key: ec.EllipticCurvePrivateKey, identity: Identity) -> bytes:
    """A PEM certificate signing request for this key and identity (what a joining node sends)."""
    return (x509.CertificateSigningRequestBuilder().subject_name(_name(identity)).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))


def _name(identity: Identity) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, identity.role)])


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


class Authority:
    """The cluster CA: signs the certificates of the controllers, the nodes and the admins."""

    def __init__(self, cert_pem: bytes, key: ec.EllipticCurvePrivateKey) -> None:
        self.cert_pem = cert_pem
        self.cert = load_cert(cert_pem)
        self.key = key

    @classmethod
    def create(cls, cluster: str) -> Authority:
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"fabriclab cluster CA {cluster}")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(cert.public_bytes(serialization.Encoding.PEM), key)

    @classmethod
    def load(cls, folder: Path) -> Authority:
        try:
            return cls((folder / "ca.pem").read_bytes(), load_key((folder / "ca.key").read_bytes()))
        except FileNotFoundError as exc:
            raise PkiError(f"no cluster CA in {folder}: {exc.filename} is missing") from None

    def save(self, folder: Path) -> None:
        """ca.pem for everyone, ca.key for root alone."""
        write_atomic(folder / "ca.key", key_pem(self.key).decode(), PRIVATE)
        write_atomic(folder / "ca.pem", self.cert_pem.decode(), SHARED)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    def issue(self, public_key: ec.EllipticCurvePublicKey, identity: Identity, hosts: tuple[str, ...] = (),
              days: int = CERT_DAYS, server: bool = False) -> bytes:
        """A certificate for this identity: a client certificate, and a server one too when it names hosts or
        `server` (a node's: its peers check its name in the certificate, not a host name)."""
        now = dt.datetime.now(dt.timezone.utc)
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if hosts or server else [])
        builder = (x509.CertificateBuilder().subject_name(_name(identity)).issuer_name(self.cert.subject)
                   .public_key(public_key).serial_number(x509.random_serial_number())
                   .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        if hosts:
            builder = builder.add_extension(_san(hosts), critical=False)
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    def sign_request(self, csr_pem: bytes, identity: Identity) -> bytes:
        """A client certificate for the key of a certificate signing request that asks for `identity`: only the
        request's key is taken from it (its signature proving the requester holds that key); the subject, the
        usages and the lifetime are the CA's."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise PkiError(f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise PkiError("the certificate signing request's signature does not match its key")
        key = csr.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise PkiError("the certificate signing request's key is not an ECDSA P-256 key")
        try:
            asked = identity_of_name(csr.subject)
        except PkiError:
            asked = None
        if asked != identity:
            raise PkiError(f"the certificate signing request asks for {asked.name if asked else 'no identity'}, "
                           f"not {identity.name} ({identity.role})")
        return self.issue(key, identity, server=identity.role == NODES)

    def revocation_list(self, serials: list[str]) -> str:
        """A PEM certificate revocation list of these serials (hex), signed by this CA (a day's validity: made
        again whenever it is used)."""
        now = dt.datetime.now(dt.timezone.utc)
        builder = (x509.CertificateRevocationListBuilder().issuer_name(self.cert.subject)
                   .last_update(now - CLOCK_SKEW).next_update(now + dt.timedelta(days=1)))
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial, 16)).revocation_date(now).build())
        return builder.sign(self.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()

    def credential(self, identity: Identity, controller: str, hosts: tuple[str, ...] = (),
                   server: bool = False) -> Credential:
        """A new key and its certificate, with the CA and where the controller is."""
        key = new_key()
        cert = self.issue(key.public_key(), identity, hosts, server=server)
        return Credential(controller=controller, ca=self.cert_pem.decode(), certificate=cert.decode(),
                          key=key_pem(key).decode())


@dataclasses.dataclass(frozen=True)
class Credential:
    controller: str          # host:port of the controller's API
    ca: str                  # PEM: the cluster CA the controller's certificate must come from
    certificate: str         # PEM: who this is
    key: str                 # PEM: the private key of that certificate

    @property
    def identity(self) -> Identity:
        return identity_of(load_cert(self.certificate.encode()))

    @property
    def serves(self) -> bool:
        """Whether its certificate may serve TLS (a node's serves its diagnostics to the controller)."""
        try:
            usage = load_cert(self.certificate.encode()).extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            return False
        return ExtendedKeyUsageOID.SERVER_AUTH in usage.value

    def valid_for(self, days: int) -> bool:
        """Whether its certificate is still valid `days` from now."""
        until = load_cert(self.certificate.encode()).not_valid_after_utc
        return until - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=days)

    def channel(self, address: str = "", options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
        """A gRPC channel to the controller (`address`, default the credential's): its certificate checked
        against this CA, this credential's presented."""
        return grpc.secure_channel(address or self.controller, grpc.ssl_channel_credentials(
            self.ca.encode(), self.key.encode(), self.certificate.encode()), options=list(options))

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(dataclasses.asdict(self), indent=1) + "\n", PRIVATE)

    def ssl_context(self, server: bool) -> ssl.SSLContext:
        """A TLS context presenting this certificate and trusting this CA: a client's (the server's certificate
        checked, its name too), or a server's (a client certificate asked for, checked when given, not
        required: the handler decides). ssl loads keys only from files: a private temporary folder, removed
        once read."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cadata=self.ca)
        if server:
            ctx.verify_mode = ssl.CERT_OPTIONAL
        with tempfile.TemporaryDirectory(prefix="fabric-tls-") as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_text(self.certificate)
            write_atomic(key, self.key, PRIVATE)
            ctx.load_cert_chain(cert, key)
        return ctx

    def save_pem(self, folder: Path, name: str) -> tuple[Path, Path, Path]:
        """The CA, the certificate and the key as PEM files (for programs that read files: etcd):
        ca.pem, NAME.pem, NAME.key (0600)."""
        paths = folder / "ca.pem", folder / f"{name}.pem", folder / f"{name}.key"
        write_atomic(paths[0], self.ca, SHARED)
        write_atomic(paths[1], self.certificate, SHARED)
        write_atomic(paths[2], self.key, PRIVATE)
        return paths

    @classmethod
    def load(cls, path: Path) -> Credential:
        try:
            data = json.loads(path.read_text())
            cred = cls(**{f.name: str(data[f.name]) for f in dataclasses.fields(cls)})
        except PermissionError:
            raise PkiError(f"{path} is not readable by this user (it holds a private key: 0600)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"{path} is not a fabriclab credential file ({type(exc).__name__}: {exc})") from None
        cert = load_cert(cred.certificate.encode())
        load_cert(cred.ca.encode())
        if load_key(cred.key.encode()).public_key() != cert.public_key():
            raise PkiError(f"{path}: its key is not the key of its certificate")
        return cred
