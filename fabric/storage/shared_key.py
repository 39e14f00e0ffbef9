"""Shared Key authorisation of a blob request, as the reference's blob service checks it and its client libraries
make it (what a connection string with an account key uses):

    Authorization: SharedKey ACCOUNT:Base64(HMAC-SHA256(account key, string-to-sign))
    string-to-sign = VERB \\n Content-Encoding \\n Content-Language \\n Content-Length (empty for 0) \\n
                     Content-MD5 \\n Content-Type \\n Date \\n If-Modified-Since \\n If-Match \\n
                     If-None-Match \\n If-Unmodified-Since \\n Range \\n
                     canonicalized x-ms-* headers (name:value\\n, sorted) +
                     /ACCOUNT + the request's path as sent + (\\nname:value for each query parameter, sorted)

The headers are sorted as the client libraries sort them: by name ignoring its hyphens, then by name. The request
must carry x-ms-date (or Date) within MAX_SKEW_S of now. Either key verifies; the key grants everything on its
account, as in the reference. A refusal is SasError AuthenticationFailed, naming what is wrong, never the
expected signature.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import hmac
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from fabric.storage.sas import SasError, hmac_sha256

SCHEME = "SharedKey "
SIGNED_HEADERS = ("Content-Encoding", "Content-Language", "Content-Length", "Content-MD5", "Content-Type", "Date",
                  "If-Modified-Since", "If-Match", "If-None-Match", "If-Unmodified-Since", "Range")
MAX_SKEW_S = 15 * 60


def string_to_sign(method: str, headers: Iterable[tuple[str, str]], account: str, raw_path: str,
                   raw_query: str) -> str:
    """What the signature signs, from the request's method, headers (name, value; names in any case), path as
    sent and query."""
    named = {k.lower(): v for k, v in headers}

    def header(name: str) -> str:
        value = named.get(name.lower(), "")
        return "" if name == "Content-Length" and value == "0" else value
    fields = [method.upper(), *(header(h) for h in SIGNED_HEADERS)]
    ms = sorted(((k, v.strip()) for k, v in named.items() if k.startswith("x-ms-")),
                key=lambda kv: (kv[0].replace("-", ""), kv[0]))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in ms)
    params: dict[str, list[str]] = {}
    for pair in filter(None, raw_query.split("&")):          # each value decoded once, as the clients sign it
        k, _, v = pair.partition("=")
        params.setdefault(unquote(k).lower(), []).append(unquote(v))
    query = "".join(f"\n{k}:{','.join(sorted(vs))}" for k, vs in sorted(params.items()))
    return "\n".join(fields) + "\n" + canonical_headers + f"/{account}{raw_path}" + query


def verify(authorization: str, method: str, headers: Iterable[tuple[str, str]], account: str, raw_path: str,
           raw_query: str, keys: Sequence[str], now: dt.datetime) -> None:
    """Raise SasError unless `authorization` is a Shared Key signature of this request by one of the account's
    keys, made within MAX_SKEW_S of now."""
    headers = list(headers)
    named = {k.lower(): v for k, v in headers}
    if not authorization.startswith(SCHEME) or ":" not in authorization:
        raise SasError("AuthenticationFailed", "The Authorization header is not 'SharedKey ACCOUNT:SIGNATURE'.")
    signer, _, signature = authorization[len(SCHEME):].partition(":")
    if signer != account:
        raise SasError("AuthenticationFailed", f"The Authorization header names account '{signer[:64]}', not the "
                                               f"request's account '{account}'.")
    stamp = named.get("x-ms-date") or named.get("date") or ""
    try:
        when = email.utils.parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        raise SasError("AuthenticationFailed", "A Shared Key request needs an x-ms-date (or Date) header, an "
                                               "HTTP date like 'Sun, 29 Nov 2026 02:00:00 GMT'.") from None
    if when.tzinfo is None or abs((now - when).total_seconds()) > MAX_SKEW_S:
        raise SasError("AuthenticationFailed", f"Request date header too old or in the future: '{stamp}' is more "
                                               f"than {MAX_SKEW_S // 60} minutes from the service's time.")
    expected = string_to_sign(method, headers, account, raw_path, raw_query)
    if not any(hmac.compare_digest(hmac_sha256(k, expected).encode(), signature.encode()) for k in keys):
        raise SasError("AuthenticationFailed", "Server failed to authenticate the request. Make sure the value of "
                                               "Authorization header is formed correctly including the signature.")
