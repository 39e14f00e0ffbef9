"""Shared access signatures in the reference's shape: service SAS (sr=b or c) and account SAS (ss, srt), of
signed versions from 2015-04-05 (what this fabric signs) to today's (what the reference's client libraries
sign with an account key).

    service string-to-sign = sp \n st \n se \n canonicalizedresource \n si \n sip \n spr \n sv
                     [\n sr \n snapshot  (sv >= 2018-11-09)] [\n ses  (sv >= 2020-12-06)]
                     \n rscc \n rscd \n rsce \n rscl \n rsct
    canonicalizedresource = /blob/{account}/{container}[/{blob}]
    account string-to-sign = account \n sp \n ss \n srt \n st \n se \n sip \n spr \n sv \n [ses \n]
    sig = Base64(HMAC-SHA256(Base64Decode(account key), UTF-8(string-to-sign)))

`verify` checks every signed field: a change to any of them, or to the
signature, makes the signature wrong (AuthenticationFailed); an expired `se`
or a start in the future is AuthenticationFailed too; a missing permission or
a resource outside the signed one is AuthorizationPermissionMismatch. What this
fabric does not offer is refused by name: a user delegation SAS (skoid, signed
by an identity's key), a stored access policy (si), a snapshot or version
resource (sr=bs, bv).

Given the request's Source, it also enforces, as the reference does:
    sip  an IPv4 address `a.b.c.d` or an inclusive range `a.b.c.d-e.f.g.h`: any other client address is
         403 AuthorizationSourceIPMismatch (an IPv6 client never matches);
    spr  `https` or `https,http`: `https` over plain HTTP is 403 AuthorizationProtocolMismatch.
A sip or spr in another form, validly signed, is AuthenticationFailed; `sign` refuses to make one.
"""
from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
from collections.abc import Mapping, Sequence
from urllib.parse import urlencode

SAS_VERSION = "2015-04-05"
PERMISSION_ORDER = "racwdl"     # read, add, create, write, delete, list
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
PROTOCOLS = ("https", "https,http")   # the values spr may take


class SasError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclasses.dataclass(frozen=True)
class SasToken:
    permissions: str
    expiry: str
    resource: str          # "c" (container) or "b" (blob); "" in an account SAS
    start: str = ""
    version: str = SAS_VERSION
    protocol: str = ""
    ip: str = ""
    signature: str = ""
    identifier: str = ""   # si: a stored access policy (not offered)
    snapshot: str = ""
    encryption_scope: str = ""
    overrides: tuple[str, str, str, str, str] = ("", "", "", "", "")   # rscc, rscd, rsce, rscl, rsct
    services: str = ""     # ss: an account SAS
    resource_types: str = ""   # srt: of an account SAS, letters of s (service), c (container), o (object)
    delegation: bool = False   # skoid present: a user delegation SAS (not offered)

    def query(self) -> str:
        fields = [("sv", self.version), ("sr", self.resource), ("sp", self.permissions)]
        fields += [(k, v) for k, v in (("st", self.start), ("sip", self.ip), ("spr", self.protocol)) if v]
        fields += [("se", self.expiry), ("sig", self.signature)]
        return urlencode(fields)


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a request comes from, as the data plane knows it: the client's address and "http" or "https"."""
    ip: str
    protocol: str


def canonical_permissions(perms: str) -> str:
    """Permissions in the service's order; ValueError naming a letter that is not one."""
    bad = sorted(set(perms) - set(PERMISSION_ORDER))
    if bad or not perms:
        raise ValueError(f"permissions are letters of '{PERMISSION_ORDER}'" + (f"; not {''.join(bad)!r}" if bad else ""))
    return "".join(p for p in PERMISSION_ORDER if p in perms)


def _resource(account: str, container: str, blob: str) -> str:
    return f"/blob/{account}/{container}" + (f"/{blob}" if blob else "")


