"""The wireserver's documents, in the reference's shapes, for the guest agents of both kinds: fabriclab's
busybox agent and the reference's own (WALinuxAgent, cloud-init's Azure datasource), unmodified.

    GET /?comp=versions                          versions_xml      (must list 2012-11-30)
    GET /machine[/]?comp=goalstate               goal_state_xml    (Incarnation, ContainerId, InstanceId, the
                                                                    configuration documents' URLs, ConfigName)
    GET /machine/C/R?comp=config&type=hostingEnvironmentConfig   hosting_environment_xml
    GET /machine/C/R?comp=config&type=sharedConfig               shared_config_xml
    GET /machine/C/R?comp=config&type=extensionsConfig           extensions_config_reference_xml
    GET /machine?comp=extensionsconfig           extensions_config_xml (the busybox agent's: a line an element)

The container is the VM on this node (it changes when the VM moves, as the reference's does), the role
instance `<container>._<name>`. Both come from the instance document (network_converge.instance_document).
"""
from __future__ import annotations

import base64
import functools
import io
import json
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fabric.model import Assignment

WIRE_VERSION = "2012-11-30"
SUPPORTED_VERSIONS = ("2015-04-05", "2012-11-30", "2012-09-15", "2012-05-15", "2011-12-31", "2011-10-15",
                      "2011-08-31", "2011-04-07", "2010-12-15", "2010-28-10")
HOST_PLUGIN_PORT = 32526
HOST_PLUGIN_VERSIONS = ("2015-09-01", "2012-11-30")
# the handler repository the extensions config points the reference's agent to: <handler>/<version>/ folders
# in the reference's handler format (HandlerManifest.json and the commands it names)
HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"
XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n'


def container_of(a: Assignment) -> str:
    """The wireserver's container of the VM: the VM on this node (a move to another node makes a new one, as
    the reference's service healing does)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fabriclab:container:{a.vm_id}:{a.node}"))


def versions_xml() -> str:
    supported = "".join(f"<Version>{v}</Version>" for v in SUPPORTED_VERSIONS)
    return (f"{XML_HEAD}<Versions>\n<Preferred><Version>{SUPPORTED_VERSIONS[0]}</Version></Preferred>\n"
            f"<Supported>{supported}</Supported>\n</Versions>\n")


def incarnation(doc: dict[str, Any]) -> int:
    return int(doc.get("incarnation", 1))


def container_id(doc: dict[str, Any]) -> str:
    return str(doc.get("containerId") or doc.get("compute", {}).get("vmId", ""))


def instance_id(doc: dict[str, Any]) -> str:
    return str(doc.get("instanceId") or doc.get("compute", {}).get("vmId", ""))


def role_path(doc: dict[str, Any]) -> str:
    """The path of the VM's role instance, under which its configuration documents and status blob are served."""
    return f"/machine/{container_id(doc)}/{instance_id(doc)}"


def config_url(host: str, doc: dict[str, Any], kind: str) -> str:
    return f"http://{host}{role_path(doc)}?comp=config&type={kind}&incarnation={incarnation(doc)}"


def status_blob_url(host: str, doc: dict[str, Any]) -> str:
    """Where the guest agent puts its status (directly, or through the host plugin's PUT /status)."""
    return f"http://{host}{role_path(doc)}?comp=status&type=vmStatus"


def goal_state_xml(doc: dict[str, Any], host: str) -> str:
    """The goal state: one element a line (the busybox agent reads it with sed)."""
    inc, inst = incarnation(doc), instance_id(doc)
    name = doc.get("compute", {}).get("name", "")
    urls = "".join(f"<{tag}>{escape(config_url(host, doc, kind))}</{tag}>\n" for tag, kind in (
        ("HostingEnvironmentConfig", "hostingEnvironmentConfig"), ("SharedConfig", "sharedConfig"),
        ("ExtensionsConfig", "extensionsConfig")))
    return (f'{XML_HEAD}<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="goalstate10.xsd">\n'
            f"<Version>{WIRE_VERSION}</Version>\n<Incarnation>{inc}</Incarnation>\n"
            "<Machine><ExpectedState>Started</ExpectedState><StopRolesDeadlineHint>300000</StopRolesDeadlineHint>"
            "<ExpectHealthReport>FALSE</ExpectHealthReport></Machine>\n"
            f"<Container>\n<ContainerId>{escape(container_id(doc))}</ContainerId>\n<RoleInstanceList><RoleInstance>\n"
            f"<InstanceId>{escape(inst)}</InstanceId>\n<State>Started</State>\n<Configuration>\n{urls}"
            f"<ConfigName>{escape(f'{inst}.{inst}._{name}.{inc}.xml')}</ConfigName>\n"
            "</Configuration>\n</RoleInstance></RoleInstanceList>\n</Container>\n</GoalState>\n")


def _guid(*parts: str) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(parts))) + "}"


def _deployment(doc: dict[str, Any]) -> str:
    c, inst = container_id(doc), instance_id(doc)
    return (f'<Deployment name={quoteattr(c)} guid="{_guid(c)}" incarnation="0" '
            'isNonCancellableTopologyChangeEnabled="false">'
            f'<Service name={quoteattr(doc.get("compute", {}).get("name", ""))} guid="{_guid(c, "service")}"/>'
            f'<ServiceInstance name={quoteattr(c + ".0")} guid="{_guid(c, "instance")}"/></Deployment>\n'
            f'<Incarnation number="{incarnation(doc)}" instance={quoteattr(inst)} guid="{_guid(inst)}"/>\n')


