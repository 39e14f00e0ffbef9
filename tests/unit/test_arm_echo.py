"""What an ARM error may echo of a request is bounded, in one place (ArmError), and said to be cut."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from fabric.core.errors import (MAX_DETAILS, MAX_ECHO_CHARS, MAX_ERROR_BYTES, MAX_MESSAGE_CHARS, ArmError, invalid,
                               shorten)


def test_a_short_value_is_echoed_whole() -> None:
    assert shorten("westus") == "westus"
    assert shorten("x" * MAX_ECHO_CHARS) == "x" * MAX_ECHO_CHARS


def test_a_long_value_is_cut_with_an_ellipsis_and_its_length() -> None:
    cut = shorten("x" * 100_000)
    assert len(cut) <= MAX_ECHO_CHARS and cut.startswith("xxx")
    assert cut.endswith("… (100000 characters)")


@given(st.text(max_size=3 * MAX_ECHO_CHARS), st.integers(min_value=30, max_value=2 * MAX_ECHO_CHARS))
def test_shorten_bounds_and_is_idempotent(text: str, limit: int) -> None:
    once = shorten(text, limit)
    assert len(once) <= limit and shorten(once, limit) == once


def test_a_huge_value_inside_a_message_is_cut_and_the_sentence_kept() -> None:
    err = ArmError("LocationNotAvailable", f"Location '{'x' * 100_000}' is not served by this fabric; it serves "
                                           f"'local'.", "location")
    assert err.message.startswith("Location 'xxx") and err.message.endswith("it serves 'local'.")
    assert "… (100000 characters)' is not served" in err.message
    assert len(err.message) < MAX_ECHO_CHARS + 100
    assert str(err) == err.message


def test_a_huge_value_with_spaces_is_bounded_by_the_message_cap() -> None:
    err = ArmError("InvalidParameter", "bad: " + "ab " * 100_000)
    assert len(err.message) <= MAX_MESSAGE_CHARS and "(300005 characters)" in err.message


def test_targets_and_details_are_cut_too() -> None:
    key = "k" * 50_000
    err = invalid(f"settings.{key}", "CustomScript settings are fileUris and commandToExecute")
    assert len(err.target) <= MAX_ECHO_CHARS and err.target.startswith("settings.kkk")
    assert len(err.message) < 2 * MAX_ECHO_CHARS + 100
    nested = ArmError("DeploymentFailed", "failed", details=[
        {"code": "X", "message": "m" * 100_000, "target": "t" * 100_000,
         "details": [{"code": "Y", "message": "n" * 100_000}]}] * (MAX_DETAILS + 5))
    assert len(nested.details) == MAX_DETAILS + 1 and "5 more" in nested.details[-1]["message"]
    first = nested.details[0]
    assert len(first["message"]) <= MAX_MESSAGE_CHARS and len(first["target"]) <= MAX_ECHO_CHARS
    assert len(first["details"][0]["message"]) <= MAX_MESSAGE_CHARS


def test_the_metadata_body_fits_grpc_whatever_the_error() -> None:
    worst = ArmError("DeploymentFailed", "é " * 100_000, "t" * 100_000, details=[
        {"code": "X", "message": "ü " * 100_000, "details": [{"code": "Y", "message": "ö " * 100_000}] * 50}] * 50)
    (key, value), = worst.to_metadata()
    assert len(value) <= MAX_ERROR_BYTES and value.isascii()
    body = json.loads(value)
    assert body["code"] == "DeploymentFailed" and body["target"].startswith("ttt")


def test_an_ordinary_error_round_trips_unchanged() -> None:
    err = ArmError("Conflict", "A VM named 'vm1' already exists.", "name", [{"code": "X", "message": "y"}])
    assert err.body() == {"code": "Conflict", "message": "A VM named 'vm1' already exists.", "target": "name",
                          "details": [{"code": "X", "message": "y"}]}
    (key, value), = err.to_metadata()
    assert json.loads(value) == err.body()
