"""fabric vm extension set|show|list|delete|image list, and the portal's --custom-script convenience.

    fabric vm extension set -g RG --vm-name VM -n CustomScriptExtension --publisher Microsoft.Compute
        [--version 1.7] [--settings JSON|@FILE] [--protected-settings JSON|@FILE] [--no-auto-upgrade-minor-version]
        [--force-update-tag TAG] [--custom-script FILE [--command CMD]]
    fabric vm extension show -g RG --vm-name VM -n NAME [--instance-view] [--logs]

As in az, `set --name` is the handler type and `--extension-instance-name` the resource's name (default: the
type). `--custom-script FILE` uploads FILE to a temporary container, makes a read SAS valid for 24 hours and
runs `sh FILE` (or --command) with it: the portal's convenience from the reference.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from google.protobuf.struct_pb2 import Struct

from fabric.cli import output
from fabric.cli.client import Client, bad_option
from fabric.cli.operations import finish_op
from fabric.cli.storage import upload
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import storage_pb2 as spb

# --custom-script: the CustomScript handler of the guest agent the VM's image runs (the VM's guestAgent)
CUSTOM_SCRIPT = {"fabriclab": ("Microsoft.Compute", "CustomScriptExtension"),
                 "WALinuxAgent": ("Microsoft.Azure.Extensions", "CustomScript")}
CUSTOM_SCRIPT_SAS_HOURS = 24


def custom_script_handler(c: Client, rg: str, vm: str) -> tuple[str, str]:
    """(publisher, type) of the CustomScript handler the guest agent of the VM's image runs."""
    got = c.call(c.vms.Get, pb.VirtualMachineRef(resource_group=rg, name=vm))
    return CUSTOM_SCRIPT.get(got.properties.guest_agent, CUSTOM_SCRIPT["fabriclab"])