def hosting_environment_xml(doc: dict[str, Any]) -> str:
    inst = instance_id(doc)
    return (f'{XML_HEAD}<HostingEnvironmentConfig version="1.0.0.0" goalStateIncarnation="{incarnation(doc)}">\n'
            f"<StoredCertificates/>\n{_deployment(doc)}"
            f'<Role guid="{_guid(inst, "role")}" name={quoteattr(inst)} hostingEnvironmentVersion="1" software="" '
            'softwareType="ApplicationPackage" entryPoint="" parameters="" settleTimeSeconds="10"/>\n'
            '<HostingEnvironmentSettings name="full"><CAS mode="runfull"/><PrivilegeLevel mode="max"/>'
            "</HostingEnvironmentSettings>\n<ApplicationSettings/>\n<ResourceReferences/>\n"
            "</HostingEnvironmentConfig>\n")


def shared_config_xml(doc: dict[str, Any], ip: str) -> str:
    inst = instance_id(doc)
    return (f'{XML_HEAD}<SharedConfig version="1.0.0.0" goalStateIncarnation="{incarnation(doc)}">\n'
            f'{_deployment(doc)}<Role guid="{_guid(inst, "role")}" name={quoteattr(inst)} settleTimeSeconds="10"/>\n'
            '<LoadBalancerSettings timeoutSeconds="0" waitLoadBalancerProbeCount="8"><Probes/>'
            "</LoadBalancerSettings>\n<OutputEndpoints/>\n"
            f'<Instances><Instance id={quoteattr(inst)} address={quoteattr(ip)}>'
            f'<FaultDomains randomId="0" updateId="0" updateCount="0"/><InputEndpoints/></Instance></Instances>\n'
            "</SharedConfig>\n")


def handler_manifest_url(host: str, handler: str, version: str) -> str:
    return f"http://{host}/handlers/{handler}/{version}/manifest.xml"


def handler_folder(handler: str, version: str) -> Path | None:
    """A handler of the repository (HANDLERS_DIR/<handler>/<version>), by names it holds; None otherwise."""
    try:
        if handler in os.listdir(HANDLERS_DIR) and version in os.listdir(HANDLERS_DIR / handler):
            return HANDLERS_DIR / handler / version
    except OSError:
        pass
    return None


def handler_manifest_xml(host: str, handler: str, version: str) -> str:
    """The handler's version manifest, as WALinuxAgent reads it: the version and where its package is."""
    uri = escape(f"http://{host}/handlers/{handler}/{version}/{handler}__{version}.zip")
    return (f'{XML_HEAD}<PluginVersionManifest xmlns:i="http://www.w3.org/2001/XMLSchema-instance">\n'
            f"<Plugins><Plugin><Version>{escape(version)}</Version><Uris><Uri>{uri}</Uri></Uris></Plugin></Plugins>\n"
            "<InternalPlugins/>\n</PluginVersionManifest>\n")


@functools.lru_cache(maxsize=16)
def handler_package(handler: str, version: str) -> bytes | None:
    """The handler's package: a zip of its folder (HandlerManifest.json and its commands), the same bytes every
    time; None for a handler the repository does not hold."""
    folder = handler_folder(handler, version)
    if folder is None:
        return None
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(f.relative_to(folder)), date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if os.access(f, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, f.read_bytes())
    return buf.getvalue()


def extensions_config_reference_xml(doc: dict[str, Any], host: str) -> str:
    """The extensions config in the reference's schema, as WALinuxAgent reads it: the agent families (no
    agent update is offered), each handler with its manifest's location, its runtime settings by sequence
    number, and the blob the agent uploads its status to. Protected settings are not sent: the reference
    sends them encrypted to the VM's certificate, and this wireserver offers no Certificates document."""
    inc = incarnation(doc)
    plugins, settings = [], []
    for e in doc.get("extensions", []):
        h, v = e["handler"], e["version"]
        where = quoteattr(handler_manifest_url(host, h, v))
        plugins.append(f"<Plugin name={quoteattr(h)} version={quoteattr(v)} location={where} state=\"enabled\" "
                       f'autoUpgrade="false" failoverlocation={where} runAsStartupTask="false" isJson="true" '
                       'useExactVersion="true"/>')
        runtime = {"runtimeSettings": [{"handlerSettings": {"protectedSettingsCertThumbprint": None,
                                                            "protectedSettings": None,
                                                            "publicSettings": e.get("settings", {})}}]}
        settings.append(f"<Plugin name={quoteattr(h)} version={quoteattr(v)}><RuntimeSettings "
                        f'seqNo="{int(e["seq"])}">{escape(json.dumps(runtime))}</RuntimeSettings></Plugin>')
    return (f'{XML_HEAD}<Extensions version="1.0.0.0" goalStateIncarnation="{inc}">\n'
            '<GuestAgentExtension xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><GAFamilies>'
            "<GAFamily><Name>Prod</Name><Uris/></GAFamily></GAFamilies></GuestAgentExtension>\n"
            f'<StatusUploadBlob statusBlobType="BlockBlob">{escape(status_blob_url(host, doc))}</StatusUploadBlob>\n'
            f"<Plugins>{''.join(plugins)}</Plugins>\n<PluginSettings>{''.join(settings)}</PluginSettings>\n"
            f'<InVMGoalStateMetaData inSvdSeqNo="{inc}" activityId="{_guid(instance_id(doc), str(inc))[1:-1]}" '
            f'correlationId="{_guid(container_id(doc), str(inc))[1:-1]}"/>\n</Extensions>\n')


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
    """The VM's extensions for the busybox agent; one element a line so that a shell agent can read it with
    `while read`."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>', f'<Extensions incarnation="{incarnation(doc)}">']
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
