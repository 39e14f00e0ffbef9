"""ARM paging for list APIs: a page of at most `max_items` records and a `nextLink` to the rest.

A reply never grows with the fabric: a list asks for at most MAX_PAGE items a page (a larger ask is clamped
to it, a missing one is DEFAULT_PAGE) and gets, with the page, the token that continues after its last
record ("" on the last page). The token is the last key returned, opaque to clients (base64url): a list
continues where it stopped even while records come and go, each record at most once.
"""
from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Callable, Sequence
from typing import TypeVar

from fabric.core.errors import invalid

DEFAULT_PAGE = 1000
MAX_PAGE = 1000

T = TypeVar("T")


def page_size(max_items: int) -> int:
    """The page size a list asked for: 0 means DEFAULT_PAGE, more than MAX_PAGE is MAX_PAGE; below 0 is
    refused."""
    if max_items < 0:
        raise invalid("maxItems", f"0 (the default, {DEFAULT_PAGE}) or more; pages hold at most {MAX_PAGE}")
    return min(max_items or DEFAULT_PAGE, MAX_PAGE)


def after(token: str, prefix: str) -> str:
    """The key a next token continues after ("" for the first page); refused unless it is a token of this
    list."""
    if not token:
        return ""
    try:
        key = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = ""
    if not key or not key.startswith(prefix):
        raise invalid("nextToken", "the nextLink token of an earlier page of this same list")
    return key


def page(items: Sequence[T], key: Callable[[T], str], max_items: int, token: str,
         prefix: str = "") -> tuple[list[T], str]:
    """One page of `items` (in the order of `key`, each key under `prefix`) and the token of the next ("" on
    the last page)."""
    size, start = page_size(max_items), after(token, prefix)
    first = bisect.bisect_right([key(i) for i in items], start) if start else 0
    out = list(items[first:first + size])
    more = first + size < len(items)
    return out, (base64.urlsafe_b64encode(key(out[-1]).encode()).decode().rstrip("=") if more else "")
