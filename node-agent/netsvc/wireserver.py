"""The wireserver's documents, in the reference's shapes: a VM's goal state with its incarnation, and its
extensions config (served by the metadata process, see metadata.py)."""
from __future__ import annotations

import base64
import json
from typing import Any
from xml.sax.saxutils import escape


def goal_state_xml(ip: str, doc: dict[str, Any], host: str) -> str:
    c = doc.get("compute", {})
    inc = int(doc.get("incarnation", 1))
    return ('<?xml version="1.0" encoding="utf-8"?><GoalState><Version>2012-11-30</Version>'
            f"<Incarnation>{inc}</Incarnation><Machine><ExpectedState>Started"
            "</ExpectedState></Machine><Container><ContainerId>" + escape(c.get("resourceGroupName", "")) +
            "</ContainerId><RoleInstanceList><RoleInstance><InstanceId>" + escape(c.get("vmId", "")) +
            "</InstanceId><State>Started</State><Configuration><ExtensionsConfig>" +
            escape(f"http://{host}/machine?comp=extensionsconfig&incarnation={inc}") +
            "</ExtensionsConfig></Configuration></RoleInstance></RoleInstanceList></Container></GoalState>")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """JSON settings as (path, text) pairs: {"fileUris": ["a"]} -> [("fileUris.0", "a")]."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in flatten(v, f"{prefix}.{i}" if prefix else str(i))]
    return [(prefix, value if isinstance(value, str) else json.dumps(value))]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def extensions_config_xml(doc: dict[str, Any]) -> str:
    """The VM's extensions; one element a line so that a shell agent can read it with `while read`."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<Extensions incarnation="{int(doc.get("incarnation", 1))}">']
    for e in doc.get("extensions", []):
        lines.append(f'<Plugin name="{escape(e["name"])}" handler="{escape(e["handler"])}" '
                     f'version="{escape(e["version"])}" seqNo="{int(e["seq"])}" '
                     f'timeoutSeconds="{int(e["timeoutSeconds"])}">')
        lines.append(f"<PublicSettings>{_b64(json.dumps(e.get('settings', {})))}</PublicSettings>")
        lines.append(f"<ProtectedSettingKeys>{_b64(' '.join(sorted(e.get('protectedSettings', {}))))}"
                     "</ProtectedSettingKeys>")
        for path, text in flatten(e.get("settings", {})):
            lines.append(f'<Setting name="{escape(path)}">{_b64(text)}</Setting>')
        for path, text in flatten(e.get("protectedSettings", {})):
            lines.append(f'<Setting name="{escape(path)}" protected="true">{_b64(text)}</Setting>')
        lines.append("</Plugin>")
    lines.append("</Extensions>")
    return "\n".join(lines) + "\n"