OVERRIDES = ("rscc", "rscd", "rsce", "rscl", "rsct")
# the answer's headers a SAS's overrides set, in OVERRIDES' order
OVERRIDDEN_HEADERS = ("Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Type")
_WITH_RESOURCE = "2018-11-09"          # from this signed version on, sr and the snapshot time are signed
_WITH_SCOPE = "2020-12-06"             # and from this one, the encryption scope


def string_to_sign(t: SasToken, account: str, container: str, blob: str) -> str:
    if t.services:
        fields = [account, t.permissions, t.services, t.resource_types, t.start, t.expiry, t.ip, t.protocol,
                  t.version] + ([t.encryption_scope] if t.version >= _WITH_SCOPE else [])
        return "\n".join(fields) + "\n"
    fields = [t.permissions, t.start, t.expiry, _resource(account, container, blob), t.identifier, t.ip,
              t.protocol, t.version]
    if t.version >= _WITH_RESOURCE:
        fields += [t.resource, t.snapshot]
    if t.version >= _WITH_SCOPE:
        fields.append(t.encryption_scope)
    return "\n".join([*fields, *t.overrides])


def hmac_sha256(key_b64: str, text: str) -> str:
    """Base64(HMAC-SHA256(Base64Decode(key), UTF-8(text))): the signature of a SAS and of Shared Key."""
    digest = hmac.new(base64.b64decode(key_b64), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def sign(key_b64: str, account: str, container: str, blob: str, permissions: str, expiry: dt.datetime,
         start: dt.datetime | None = None, ip: str = "", protocol: str = "") -> SasToken:
    """A SAS for one blob (blob given, sr=b) or for a whole container (blob empty, sr=c); ip and protocol, when
    given, restrict it (sip, spr). ValueError naming sip or spr when one is not in the service's form."""
    for value, parse_it in ((ip, _ip_range), (protocol, _protocol)):
        if value:
            try:
                parse_it(value)
            except SasError as e:
                raise ValueError(e.message) from None
    t = SasToken(permissions=canonical_permissions(permissions), expiry=expiry.strftime(TIME_FORMAT),
                 resource="b" if blob else "c", start=start.strftime(TIME_FORMAT) if start else "", ip=ip,
                 protocol=protocol)
    return dataclasses.replace(t, signature=hmac_sha256(key_b64, string_to_sign(t, account, container, blob)))


def parse(query: Mapping[str, Sequence[str]]) -> SasToken | None:
    """The SAS in a parsed query string, None when there is no `sig`."""
    def one(name: str) -> str:
        v = query.get(name) or [""]
        return v[0]
    if not one("sig"):
        return None
    overrides = tuple(one(k) for k in OVERRIDES)
    return SasToken(permissions=one("sp"), expiry=one("se"), resource=one("sr"), start=one("st"),
                    version=one("sv"), protocol=one("spr"), ip=one("sip"), signature=one("sig"),
                    identifier=one("si"), snapshot=one("snapshot"), encryption_scope=one("ses"),
                    overrides=(overrides[0], overrides[1], overrides[2], overrides[3], overrides[4]),
                    services=one("ss"), resource_types=one("srt"), delegation=bool(one("skoid")))


def _time(value: str, name: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise SasError("AuthenticationFailed", f"Signed field {name} is not a UTC time like 2026-01-31T12:00:00Z.")


def _ip_range(value: str) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    first, dash, last = value.partition("-")
    try:
        lo = ipaddress.IPv4Address(first)
        hi = ipaddress.IPv4Address(last) if dash else lo
    except ValueError:
        raise SasError("AuthenticationFailed", f"Signed IP (sip) {value!r} is not an IPv4 address a.b.c.d or a "
                                               f"range a.b.c.d-e.f.g.h.") from None
    if lo > hi:
        raise SasError("AuthenticationFailed", f"Signed IP (sip) range {value!r} ends before it starts.")
    return lo, hi


def _protocol(value: str) -> str:
    if value not in PROTOCOLS:
        raise SasError("AuthenticationFailed", f"Signed protocol (spr) {value!r} is not one of "
                                               f"{' or '.join(PROTOCOLS)}.")
    return value


def _client_ipv4(ip: str) -> ipaddress.IPv4Address | None:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address):
        return addr.ipv4_mapped
    return addr


def _check_source(t: SasToken, source: Source) -> None:
    if t.ip:
        lo, hi = _ip_range(t.ip)
        client = _client_ipv4(source.ip)
        if client is None or not lo <= client <= hi:
            raise SasError("AuthorizationSourceIPMismatch", f"This request is not authorized to perform this "
                                                            f"operation using this source IP {source.ip}.")
    if t.protocol and source.protocol not in _protocol(t.protocol).split(","):
        raise SasError("AuthorizationProtocolMismatch",
                       "This request is not authorized to perform this operation using this protocol.")


def verify(t: SasToken, keys: Sequence[str], account: str, container: str, blob: str, need: str,
           now: dt.datetime, source: Source | None = None) -> None:
    """Raise SasError unless the token grants `need` (one permission letter) on this blob or container to a
    request from `source`. Without a source (a check made outside any request, e.g. of a URL handed to a
    guest) sip and spr are not checked: the caller cannot know where the request will come from."""
    _check_offered(t, now)
    signed_blob = blob if t.resource == "b" else ""
    expected = string_to_sign(t, account, container, signed_blob)
    if not any(hmac.compare_digest(hmac_sha256(k, expected).encode(), t.signature.encode()) for k in keys):
        raise SasError("AuthenticationFailed",
                       "Server failed to authenticate the request. Make sure the value of the signature is "
                       "formed correctly including the signature.")
    if now >= _time(t.expiry, "se"):
        raise SasError("AuthenticationFailed", f"Signed expiry time [{t.expiry}] must be after signed start time "
                                               f"and the current time.")
    if t.start and now < _time(t.start, "st"):
        raise SasError("AuthenticationFailed", f"Signed start time [{t.start}] is in the future.")
    if source is not None:
        _check_source(t, source)
    if t.services:
        _check_account_scope(t, container, blob)
    if need not in t.permissions:
        raise SasError("AuthorizationPermissionMismatch",
                       f"This request is not authorized to perform this operation using this permission "
                       f"(needs '{need}', the SAS grants '{t.permissions}').")


def _check_offered(t: SasToken, now: dt.datetime) -> None:
    """AuthenticationFailed naming what this fabric does not verify: a signed version before 2015-04-05 or after
    today, a user delegation SAS, a stored access policy, a resource other than a blob or a container."""
    if not (len(t.version) == 10 and SAS_VERSION <= t.version <= now.strftime("%Y-%m-%d")):
        raise SasError("AuthenticationFailed", f"Signed version (sv) {t.version[:20]!r} is not supported: a version "
                                               f"from {SAS_VERSION} to today.")
    if t.delegation:
        raise SasError("AuthenticationFailed", "A user delegation SAS (skoid) is not offered by this fabric: sign "
                                               "the SAS with the account key.")
    if t.identifier:
        raise SasError("AuthenticationFailed", "Stored access policies (si) are not offered by this fabric: sign "
                                               "the SAS's fields themselves.")
    if t.services:
        if "b" not in t.services:
            raise SasError("AuthorizationServiceMismatch", "This request is not authorized to perform this "
                                                           "operation using this service (the account SAS's ss "
                                                           "has no b).")
        return
    if t.resource not in ("b", "c"):
        raise SasError("AuthenticationFailed", "Signed resource (sr) must be 'b' or 'c' (snapshots and versions "
                                               "are not offered).")


def _check_account_scope(t: SasToken, container: str, blob: str) -> None:
    """An account SAS reaches blobs with srt o, containers with c, the service with s."""
    kind = "o" if blob else "c" if container else "s"
    if kind not in t.resource_types:
        raise SasError("AuthorizationResourceTypeMismatch", f"This request is not authorized to perform this "
                                                            f"operation using this resource type (needs srt "
                                                            f"'{kind}').")
