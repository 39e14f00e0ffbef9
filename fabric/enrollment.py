"""Which nodes belong to the cluster: join tokens, enrollment, removal.

A node is enrolled when the controller has signed its certificate (fabric.join is the node's side). The
enrollment names that certificate's serial: the node API accepts a node's calls only with that one
certificate, so `fabric node remove NAME` (which deletes the enrollment) revokes it at once, and a second
join under an enrolled name is refused rather than giving one name two certificates.

A join token is kept as the sha256 of its secret, with its expiry; using it marks it used in the same etcd
transaction that writes the enrollment, so a token enrolls one node even when two joins race, and a refused
join (a bad token, a taken name, a bad request) writes nothing.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from fabric.core.errors import ArmError, invalid
from fabric.join import NODE_NAME, NODE_NAME_RULE, JoinToken
from fabric.model import EnrollmentRecord, JoinTokenRecord, NodeRecord, RevokedRecord, now
from fabric.pki import Authority, PkiError, load_cert, nbd_identity, node_identity, serial_of
from fabric.store import Absent, Delete, Put, Store, Unchanged, keys
from fabric.store.informer import informed

DEFAULT_TOKEN_TTL_S = 3600
MAX_TOKEN_TTL_S = 7 * 24 * 3600


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def refused(message: str) -> ArmError:
    """A join the token does not allow (HTTP 401 on the join endpoint)."""
    return ArmError("InvalidJoinToken", message, "token", http_status=401)


def check_node_name(name: str, target: str = "node") -> None:
    if not NODE_NAME.match(name):
        raise invalid(target, NODE_NAME_RULE)


class Enrollment:
    def __init__(self, store: Store, ca: Authority | None) -> None:
        self.store = store
        self.ca = ca          # None: this controller holds no CA key, and enrolls nobody

    def create_token(self, ttl_s: int = DEFAULT_TOKEN_TTL_S, description: str = "") -> tuple[JoinToken, JoinTokenRecord]:
        if self.ca is None:
            raise ArmError("OperationNotAllowed", "This controller holds no cluster CA key (--ca-dir): it cannot "
                                                  "enroll nodes, so it makes no join tokens.")
        if not 60 <= ttl_s <= MAX_TOKEN_TTL_S:
            raise invalid("ttl", f"from 60 seconds to {MAX_TOKEN_TTL_S // 86400} days")
        if len(description) > 200:
            raise invalid("description", "at most 200 characters")
        token = JoinToken.new(self.ca.fingerprint)
        made = dt.datetime.now(dt.timezone.utc)
        rec = JoinTokenRecord(id=token.id, secret_sha256=_hash(token.secret), created=_iso(made),
                              expires=_iso(made + dt.timedelta(seconds=ttl_s)), description=description)
        if not self.store.commit([Absent(keys.join_token(token.id))], [Put(keys.join_token(token.id), rec)]):
            raise ArmError("Conflict", "A join token with this id exists; create another.")
        return token, rec

    def tokens(self) -> list[JoinTokenRecord]:
        return [v.value for v in self.store.list(keys.JOIN_TOKENS, JoinTokenRecord)]

    def enroll(self, token_text: str, node: str, csr_pem: str) -> str:
        """The node's certificate (PEM), or ArmError naming why not; nothing is written when refused."""
        if self.ca is None:
            raise ArmError("OperationNotAllowed", "This controller holds no cluster CA key: it enrolls nobody.")
        check_node_name(node)
        token_id, sep, secret = token_text.partition(".")
        if not sep or not token_id or not secret:
            raise refused("The token is not ID.SECRET.")
        stored = self.store.get(keys.join_token(token_id), JoinTokenRecord) if len(token_id) < 64 else None
        if stored is None:
            raise refused(f"Token {token_id[:16]!r} is not a join token of this cluster (never made, or deleted).")
        tok = stored.value
        if not hmac.compare_digest(tok.secret_sha256, _hash(secret)):
            raise refused(f"Token {tok.id}: the secret does not match; it was mistyped or forged.")
        if tok.used_by:
            raise refused(f"Token {tok.id} was already used, by node {tok.used_by} at {tok.used}: a token enrolls "
                          f"one node; create another with `fabric node join-token create`.")
        if _time(tok.expires) <= dt.datetime.now(dt.timezone.utc):
            raise refused(f"Token {tok.id} expired at {tok.expires}; create another with "
                          f"`fabric node join-token create`.")
        held = self.store.get(keys.enrollment(node), EnrollmentRecord)
        if held is not None:
            raise self._taken(held.value)
        try:
            cert = self.ca.sign_request(csr_pem.encode(), node_identity(node))
        except PkiError as exc:
            raise invalid("csr", str(exc)) from None
        enrolled = self._record(node, cert, tok.id)
        if not self.store.commit([Unchanged(stored.key, stored.mod_revision), Absent(keys.enrollment(node))],
                                 [Put(stored.key, tok.replace(used_by=node, used=now())),
                                  Put(keys.enrollment(node), enrolled)]):
            raise ArmError("Conflict", f"Token {tok.id} or node name {node} was taken by another join at the same "
                                       f"moment; nothing was enrolled.", "token")
        return cert.decode()

    @staticmethod
    def _record(node: str, cert_pem: bytes, token_id: str) -> EnrollmentRecord:
        return EnrollmentRecord(node=node, serial=serial_of(cert_pem), enrolled=now(), token_id=token_id,
                                not_after=_iso(load_cert(cert_pem).not_valid_after_utc))

    @staticmethod
    def _taken(held: EnrollmentRecord) -> ArmError:
        return ArmError("NodeAlreadyEnrolled", f"Node {held.node} is already enrolled (certificate {held.serial}, "
                                               f"since {held.enrolled}); remove it first with `fabric node remove "
                                               f"{held.node}`, or join under another name.", "node",
                        http_status=409)

    def holds(self, node: str, serial: str, fresh: bool = False) -> bool:
        """Whether `serial` is the certificate the node is enrolled with: asked on every node API call, so read
        from the watch-fed view, and from the store when the view says no (a node that joined again a moment
        ago through another controller is not refused for the view's delay). A node removed through another
        controller is refused once the watch brings the removal (milliseconds)."""
        view = informed(self.store, keys.ENROLLMENTS, EnrollmentRecord)
        found = None if fresh else view.get(keys.enrollment(node))    # fresh: the caller saw the record change
        if found is None or found.value.serial != serial:
            found = view.refresh(keys.enrollment(node))
        return found is not None and found.value.serial == serial

    def enrolled(self, node: str) -> EnrollmentRecord | None:
        found = self.store.get(keys.enrollment(node), EnrollmentRecord)
        return found.value if found else None

    def issue_nbd(self, node: str, csr_pem: str) -> str:
        """A certificate for an enrolled node's qemu (nbd:NODE, for its disks over NBD and nothing else), its
        serial recorded in the enrollment so that removing the node revokes it too."""
        if self.ca is None:
            raise ArmError("OperationNotAllowed", "This controller holds no cluster CA key: it issues nothing.")
        for _ in range(3):
            held = self.store.get(keys.enrollment(node), EnrollmentRecord)
            if held is None:
                raise ArmError("ResourceNotFound", f"Node {node} is not enrolled in this cluster.", "node")
            try:
                cert = self.ca.sign_request(csr_pem.encode(), nbd_identity(node))
            except PkiError as exc:
                raise invalid("csr", str(exc)) from None
            rec = held.value.replace(nbd_serials=[*held.value.nbd_serials, serial_of(cert)])
            if self.store.commit([Unchanged(held.key, held.mod_revision)], [Put(held.key, rec)]):
                return cert.decode()
        raise ArmError("Conflict", f"Node {node}'s enrollment kept changing; ask again.", "node")

    def revocation_list(self) -> str:
        """The cluster CA's list of the certificates of removed nodes (PEM)."""
        if self.ca is None:
            raise ArmError("OperationNotAllowed", "This controller holds no cluster CA key: it signs no list.")
        return self.ca.revocation_list([v.value.serial for v in self.store.list(keys.REVOKED, RevokedRecord)])

    def remove(self, node: str) -> EnrollmentRecord:
        """Revoke the node's certificates (its own and its qemu's: recorded as revoked, for the NBD servers'
        revocation list) and drop its registration (its lease too): from now on its calls are refused. Its VMs
        are left to the reconcilers, as for a node that died."""
        check_node_name(node, "name")
        held = self.store.get(keys.enrollment(node), EnrollmentRecord)
        if held is None:
            raise ArmError("ResourceNotFound", f"Node {node} is not enrolled in this cluster.", "name")
        registered = self.store.get(keys.node(node), NodeRecord)
        lease = self.store.lease_of(keys.node(node)) if registered else None
        at = now()
        revoked = [Put(keys.revoked(serial), RevokedRecord(serial=serial, node=node, revoked=at))
                   for serial in (held.value.serial, *held.value.nbd_serials)]
        if not self.store.commit([Unchanged(held.key, held.mod_revision)],
                                 [Delete(held.key), *([Delete(registered.key)] if registered else []), *revoked]):
            raise ArmError("Conflict", f"Node {node}'s enrollment changed meanwhile; nothing was removed.", "name")
        if lease:
            self.store.revoke_lease(lease)
        return held.value