def _json_arg(value: str | None, flag: str) -> Struct | None:
    """--settings '{"a": 1}' or --settings @file.json"""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text()
        except OSError as e:
            raise bad_option(flag, f"--{flag}: cannot read {value[1:]}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise bad_option(flag, f"--{flag}: not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise bad_option(flag, f"--{flag}: a JSON object")
    s = Struct()
    s.update(data)
    return s


def script_file(path: str) -> Path:
    """--custom-script FILE, refused (before anything is made) when it is not a file."""
    if not Path(path).is_file():
        raise bad_option("custom-script", f"--custom-script: no such file {path}")
    return Path(path)


def upload_script(c: Client, path: Path) -> str:
    """The file in a temporary container; its read SAS URL as guests reach it (valid 24 hours)."""
    header = spb.BlobUploadHeader(name=path.name, sas_hours=CUSTOM_SCRIPT_SAS_HOURS, content_type="text/x-sh")
    return str(upload(c, header, path).guest_sas_url)


def custom_script_settings(c: Client, path: str, command: str | None) -> Struct:
    url = upload_script(c, script_file(path))
    s = Struct()
    s.update({"fileUris": [url], "commandToExecute": command or f"sh {Path(path).name}"})
    return s


def _latest(c: Client, publisher: str, type_: str) -> str:
    res = c.call(c.extensions.ListImages, pb.ListExtensionImagesRequest(publisher=publisher, type=type_))
    if not res.value:
        return "1.0"        # the server names what is wrong with publisher and type
    versions: list[str] = [i.version for i in res.value]
    return max(versions, key=lambda v: tuple(int(x) for x in v.split(".")))


def set_request(c: Client, rg: str, vm: str, type_: str, publisher: str, version: str | None,
                settings: Struct | None, protected: Struct | None, auto_upgrade: bool = True,
                instance_name: str = "", force_update_tag: str = "") -> pb.SetExtensionRequest:
    req = pb.SetExtensionRequest(resource_group=rg, vm_name=vm, name=instance_name or type_, publisher=publisher,
                                 type=type_, type_handler_version=version or _latest(c, publisher, type_),
                                 auto_upgrade_minor_version=auto_upgrade, force_update_tag=force_update_tag)
    if settings is not None:
        req.settings.CopyFrom(settings)
    if protected is not None:
        req.protected_settings.CopyFrom(protected)
    return req


def cmd_set(c: Client, a: argparse.Namespace) -> int:
    type_, publisher = a.name, a.publisher
    settings = _json_arg(a.settings, "settings")
    if a.custom_script:
        if settings is not None:
            raise bad_option("settings", "--custom-script makes the settings; do not give --settings too")
        if not type_ or not publisher:
            publisher, type_ = custom_script_handler(c, a.resource_group, a.vm_name)
        settings = custom_script_settings(c, a.custom_script, a.command)
    elif a.command:
        raise bad_option("command", "--command goes with --custom-script")
    if not type_ or not publisher:
        raise bad_option("name", "give --name (the handler type) and --publisher, or --custom-script FILE")
    req = set_request(c, a.resource_group, a.vm_name, type_, publisher, a.version, settings,
                      _json_arg(a.protected_settings, "protected-settings"), not a.no_auto_upgrade_minor_version,
                      a.extension_instance_name or "", a.force_update_tag or "")
    op = c.call(c.extensions.Set, req)
    finish_op(c, op, a)
    if not a.no_wait:
        _show(c, a.resource_group, a.vm_name, req.name, a.output, instance_view=True)
    return 0


def _show(c: Client, rg: str, vm: str, name: str, fmt: str | None, instance_view: bool = False,
          logs: bool = False) -> None:
    ext = c.call(c.extensions.Get, pb.ExtensionRef(resource_group=rg, vm_name=vm, name=name,
                                                   instance_view=instance_view, logs=logs))
    if logs and fmt != "json":
        view = ext.properties.instance_view
        for s in view.statuses:
            print(f"# {ext.name}: {view.type} {view.type_handler_version}: {s.display_status}: {s.message}")
        print(f"# handler log (tail) from the guest: /var/log/fabric/extensions/{view.type}/"
              f"{view.type_handler_version}/handler.log")
        text = ext.properties.handler_log or "(the guest agent has not reported this extension yet)"
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    elif fmt == "table":
        print(output.table([_row(output.as_dict(ext))], HEADERS))
    else:
        output.print_json(ext)


HEADERS = ["Name", "Publisher", "Type", "Version", "ProvisioningState", "Message"]


def _row(d: dict[str, Any]) -> list[Any]:
    p = d.get("properties", {})
    statuses = p.get("instanceView", {}).get("statuses", [])
    return [d["name"], p.get("publisher"), p.get("type"), p.get("typeHandlerVersion"), p.get("provisioningState"),
            statuses[0].get("message", "") if statuses else ""]


def cmd_show(c: Client, a: argparse.Namespace) -> int:
    _show(c, a.resource_group, a.vm_name, a.name, a.output, a.instance_view, a.logs)
    return 0


def cmd_list(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.extensions.List, pb.ListExtensionsRequest(resource_group=a.resource_group, vm_name=a.vm_name))
    output.print_list(res.value, a.output, _row, HEADERS)
    return 0


def cmd_delete(c: Client, a: argparse.Namespace) -> int:
    op = c.call(c.extensions.Delete, pb.ExtensionRef(resource_group=a.resource_group, vm_name=a.vm_name,
                                                     name=a.name))
    finish_op(c, op, a)
    return 0


def cmd_image_list(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.extensions.ListImages, pb.ListExtensionImagesRequest(publisher=a.publisher or "",
                                                                        type=a.name or ""))
    if a.output == "table":
        print(output.table([[i.publisher, i.type, i.version, i.description] for i in res.value],
                           ["Publisher", "Type", "Version", "Description"]))
    else:
        output.print_json([output.as_dict(i) for i in res.value])
    return 0


def add_extension_commands(vm: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    e = vm.add_parser("extension", help="VM extensions, run by the guest agent").add_subparsers(dest="sub",
                                                                                                 required=True)

    def base(name: str, help_name: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = e.add_parser(name, parents=[common])
        p.add_argument("--resource-group", "-g", required=True)
        p.add_argument("--vm-name", required=True)
        p.add_argument("--name", "-n", required=name != "set", help=help_name)
        return p

    p = base("set", "the handler type, e.g. CustomScriptExtension")
    p.add_argument("--publisher", help="e.g. Microsoft.Compute")
    p.add_argument("--version", help="typeHandlerVersion, major.minor (default: the latest published)")
    p.add_argument("--extension-instance-name", help="the extension resource's name (default: the type)")
    p.add_argument("--settings", help="public settings: JSON, or @FILE")
    p.add_argument("--protected-settings", help="protected settings: JSON, or @FILE (never shown again)")
    p.add_argument("--no-auto-upgrade-minor-version", action="store_true",
                   help="run exactly --version, not the highest minor of its major")
    p.add_argument("--force-update-tag", help="a new value runs the extension again with the same settings")
    p.add_argument("--custom-script", metavar="FILE", help="upload FILE (read SAS, 24 h) and run it with the "
                   "CustomScript handler of the VM's guest agent (guestAgent in vm show)")
    p.add_argument("--command", help="with --custom-script: the command (default: sh FILE)")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(fn=cmd_set)
    p = base("show", "the extension's name")
    p.add_argument("--instance-view", action="store_true", help="the guest agent's status")
    p.add_argument("--logs", action="store_true", help="the tail of the handler log in the guest")
    p.set_defaults(fn=cmd_show)
    p = e.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--vm-name", required=True)
    p.set_defaults(fn=cmd_list)
    p = base("delete", "the extension's name")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(fn=cmd_delete)
    img = e.add_parser("image", help="the handler catalogue").add_subparsers(dest="sub2", required=True)
    p = img.add_parser("list", parents=[common])
    p.add_argument("--publisher")
    p.add_argument("--name", "-n", help="the handler type")
    p.set_defaults(fn=cmd_image_list)
