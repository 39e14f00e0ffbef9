"""fabric deployment create|show|list and fabric deployment operation list.

    fabric deployment create -g RG --template-file T.json [-n NAME] [--parameters k=v ... | @params.json]
    fabric deployment operation list -g RG -n NAME

`--parameters` takes `name=value` pairs (a value that reads as JSON is taken as JSON), a parameters file
`@file.json` ({"parameters": {"name": {"value": ...}}} or {"name": {"value": ...}}), or a JSON object.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from google.protobuf.struct_pb2 import Struct

from fabric.cli import output
from fabric.cli.client import Client, bad_option, pages, paged
from fabric.cli.operations import finish_op
from fabric.v1 import deployment_pb2 as pb


def _read(path: str, flag: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise bad_option(flag, f"--{flag}: cannot read {path}: {e.strerror}") from None


def parameters(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.startswith("@") or item.lstrip().startswith("{"):
            text = _read(item[1:], "parameters") if item.startswith("@") else item
            try:
                data = json.loads(text)
            except ValueError as e:
                raise bad_option("parameters", f"--parameters {item}: not valid JSON: {e}") from None
            if isinstance(data, dict) and isinstance(data.get("parameters"), dict):
                data = data["parameters"]
            if not isinstance(data, dict):
                raise bad_option("parameters", f"--parameters {item}: a JSON object of parameters")
            for k, v in data.items():
                out[k] = v["value"] if isinstance(v, dict) and set(v) == {"value"} else v
        elif "=" in item:
            k, v = item.split("=", 1)
            try:
                out[k] = json.loads(v)
            except ValueError:
                out[k] = v
        else:
            raise bad_option("parameters", f"--parameters {item}: name=value, @file.json or a JSON object")
    return out


def cmd_create(c: Client, a: argparse.Namespace) -> int:
    text = _read(a.template_file, "template-file")
    name = a.name or Path(a.template_file).stem
    params = Struct()
    params.update(parameters(a.parameters or []))
    op = c.call(c.deployments.Create, pb.CreateDeploymentRequest(resource_group=a.resource_group, name=name,
                                                                 template_json=text, parameters=params))
    try:
        finish_op(c, op, a)
    finally:
        if not a.no_wait:
            _print(a, c.call(c.deployments.Get, pb.DeploymentRef(resource_group=a.resource_group, name=name)))
    return 0


HEADERS = ["Name", "ResourceGroup", "State", "Timestamp", "Duration"]


def _row(d: dict[str, Any]) -> list[Any]:
    p = d.get("properties", {})
    return [d["name"], d["id"].split("/")[4], p.get("provisioningState"), p.get("timestamp"), p.get("duration")]


def _print(a: argparse.Namespace, d: pb.Deployment) -> None:
    if a.output == "table":
        print(output.table([_row(output.as_dict(d))], HEADERS))
    else:
        output.print_json(d)


def cmd_show(c: Client, a: argparse.Namespace) -> int:
    _print(a, c.call(c.deployments.Get, pb.DeploymentRef(resource_group=a.resource_group, name=a.name)))
    return 0


def cmd_list(c: Client, a: argparse.Namespace) -> int:
    found = pages(c, c.deployments.List, lambda n, token: pb.ListDeploymentsRequest(
        resource_group=a.resource_group, max_items=n, next_token=token), a)
    output.print_list(found, a.output, _row, HEADERS)
    return 0


def cmd_operation_list(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.deployments.ListOperations, pb.DeploymentRef(resource_group=a.resource_group, name=a.name))
    if a.output == "table":
        rows = []
        for o in res.value:
            p = output.as_dict(o).get("properties", {})
            msg = p.get("statusMessage")
            err = (msg or {}).get("error", {}) if isinstance(msg, dict) else {}
            while err.get("details"):
                err = err["details"][0]
            rows.append([p.get("targetResource", {}).get("resourceType"), p.get("targetResource", {}).get(
                "resourceName"), p.get("provisioningState"), p.get("statusCode"),
                f"{err.get('code')}: {err.get('message')}" if err else ""])
        print(output.table(rows, ["ResourceType", "Name", "State", "StatusCode", "Error"]))
    else:
        output.print_json([output.as_dict(o) for o in res.value])
    return 0


def add_deployment_commands(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    d = groups.add_parser("deployment", help="template deployments").add_subparsers(dest="cmd", required=True)
    p = d.add_parser("create", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", help="default: the template file's name")
    p.add_argument("--template-file", "-f", required=True)
    p.add_argument("--parameters", "-p", nargs="+", help="name=value ..., @params.json, or a JSON object")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(fn=cmd_create)
    p = d.add_parser("show", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True)
    p.set_defaults(fn=cmd_show)
    p = d.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    paged(p)
    p.set_defaults(fn=cmd_list)
    o = d.add_parser("operation", help="each resource's operation").add_subparsers(dest="sub", required=True)
    p = o.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True, help="the deployment")
    p.set_defaults(fn=cmd_operation_list)
