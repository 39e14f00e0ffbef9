"""Naming rules of storage accounts, containers and blobs (the reference service's rules)."""
from __future__ import annotations

import re
from urllib.parse import quote

from fabric.core.errors import invalid

_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
MAX_BLOB_NAME = 1024


def check_account(name: str, target: str = "accountName") -> None:
    if not _ACCOUNT.match(name or ""):
        raise invalid(target, "a storage account name is 3-24 lower-case letters and digits")


def check_container(name: str, target: str = "containerName") -> None:
    if not _CONTAINER.match(name or ""):
        raise invalid(target, "a container name is 3-63 lower-case letters, digits and single hyphens, "
                              "starting and ending with a letter or digit")


def check_blob(name: str, target: str = "blobName") -> None:
    if not name or len(name) > MAX_BLOB_NAME:
        raise invalid(target, f"a blob name is 1-{MAX_BLOB_NAME} characters")
    if name.endswith((".", "/")) or "\\" in name or any(ord(c) < 32 for c in name):
        raise invalid(target, "a blob name does not end with '.' or '/' and has no control characters or '\\'")


def body_name(blob: str) -> str:
    """A blob name as one safe file name (no '/' and never '.' or '..', which check_blob refuses)."""
    return quote(blob, safe="")
