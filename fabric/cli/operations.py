"""Following a long operation from the CLI: the server stream, progress on a terminal, --no-wait."""
from __future__ import annotations

import argparse
import sys

from fabric.cli import output
from fabric.cli.client import CliError, Client
from fabric.v1 import fabric_pb2 as pb


def follow(client: Client, op: pb.Operation) -> pb.Operation:
    """Follow an operation through the server stream; progress on stderr when it is a terminal."""
    tty = sys.stderr.isatty()
    seen = 0
    last = op
    for cur in client.stream(client.ops.Watch, pb.GetOperationRequest(id=op.id, trace=True)):
        last = cur
        if tty:
            for step in cur.trace[seen:]:
                sys.stderr.write(f"  - {step.source}: {step.step}: {step.message}\n")
            seen = len(cur.trace)
    return last


def finish_op(client: Client, op: pb.Operation, args: argparse.Namespace) -> None:
    """With --no-wait, print the operation; otherwise follow it, and raise its error when it failed."""
    if args.no_wait:
        out = output.as_dict(op)
        out.pop("trace", None)
        output.print_json(out)
        return
    if sys.stderr.isatty():
        sys.stderr.write(f"Running {op.name} ({op.id}) ...\n")
    final = follow(client, op)
    if final.status != "Succeeded":
        err = output.as_dict(final.error)
        raise CliError({**err, "details": [*err.get("details", []),
                                           {"code": "OperationFailed", "message":
                                            f"see `fabric operation show {final.id} --trace`"}]})
