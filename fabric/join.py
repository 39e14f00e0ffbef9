"""Joining a cluster: a join token, and what a new node does with it to get its own credential.

A join token is `ID.SECRET.CAHASH`: a 6-character id, a 16-character secret (the controller keeps only its
sha256), and the sha256 of the cluster CA's certificate. It enrolls one node, once, before it expires
(`fabric node join-token create`). Joining (`fabric-node-agent join ADDRESS --token TOKEN`) goes to the
controller's join endpoint, HTTPS, in two requests:

1. GET /v1/cluster-info, the TLS not yet verified: it answers the cluster CA and the controller's API address.
   The CA's sha256 must be the token's: a controller of another cluster, or anyone in between, is refused
   before anything secret is sent.
2. POST /v1/join, the TLS now verified against that CA (and the controller's certificate must name the address
   joined): the token's id and secret, the node's name and a certificate signing request for a key made here,
   which never leaves this host. The answer is the node's certificate (CN=node:NAME, O=nodes) and the API
   address(es) the node calls (taken from this verified answer, not the first).

The result is the node's credential file (fabric.pki.Credential).
"""
from __future__ import annotations

import dataclasses
import http.client
import json
import re
import secrets
import ssl
import string
from typing import Any

from cryptography.exceptions import InvalidSignature

from fabric.pki import Credential, PkiError, fingerprint, key_pem, load_cert, new_key, node_identity, \
    signing_request, identity_of

TOKEN_ID_CHARS = 6
TOKEN_SECRET_CHARS = 16
_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})\.([0-9a-f]{64})$")
NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NODE_NAME_RULE = "lower-case letters, digits and '-', at most 63, starting with a letter or digit"
JOIN_TIMEOUT_S = 15.0
MAX_ANSWER_BYTES = 1 << 16


class JoinError(Exception):
    """Joining failed; the message names the cause. Nothing was enrolled (or the controller said why not)."""


@dataclasses.dataclass(frozen=True)
class JoinToken:
    id: str
    secret: str
    ca_hash: str           # hex sha256 of the cluster CA certificate's DER form

    def __str__(self) -> str:
        return f"{self.id}.{self.secret}.{self.ca_hash}"

    @property
    def credential(self) -> str:
        """What the controller checks: ID.SECRET (the CA hash is for the joining node)."""
        return f"{self.id}.{self.secret}"

    @classmethod
    def new(cls, ca_fingerprint: str) -> JoinToken:
        return cls("".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_ID_CHARS)),
                   "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_SECRET_CHARS)),
                   ca_fingerprint.removeprefix("sha256:"))

    @classmethod
    def parse(cls, text: str) -> JoinToken:
        m = _TOKEN.match(text.strip())
        if not m:
            raise JoinError("token: expected ID.SECRET.CAHASH (6 and 16 lower-case letters or digits, then 64 hex "
                            "digits), as `fabric node join-token create` prints it")
        return cls(*m.groups())


def _split(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise JoinError(f"address {address!r}: expected HOST:PORT of the controller's join endpoint")
    return host.strip("[]"), int(port)


def _request(host: str, port: int, context: ssl.SSLContext, method: str, path: str,
             body: dict[str, Any] | None = None) -> dict[str, Any]:
    conn = http.client.HTTPSConnection(host, port, context=context, timeout=JOIN_TIMEOUT_S)
    try:
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read(MAX_ANSWER_BYTES)
    except ssl.SSLCertVerificationError as exc:
        raise JoinError(f"the controller at {host}:{port} is not the one the cluster CA vouches for "
                        f"({exc.verify_message}): not joining") from None
    except (OSError, http.client.HTTPException) as exc:
        raise JoinError(f"the controller's join endpoint at {host}:{port} did not answer "
                        f"({type(exc).__name__}: {exc})") from None
    finally:
        conn.close()
    try:
        answer = json.loads(raw)
    except ValueError:
        raise JoinError(f"{host}:{port}{path} answered HTTP {resp.status} without JSON: not a fabriclab "
                        f"join endpoint") from None
    if resp.status != 200:
        err = answer.get("error", {}) if isinstance(answer, dict) else {}
        raise JoinError(f"the controller refused: {err.get('code', resp.status)}: {err.get('message', '')}")
    if not isinstance(answer, dict):
        raise JoinError(f"{host}:{port}{path} answered JSON that is not an object")
    return answer


def cluster_info(address: str, token: JoinToken) -> dict[str, str]:
    """Step 1: the cluster CA, checked against the token's hash."""
    host, port = _split(address)
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE       # not trusted yet: the CA is checked against the token below
    info = _request(host, port, insecure, "GET", "/v1/cluster-info")
    ca = str(info.get("ca", ""))
    try:
        presented = fingerprint(ca.encode())
    except PkiError as exc:
        raise JoinError(f"the controller at {address} answered no CA certificate ({exc})") from None
    if presented != f"sha256:{token.ca_hash}":
        raise JoinError(f"the controller at {address} presents cluster CA {presented}, but the token names "
                        f"sha256:{token.ca_hash}: another cluster, or someone in between; not joining")
    return {"ca": ca}


def join(address: str, token: JoinToken, node: str) -> Credential:
    """Enroll this host as `node` with the controller whose join endpoint is `address`; returns its credential
    (to be saved, 0600, by the caller)."""
    if not NODE_NAME.match(node):
        raise JoinError(f"node name {node!r}: {NODE_NAME_RULE}")
    info = cluster_info(address, token)
    host, port = _split(address)
    verified = ssl.create_default_context(cadata=info["ca"])
    key = new_key()
    answer = _request(host, port, verified, "POST", "/v1/join",
                      {"token": token.credential, "node": node,
                       "csr": signing_request(key, node_identity(node)).decode()})
    cert = str(answer.get("certificate", "")).encode()
    try:
        issued = load_cert(cert)
        issued.verify_directly_issued_by(load_cert(info["ca"].encode()))
        ok = issued.public_key() == key.public_key() and identity_of(issued) == node_identity(node)
    except (PkiError, InvalidSignature, ValueError, TypeError) as exc:
        raise JoinError(f"the controller answered a certificate that does not check ({exc})") from None
    if not ok:
        raise JoinError("the controller answered a certificate for another key or name")
    controller = str(answer.get("controller", ""))     # from the verified answer, not the unverified first one
    if not controller:
        raise JoinError("the controller answered no API address")
    return Credential(controller=controller, ca=info["ca"], certificate=cert.decode(), key=key_pem(key).decode())
