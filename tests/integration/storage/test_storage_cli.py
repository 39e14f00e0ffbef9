"""`fabric storage ...` as a user runs it."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.integration.conftest import Api
from tests.integration.storage.conftest import http
from tests.integration.test_cli import fabric


def test_upload_with_sas_hours_prints_a_read_url_valid_24_hours(acct: Api, tmp_path: Path) -> None:
    script = tmp_path / "simple.sh"
    script.write_text("echo from the portal\n")
    r = fabric(acct.address, "storage", "blob", "upload", "--file", str(script), "--sas-hours", "24")
    assert r.returncode == 0, r.stderr
    url = r.stdout.strip()
    parts = urlsplit(url)
    assert parts.path.startswith("/fabrictemplocal/vmextensionstemporary-") and parts.path.endswith("/simple.sh")
    q = parse_qs(parts.query)
    assert q["sr"] == ["c"] and q["sp"] == ["r"]
    expiry = dt.datetime.strptime(q["se"][0], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    hours = (expiry - dt.datetime.now(dt.timezone.utc)).total_seconds() / 3600
    assert 23.9 < hours <= 24
    assert http("GET", url).body == b"echo from the portal\n"
    assert http("DELETE", url).code == "AuthorizationPermissionMismatch"


def test_blob_commands_and_lease_in_show(acct: Api, tmp_path: Path) -> None:
    out = tmp_path / "out.sh"
    base = ["--account-name", "blogacct", "-c", "scripts", "-n", "simple.sh"]
    r = fabric(acct.address, "storage", "blob", "download", *base, "-f", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == b"echo hello\n"
    lease_id = json.loads(fabric(acct.address, "storage", "blob", "lease", "acquire", *base).stdout)
    shown = json.loads(fabric(acct.address, "storage", "blob", "show", *base).stdout)
    assert shown["properties"]["lease"] == {"state": "leased", "status": "locked", "duration": "infinite"}
    assert shown["properties"]["contentLength"] == 11
    r = fabric(acct.address, "storage", "blob", "delete", *base)
    assert r.returncode == 1 and json.loads(r.stderr)["error"]["code"] == "LeaseIdMissing"
    assert fabric(acct.address, "storage", "blob", "lease", "release", *base, "--lease-id", lease_id).returncode == 0
    assert fabric(acct.address, "storage", "blob", "delete", *base).returncode == 0
    listing = json.loads(fabric(acct.address, "storage", "blob", "list", "--account-name", "blogacct",
                                "-c", "scripts").stdout)
    assert listing == []


def test_generate_sas_and_bad_input(acct: Api) -> None:
    expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = fabric(acct.address, "storage", "blob", "generate-sas", "--account-name", "blogacct", "-c", "scripts",
               "-n", "simple.sh", "--permissions", "r", "--expiry", expiry, "--full-uri")
    assert r.returncode == 0, r.stderr
    assert http("GET", json.loads(r.stdout)).body == b"echo hello\n"
    r = fabric(acct.address, "storage", "blob", "generate-sas", "--account-name", "blogacct", "-c", "scripts",
               "--permissions", "rq", "--expiry", expiry)
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["target"] == "permissions" and "racwdl" in err["message"]
    r = fabric(acct.address, "storage", "blob", "generate-sas", "--account-name", "blogacct", "-c", "scripts",
               "--permissions", "r", "--expiry", "2000-01-01T00:00:00Z")
    assert json.loads(r.stderr)["error"]["target"] == "expiry"
    keys = json.loads(fabric(acct.address, "storage", "account", "keys", "list", "-n", "blogacct").stdout)
    assert [k["keyName"] for k in keys] == ["key1", "key2"]
