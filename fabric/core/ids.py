"""Resource ids in the reference's grammar.

/subscriptions/{sub}/resourceGroups/{rg}
/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}
"""
from __future__ import annotations

import re

from fabric.core.errors import invalid

VM_TYPE = "Microsoft.Compute/virtualMachines"
RG_TYPE = "Microsoft.Resources/resourceGroups"

# ARM: resource group names 1-90 chars of letters, digits, '_', '-', '.', '(' and ')', not ending in '.'
_RG_NAME = re.compile(r"^[-\w._()]{1,90}$")
# Linux VM names: 1-64 chars, letters, digits, '-' and '.'; a name must not start with '-' or end with '.' or '-'
_VM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")

_VM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Compute/virtualMachines/(?P<name>[^/]+)$", re.IGNORECASE)


def check_resource_group_name(name: str, target: str = "resourceGroupName") -> None:
    if not _RG_NAME.match(name or "") or name.endswith("."):
        raise invalid(target, "a resource group name is 1-90 letters, digits, '_', '-', '.', '(' or ')' "
                              "and does not end with '.'")


def check_vm_name(name: str, target: str = "name") -> None:
    if not _VM_NAME.match(name or "") or name[-1] in ".-":
        raise invalid(target, "a VM name is 1-64 letters, digits, '-' or '.', starts with a letter or digit "
                              "and does not end with '.' or '-'")


def resource_group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def vm_id(sub: str, rg: str, name: str) -> str:
    return f"{resource_group_id(sub, rg)}/providers/{VM_TYPE}/{name}"


def parse_vm_id(resource_id: str) -> tuple[str, str, str] | None:
    """(subscription, resource group, name) of a VM id, or None if it is not one."""
    m = _VM_ID.match(resource_id)
    return (m["sub"], m["rg"], m["name"]) if m else None
