"""SAS `sip` (allowed IPv4 address or range) and `spr` (allowed protocols), enforced as the reference does."""
import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
import ipaddress
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabric.storage import sas

KEY = "a2V5LW9uZS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="
NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.timezone.utc)
EXPIRY = NOW + dt.timedelta(hours=24)
HTTP_FROM = sas.Source(ip="10.0.0.4", protocol="http")


def signed(ip: str = "", protocol: str = "") -> sas.SasToken:
    return sas.sign(KEY, "acct", "scripts", "simple.sh", "r", EXPIRY, ip=ip, protocol=protocol)


def check(t: sas.SasToken, source: sas.Source | None) -> None:
    sas.verify(t, [KEY], "acct", "scripts", "simple.sh", "r", NOW, source)


def refusal(t: sas.SasToken, source: sas.Source) -> sas.SasError:
    with pytest.raises(sas.SasError) as e:
        check(t, source)
    return e.value


def test_sip_and_spr_are_in_the_query_and_round_trip() -> None:
    t = signed("10.0.0.1-10.0.0.9", "https,http")
    assert "sip=10.0.0.1-10.0.0.9" in t.query() and "spr=https%2Chttp" in t.query()
    assert sas.parse(parse_qs(t.query())) == t


def test_a_single_address_admits_that_address_only() -> None:
    check(signed("10.0.0.4"), HTTP_FROM)
    err = refusal(signed("10.0.0.5"), HTTP_FROM)
    assert err.code == "AuthorizationSourceIPMismatch"
    assert err.message == "This request is not authorized to perform this operation using this source IP 10.0.0.4."


IPV4 = st.integers(min_value=0, max_value=2 ** 32 - 1)


@settings(max_examples=300, deadline=None)
@given(a=IPV4, b=IPV4, x=IPV4)
def test_a_range_admits_exactly_the_addresses_between_its_ends(a: int, b: int, x: int) -> None:
    lo, hi = sorted((a, b))
    t = signed(f"{ipaddress.IPv4Address(lo)}-{ipaddress.IPv4Address(hi)}")
    source = sas.Source(ip=str(ipaddress.IPv4Address(x)), protocol="http")
    if lo <= x <= hi:
        check(t, source)
    else:
        assert refusal(t, source).code == "AuthorizationSourceIPMismatch"


@pytest.mark.parametrize("client", ["::1", "fe80::1", "", "not-an-address"])
def test_a_client_that_is_not_an_ipv4_address_never_matches_a_sip(client: str) -> None:
    assert refusal(signed("0.0.0.0-255.255.255.255"), sas.Source(ip=client, protocol="http")).code == \
        "AuthorizationSourceIPMismatch"


def test_an_ipv4_mapped_client_address_is_its_ipv4_address() -> None:
    check(signed("10.0.0.4"), sas.Source(ip="::ffff:10.0.0.4", protocol="http"))


@pytest.mark.parametrize("spr,protocol,admitted", [
    ("https", "http", False), ("https", "https", True), ("https,http", "http", True), ("https,http", "https", True),
    ("", "http", True),
])
def test_spr(spr: str, protocol: str, admitted: bool) -> None:
    t, source = signed(protocol=spr), sas.Source(ip="10.0.0.4", protocol=protocol)
    if admitted:
        check(t, source)
    else:
        err = refusal(t, source)
        assert (err.code, err.message) == ("AuthorizationProtocolMismatch",
                                           "This request is not authorized to perform this operation using this "
                                           "protocol.")


@pytest.mark.parametrize("ip,protocol", [
    ("10.0.0.300", ""), ("10.0.0.9-10.0.0.1", ""), ("::1", ""), ("10.0.0.1/24", ""), ("10.0.0.1-", ""),
    ("", "http"), ("", "http,https"), ("", "HTTPS"),
])
def test_sign_refuses_a_sip_or_spr_the_service_would_not_understand(ip: str, protocol: str) -> None:
    with pytest.raises(ValueError, match="sip" if ip else "spr"):
        signed(ip, protocol)


def _foreign_sign(t: sas.SasToken) -> sas.SasToken:
    """Signed by another tool with the account key: a valid signature over whatever the fields say."""
    text = sas.string_to_sign(t, "acct", "scripts", "simple.sh")
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), text.encode(), hashlib.sha256).digest()).decode()
    return dataclasses.replace(t, signature=sig)


@pytest.mark.parametrize("field,value", [("ip", "10.0.0.300"), ("ip", "10.0.0.9-10.0.0.1"), ("protocol", "http"),
                                         ("protocol", "ftp")])
def test_a_validly_signed_but_malformed_sip_or_spr_is_refused(field: str, value: str) -> None:
    changed: dict[str, Any] = {field: value}
    t = _foreign_sign(dataclasses.replace(signed(), **changed))
    err = refusal(t, sas.Source(ip="10.0.0.4", protocol="https"))
    assert err.code == "AuthenticationFailed" and ("sip" if field == "ip" else "spr") in err.message


def test_without_a_request_source_only_the_token_itself_is_checked() -> None:
    """A check made outside a request (e.g. a URL given to an extension) cannot know the client."""
    check(signed("10.9.9.9", "https"), None)
