"""Output: ARM JSON (camelCase) by default, `-o table` for people."""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def as_dict(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = MessageToDict(msg, always_print_fields_with_no_presence=True, unquote_int64_if_possible=True)
    return out


def print_json(data: Any) -> None:
    if isinstance(data, Message):
        data = as_dict(data)
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def print_list(msgs: Sequence[Message], fmt: str | None, row: Any, headers: Sequence[str]) -> None:
    """A list of resources: a table of `row(resource as dict)` with -o table, else a JSON array."""
    if fmt == "table":
        print(table([row(as_dict(m)) for m in msgs], headers))
    else:
        print_json([as_dict(m) for m in msgs])


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def power_state(vm: dict[str, Any]) -> str:
    for s in vm.get("properties", {}).get("instanceView", {}).get("statuses", []):
        if s.get("code", "").startswith("PowerState/"):
            return str(s.get("displayStatus", ""))
    return ""


def _candidates(rows: list[dict[str, Any]]) -> str:
    cells = []
    for c in rows:
        verdicts = "; ".join(f"{f['filter']} {'pass' if f.get('passed') else 'FAIL'}: {f.get('reason', '')}"
                             for f in c.get("filters", []))
        cells.append([("* " if c.get("chosen") else "  ") + c["node"], c.get("faultDomain", 0),
                      f"{c.get('weight', 0):.4f}", verdicts])
    return table(cells, ["node", "fd", "weight", "filters"])


def _summary_text(s: dict[str, Any]) -> str:
    rejected = ", ".join(f"{r['filter']} rejected {r.get('nodes', 0)}" for r in s.get("rejected", []))
    return (f"{s.get('considered', 0)} of {s.get('nodes', 0)} nodes considered, {s.get('feasible', 0)} fit"
            f"{'; ' + rejected if rejected else ''} (asked {s.get('cores', 0)} vCPUs, {s.get('memoryMb', 0)} MB, "
            f"{s.get('resourceDiskMb', 0)} MB local disk)")


def why_not_text(w: dict[str, Any]) -> str:
    """One node against a placement, as `fabric operation show ID --why-not NODE` prints it."""
    out = [w.get("note", "")]
    if w.get("now"):
        out += ["as it stands now:", _candidates([w["now"]])]
    return "\n".join(out)


def trace_text(op: dict[str, Any]) -> str:
    """The operation trace as people read it: one line a step, details indented, placement as a table."""
    out = [f"operation {op['id']}  {op.get('name', '')}",
           f"target    {op.get('target', '')}",
           f"status    {op.get('status', '')}  (started {op.get('startTime', '')}, ended {op.get('endTime', '-')})"]
    if op.get("error"):
        out.append(f"error     {op['error'].get('code')}: {op['error'].get('message')}")
    out.append("")
    for s in op.get("trace", []):
        out.append(f"{s['time'][11:26]}  {s.get('source', ''):<12} {s.get('step', ''):<22} {s.get('message', '')}")
        if s.get("placementSummary"):
            out.append("        " + _summary_text(s["placementSummary"]))
        if s.get("placement"):
            out.extend("        " + line for line in _candidates(s["placement"]).splitlines())
        if s.get("detail"):
            out.extend("        | " + line for line in s["detail"].rstrip().splitlines())
    return "\n".join(out)
