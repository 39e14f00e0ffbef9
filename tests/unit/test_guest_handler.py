"""The CustomScript handler of the guest image, run on this host by the same busybox the image carries.

What a VM's guest agent does on a new sequence number, minus the VM: the status file it writes must be
valid JSON in the reference's status-file shape, whatever the command printed, with the exit code in words."""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import require

LIB = Path(__file__).resolve().parents[2] / "images" / "busybox-lab" / "rootfs" / "usr" / "lib" / "fabriclab"
ENABLE = LIB / "handlers" / "Microsoft.Compute.CustomScriptExtension" / "1.8" / "enable"


def busybox() -> str:
    found = shutil.which("busybox")
    require(found is not None, "busybox (Debian busybox-static)")
    assert found is not None
    return found


def run(tmp: Path, settings_: dict[str, str], timeout_s: int = 30,
        downloads: Path | None = None) -> tuple[dict[str, Any], str]:
    """Run `enable` with flattened settings; (the status, the handler log)."""
    bb = busybox()
    bindir = tmp / "bin"
    if not bindir.exists():      # busybox applets first on PATH, as in the guest
        bindir.mkdir()
        for applet in subprocess.run([bb, "--list"], capture_output=True, text=True, check=True).stdout.split():
            (bindir / applet).symlink_to(bb)
    config = tmp / "settings"
    config.write_text("".join(f"{k}={base64.b64encode(v.encode()).decode()}\n" for k, v in settings_.items()))
    work, downloads = tmp / "work", downloads or tmp / "downloads"
    work.mkdir(exist_ok=True)
    env = {"PATH": str(bindir), "FABRICLAB_LIB": str(LIB), "CONFIG": str(config), "PUBLIC_JSON": "{}",
           "PROTECTED_KEYS": "", "HANDLER_LOG": str(tmp / "handler.log"), "DOWNLOADS": str(downloads),
           "WORK": str(work), "SEQ": "0", "TIMEOUT": str(timeout_s)}
    subprocess.run([bb, "sh", str(ENABLE)], env=env, check=True, timeout=timeout_s + 30)
    return json.loads((work / "status").read_text())[0]["status"], (tmp / "handler.log").read_text()


def test_a_missing_script_is_explained(tmp_path: Path) -> None:
    status, log = run(tmp_path, {"commandToExecute": "sh sample.sh"})
    assert status["status"] == "error" and status["code"] == 2
    assert status["formattedMessage"]["message"] == (
        "Command 'sh sample.sh' exited with code 2: sh: can't open 'sample.sh': No such file or directory")
    assert [s["name"] for s in status["substatus"]] == ["StdOut", "StdErr"]
    assert "[ERROR] Command execution finished. Command exited with code: 2" in log
    assert "Command execution task started" in log


def test_success_keeps_stdout_and_protected_values_stay_out_of_the_log(tmp_path: Path) -> None:
    status, log = run(tmp_path, {"protected.commandToExecute": "echo hello; echo secret-token > /dev/null"})
    assert (status["status"], status["code"]) == ("success", 0)
    assert status["substatus"][0]["formattedMessage"]["message"] == "hello"
    assert "secret-token" not in log and "secret-token" not in json.dumps(status)
    assert status["formattedMessage"]["message"] == "Command (protected commandToExecute) exited with code 0"
    assert "Command exited with code: 0" in log


def test_a_hanging_command_is_killed_and_reported(tmp_path: Path) -> None:
    t = time.monotonic()
    status, log = run(tmp_path, {"commandToExecute": "echo started; sleep 600 & sleep 600"}, timeout_s=2)
    assert time.monotonic() - t < 20
    assert status["status"] == "error"
    assert status["formattedMessage"]["message"] == (
        "Command 'echo started; sleep 600 & sleep 600' timed out after 2 s and was killed")
    assert status["substatus"][0]["formattedMessage"]["message"] == "started"
    assert "timed out after 2 s" in log


