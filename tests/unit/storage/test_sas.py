import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabric.storage import sas

KEY = "a2V5LW9uZS1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="
KEY2 = "a2V5LXR3by1mb3ItdGVzdHMtMDEyMzQ1Njc4OQ=="
NOW = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.timezone.utc)
EXPIRY = NOW + dt.timedelta(hours=24)


def token(perms: str = "r", blob: str = "simple.sh") -> sas.SasToken:
    return sas.sign(KEY, "acct", "scripts", blob, perms, EXPIRY)


def test_query_has_the_reference_fields_and_round_trips() -> None:
    t = token("rw", blob="")
    q = parse_qs(t.query())
    assert {k: v[0] for k, v in q.items() if k != "sig"} == {
        "sv": "2015-04-05", "sr": "c", "sp": "rw", "se": "2026-11-28T08:00:00Z"}
    assert sas.parse(q) == t
    sas.verify(t, [KEY], "acct", "scripts", "any-blob-in-the-container", "w", NOW)


def test_either_account_key_verifies() -> None:
    t = sas.sign(KEY2, "acct", "scripts", "x", "r", EXPIRY)
    sas.verify(t, [KEY, KEY2], "acct", "scripts", "x", "r", NOW)


@pytest.mark.parametrize("case,code", [
    ("expired", "AuthenticationFailed"), ("missing-permission", "AuthorizationPermissionMismatch"),
    ("other-blob", "AuthenticationFailed"), ("other-container", "AuthenticationFailed"),
    ("other-account", "AuthenticationFailed"), ("rotated-key", "AuthenticationFailed"),
])
def test_refusals_have_the_service_codes(case: str, code: str) -> None:
    t, keys, account, container, blob, need, now = token(), [KEY], "acct", "scripts", "simple.sh", "r", NOW
    if case == "expired":
        now = EXPIRY
    elif case == "missing-permission":
        need = "w"
    elif case == "other-blob":
        blob = "other.sh"
    elif case == "other-container":
        container = "secrets"
    elif case == "other-account":
        account = "acct2"
    elif case == "rotated-key":
        keys = [KEY2]
    with pytest.raises(sas.SasError) as e:
        sas.verify(t, keys, account, container, blob, need, now)
    assert e.value.code == code


def test_bad_permission_letters_are_named() -> None:
    with pytest.raises(ValueError, match="not 'xz'"):
        sas.canonical_permissions("rxz")
    assert sas.canonical_permissions("wr") == "rw"


FIELDS = ["permissions", "expiry", "resource", "start", "version", "protocol", "ip", "signature"]


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(FIELDS), value=st.text(min_size=0, max_size=40))
def test_any_change_to_a_signed_field_or_the_signature_is_refused(field: str, value: str) -> None:
    good = token("rw")
    if getattr(good, field) == value:
        return
    changed: dict[str, Any] = {field: value}
    bad = dataclasses.replace(good, **changed)
    with pytest.raises(sas.SasError):
        sas.verify(bad, [KEY], "acct", "scripts", "simple.sh", "r", NOW)
