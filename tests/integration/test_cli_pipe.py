"""`fabric … | head`: a reader that stops early ends the CLI quietly, as it ends `git log | head`.

Exit status 141 (128 + SIGPIPE), what the shell reports for git or coreutils killed by SIGPIPE, and
nothing on stderr; a BrokenPipeError that is not stdout's stays an error.
"""
from __future__ import annotations

import os
import subprocess
import sys

from fabric.v1 import fabric_pb2 as pb
from tests.integration.conftest import Api

CLI = [sys.executable, "-m", "fabric.cli.main"]
GROUPS = 300                      # `group list` of this many is ~90 KB: more than a pipe holds (64 KiB)


def test_output_to_a_closed_pipe_ends_quietly(api: Api) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)                          # the reader is gone before the first byte
    try:
        r = subprocess.run([*CLI, "vm", "list-sizes", "-l", "local", "-o", "table"], stdout=write_end,
                           stderr=subprocess.PIPE, text=True, env={**os.environ, "FABRIC_CONTROLLER": api.address},
                           timeout=60)
    finally:
        os.close(write_end)
    assert (r.returncode, r.stderr) == (141, "")


def test_long_output_into_head_ends_quietly(api: Api) -> None:
    for i in range(GROUPS):
        api.groups.Create(pb.CreateResourceGroupRequest(name=f"rg-{i:03d}", location="local"))
    r = subprocess.run(["bash", "-c", 'set -o pipefail; "$@" | head -n 1', "_", *CLI, "group", "list"],
                       capture_output=True, text=True, env={**os.environ, "FABRIC_CONTROLLER": api.address},
                       timeout=60)
    assert (r.stdout, r.stderr, r.returncode) == ("[\n", "", 141)