def test_megabytes_of_output_keep_a_capped_tail(tmp_path: Path) -> None:
    status, _ = run(tmp_path, {"commandToExecute": "yes 0123456789 | head -c 5000000; echo END; exit 3"})
    out = status["substatus"][0]["formattedMessage"]["message"]
    assert status["code"] == 3 and len(out) == 4095 and out.endswith("END")


SURROGATES: tuple[Literal["Cs"]] = ("Cs",)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.characters(blacklist_categories=SURROGATES, blacklist_characters="\x00"),
                    max_size=60))
def test_any_output_gives_valid_json(tmp_path: Path, text: str) -> None:
    (tmp_path / "out.txt").write_text(text)
    status, _ = run(tmp_path, {"commandToExecute": f"cat {tmp_path}/out.txt; cat {tmp_path}/out.txt >&2; exit 1"})
    expected = "".join(c for c in text if c in "\t\n\r" or ord(c) >= 32).rstrip("\n")
    assert status["substatus"][0]["formattedMessage"]["message"] == expected


def test_a_failed_download_says_which_file(tmp_path: Path) -> None:
    status, log = run(tmp_path, {"commandToExecute": "sh x.sh", "fileUris.0": "http://127.0.0.1:9/c/x.sh?sig=a"})
    assert status["status"] == "error"
    assert status["formattedMessage"]["message"].startswith("Failed to download 'x.sh' (fileUris[0]): ")
    assert "DownloadFiles: fileUri = http://127.0.0.1:9/c/x.sh?sig=a" in log


@pytest.mark.parametrize("version", ["1.7", "1.8"])
def test_both_versions_are_published(version: str) -> None:
    assert (LIB / "handlers" / "Microsoft.Compute.CustomScriptExtension" / version / "enable").stat().st_mode & 0o111


def test_a_download_folder_it_cannot_enter_still_gives_a_status(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    status, log = run(tmp_path, {"commandToExecute": "true"}, downloads=tmp_path / "a-file" / "downloads")
    assert status["status"] == "error" and status["code"] == 1
    assert status["formattedMessage"]["message"].startswith("The handler could not enter its download folder ")
    assert "Cannot enter the download folder" in log


def holders(tmp: Path) -> list[int]:
    """The processes working in tmp or holding a file of it open: what a handler run left behind."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [proc / "cwd", *(proc / "fd").iterdir()]
            if any(str(link.readlink()).startswith(str(tmp)) for link in links):
                found.append(int(proc.name))
        except OSError:                      # gone meanwhile, or a kernel thread
            continue
    return found


@pytest.mark.parametrize("command,limit", [("echo quick", 999999), ("sleep 600", 1)])
def test_the_handler_leaves_no_process_behind(tmp_path: Path, command: str, limit: int) -> None:
    """Its timers (the time limit, the wait for output) end with it, whether the command ended or was killed."""
    status, _ = run(tmp_path, {"commandToExecute": command}, timeout_s=limit)
    assert status["status"] == ("success" if limit > 1 else "error")
    assert holders(tmp_path) == []


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9/c/", "http://127.0.0.1:9/c/..?sig=a"])
def test_a_file_uri_without_a_file_name_is_refused(tmp_path: Path, uri: str) -> None:
    status, _ = run(tmp_path, {"commandToExecute": "true", "fileUris.0": uri})
    assert status["status"] == "error" and "does not end in a file name" in status["formattedMessage"]["message"]


@pytest.mark.parametrize("text,found", [
    ('[{"status": {"status": "success", "code": 0}}]', "success"),
    ('[{"status":{"status":"error","code":2}}]', "error"),                     # no spaces at all
    ('[\n  {\n    "status" :\n      {\t"status" : "success" }\n  }\n]', "success"),   # any spacing
    ('[{"status": {"status": "transitioning"}}]', ""),
    ('[{"status": {"formattedMessage": {"message": "\\"status\\": \\"success\\""}}}]', ""),   # only as text
])
def test_the_agent_reads_a_final_status_in_any_json_spacing(tmp_path: Path, text: str, found: str) -> None:
    (tmp_path / "status").write_text(text)
    r = subprocess.run([busybox(), "sh", "-c", f'. "{LIB}/lib.sh"; final_status "{tmp_path}/status"'],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == found
