"""Deployments: a template's resources created in dependency order through the resource providers.

Contract:
  - `create` checks the whole template (InvalidTemplate, NoRegisteredProviderFound, a resource's missing
    fields) and writes nothing when it is refused; otherwise one transaction writes the deployment (Running)
    and its operation.
  - `advance` is level-based and idempotent (run by the controller's reconcile loop, and again after a
    restart): it starts every resource whose dependencies succeeded, follows each resource's own operation,
    skips the resources that depend on a failed one, and ends the deployment. A resource found already made
    (a crash between starting it and recording that) is adopted, as a PUT of the same resource would be.
  - A failed resource gives the reference's nesting: the deployment's operation fails with
    ResourceDeploymentFailure > DeploymentFailed > Conflict (the resource operation's status message as JSON
    text) > ResourceDeploymentFailure > the resource's own error, e.g. VMExtensionProvisioningError.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import uuid
from enum import StrEnum
from typing import Any

from fabric import operations
from fabric.core.errors import ArmError, Kind, invalid
from fabric.compute import extensions
from fabric.compute.vms import ComputeProvider
from fabric.deployments import template as tpl
from fabric.gallery import parse_urn
from fabric.model import OperationRecord, OperationStatus, Record, SshKey, VmRecord, now
from fabric.store import Absent, Put, Unchanged, Versioned, keys
from fabric.store.informer import informed

log = logging.getLogger(__name__)
SOURCE = "deployments"
DEPLOYMENT_TYPE = "Microsoft.Resources/deployments"
_NAME = re.compile(r"^[-\w.()]{1,64}$")
TERMINAL_MESSAGE = "The resource operation completed with terminal provisioning state 'Failed'."
FAILED_MESSAGE = ("At least one resource deployment operation failed. Please list deployment operations for "
                  "details (fabric deployment operation list).")
STATUS_CODES = {Kind.INVALID: "BadRequest", Kind.NOT_FOUND: "NotFound", Kind.EXISTS: "Conflict",
                Kind.ABORTED: "Conflict", Kind.PRECONDITION: "Conflict", Kind.EXHAUSTED: "Conflict",
                Kind.UNAVAILABLE: "ServiceUnavailable"}


def _object(value: Any, target: str) -> dict[str, Any]:
    """A template's object property (absent: empty), or InvalidParameter naming it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(target, "an object")
    return value


class DeploymentState(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ResourceState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"      # a resource it depends on failed


@dataclasses.dataclass(frozen=True, slots=True)
class DeploymentResource(Record):
    """One resource of a deployment, and its deployment operation."""
    key: str
    type: str
    name: str
    id: str
    location: str
    properties: dict[str, Any]       # the template's, evaluated
    depends_on: list[str]            # keys of the resources it waits for
    state: ResourceState = ResourceState.PENDING
    operation_id: str = ""           # the resource provider's operation
    tracking_id: str = ""
    status_code: str = ""            # OK, Conflict, BadRequest ...
    status_message: dict[str, Any] | None = None   # the failure, as ARM shows it
    start: str = ""
    end: str = ""

    @property
    def label(self) -> str:
        return f"{self.type}/{self.name}"


@dataclasses.dataclass(frozen=True, slots=True)
class DeploymentRecord(Record):
    name: str
    resource_group: str
    provisioning_state: DeploymentState
    operation_id: str
    correlation_id: str
    timestamp: str
    template_hash: str
    parameters: dict[str, Any]
    secure: list[str]                # parameters never shown
    resources: list[DeploymentResource]
    end: str = ""
    error: dict[str, Any] | None = None


def _elapsed(start: str, end: str) -> str:
    """ISO 8601 duration, as ARM shows it: PT12.3456S."""
    if not start:
        return ""
    a = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
    b = dt.datetime.fromisoformat(end.replace("Z", "+00:00")) if end else dt.datetime.now(dt.timezone.utc)
    return f"PT{(b - a).total_seconds():.4f}S"


def duration(rec: DeploymentResource | DeploymentRecord) -> str:
    if isinstance(rec, DeploymentRecord):
        return _elapsed(rec.timestamp, rec.end)
    return _elapsed(rec.start, rec.end)


def _secrets_out(r: DeploymentResource) -> DeploymentResource:
    """A resource once its create was made or refused: what goes only to the guest's provisioning media (the
    admin password, the custom data) is not kept in the deployment."""
    profile = r.properties.get("osProfile")
    if not isinstance(profile, dict) or not {"adminPassword", "customData"} & profile.keys():
        return r
    kept = {k: v for k, v in profile.items() if k not in ("adminPassword", "customData")}
    return r.replace(properties={**r.properties, "osProfile": kept})


def _prop(props: dict[str, Any], path: str, where: str, required: bool = True) -> Any:
    value: Any = props
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if required and (value is None or value == ""):
        raise invalid(f"{where}.properties.{path}", "required")
    return value


def _readable(err: dict[str, Any]) -> dict[str, Any]:
    """An error body in the order people read it (records keep keys sorted): code, message, then the rest."""
    out: dict[str, Any] = {k: err[k] for k in ("code", "message") if k in err}
    if err.get("target"):
        out["target"] = err["target"]
    if err.get("details"):
        out["details"] = [_readable(d) for d in err["details"]]
    return out


_SUBNET_ID = re.compile(r"/providers/Microsoft\.Network/virtualNetworks/([^/]+)/subnets/([^/]+)$", re.IGNORECASE)


def _nic_subnet(p: dict[str, Any], where: str) -> tuple[str, str, str]:
    """(vnet, subnet, static address or "") of a NIC's first ipConfiguration."""
    configs = p.get("ipConfigurations")
    target = f"{where}.properties.ipConfigurations[0].properties"
    if not isinstance(configs, list) or not configs or not isinstance(configs[0], dict):
        raise invalid(f"{where}.properties.ipConfigurations", "a list with one IP configuration")
    props = configs[0].get("properties") or {}
    m = _SUBNET_ID.search(str((props.get("subnet") or {}).get("id", "")))
    if not m:
        raise invalid(f"{target}.subnet.id", "a subnet id: [resourceId('Microsoft.Network/virtualNetworks/subnets', "
                                             "VNET, SUBNET)]")
    static = str(props.get("privateIPAddress") or "") if props.get("privateIPAllocationMethod") == "Static" else ""
    return m[1], m[2], static


class DeploymentProvider:
    def __init__(self, compute: ComputeProvider) -> None:
        self.compute = compute
        self.store = compute.store

    def deployment_id(self, rg: str, name: str) -> str:
        return f"/subscriptions/{self.compute.config.subscription}/resourceGroups/{rg}/providers/" \
               f"{DEPLOYMENT_TYPE}/{name}"

    # ----- API -----

    def create(self, rg: str, name: str, template_text: str, parameters: dict[str, Any]) -> OperationRecord:
        if not _NAME.match(name or ""):
            raise invalid("name", "a deployment name is 1-64 letters, digits, '-', '_', '.', '(' or ')'")
        group = self.compute.resource_group(rg)
        template = tpl.load(template_text)
        ctx = tpl.Context(self.compute.config.subscription, group.name, group.location)
        plan = tpl.plan(template, parameters, ctx)
        for i, r in enumerate(plan.resources):
            self._check(r, f"resources[{i}]")
        key = keys.deployment(group.name, name)
        cur = self.store.get(key, DeploymentRecord)
        if cur is not None and cur.value.provisioning_state == DeploymentState.RUNNING:
            raise ArmError("DeploymentActive", f"The deployment '{name}' is still running; wait for it to finish "
                                               f"(fabric deployment show -g {group.name} -n {name}).", "name")
        op = operations.new_operation("deploymentWrite", self.deployment_id(group.name, name))
        rec = DeploymentRecord(
            name=name, resource_group=group.name, provisioning_state=DeploymentState.RUNNING, operation_id=op.id,
            correlation_id=str(uuid.uuid4()), timestamp=now(),
            template_hash=str(int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:15], 16)),
            parameters={k: ("" if k in plan.secure else v) for k, v in plan.parameters.items()},   # never kept
            secure=sorted(plan.secure),
            resources=[DeploymentResource(key=r.key, type=r.type, name=r.name, id=r.id, location=r.location,
                                          properties=r.properties, depends_on=list(r.depends_on))
                       for r in plan.resources])
        step = operations.step(op.id, SOURCE, "accepted",
                               f"deployment {name}: {len(plan.resources)} resources in dependency order: "
                               + ", ".join(f"{r.type.rsplit('/', 1)[1]}/{r.name}" for r in plan.resources))
        compare = Unchanged(key, cur.mod_revision) if cur else Absent(key)
        if not self.store.commit([compare], [Put(key, rec), Put(keys.operation(op.id), op), step]):
            raise ArmError("DeploymentActive", f"The deployment '{name}' changed during the request; try again.",
                           "name")
        return op

    def get(self, rg: str, name: str) -> DeploymentRecord:
        group = self.compute.resource_group(rg)
        found = self.store.get(keys.deployment(group.name, name), DeploymentRecord)
        if found is None:
            raise ArmError("DeploymentNotFound", f"Deployment '{name}' could not be found.", "name")
        return found.value

    def list_in(self, rg: str) -> list[Versioned[DeploymentRecord]]:
        """A group's deployments, by name, from the watch-fed view."""
        group = self.compute.resource_group(rg)
        return informed(self.store, keys.DEPLOYMENTS, DeploymentRecord).under(keys.deployments_in(group.name))

    def _check(self, r: tpl.PlannedResource, where: str) -> None:
        """What each type needs, refused before anything is written."""
        p = r.properties
        if r.type == tpl.VM_TYPE:
            _prop(p, "hardwareProfile.vmSize", where)
            for part in ("publisher", "offer", "sku"):
                _prop(p, f"storageProfile.imageReference.{part}", where)
        elif r.type == tpl.EXTENSION_TYPE:
            for part in ("publisher", "type", "typeHandlerVersion"):
                _prop(p, part, where)
            h = extensions.find_handler(str(p["publisher"]), str(p["type"]))
            extensions.resolve_version(h, str(p["typeHandlerVersion"]), bool(p.get("autoUpgradeMinorVersion")))
        elif r.type == tpl.VNET_TYPE:
            prefixes = _prop(p, "addressSpace.addressPrefixes", where)
            if not isinstance(prefixes, list):
                raise invalid(f"{where}.properties.addressSpace.addressPrefixes", "a list of address prefixes")
        elif r.type == tpl.NIC_TYPE:
            _nic_subnet(p, where)

    # ----- running -----

    def reconcile_all(self) -> None:
        for cur in self.store.list(keys.DEPLOYMENTS, DeploymentRecord):
            if cur.value.provisioning_state == DeploymentState.RUNNING:
                try:
                    self.advance(cur)
                except ArmError as e:
                    log.warning("deployment %s: %s", cur.key, e.message)

    def advance(self, cur: Versioned[DeploymentRecord]) -> None:
        """One step of a running deployment; writes only when something changed (compare-and-swap)."""
        dep = cur.value
        res = list(dep.resources)
        steps: list[Put] = []
        for i, r in enumerate(res):
            if r.state == ResourceState.RUNNING:
                res[i] = self._follow(r, dep, steps)
        for i, r in enumerate(res):
            if r.state != ResourceState.PENDING:
                continue
            state = {x.key: x.state for x in res}       # as of this resource: those before it may have started
            deps = [state[k] for k in r.depends_on]
            if any(s in (ResourceState.FAILED, ResourceState.SKIPPED) for s in deps):
                res[i] = r.replace(state=ResourceState.SKIPPED)
                steps.append(operations.step(dep.operation_id, SOURCE, "skipped",
                                             f"{r.label}: a resource it depends on failed"))
            elif all(s == ResourceState.SUCCEEDED for s in deps):
                r = self._start(r, dep, steps)
                res[i] = self._follow(r, dep, steps) if r.state == ResourceState.RUNNING else r
        if res == dep.resources:
            return
        new = dep.replace(resources=res)
        ops: list[Put] = [Put(cur.key, new), *steps]
        if all(r.state in (ResourceState.SUCCEEDED, ResourceState.FAILED, ResourceState.SKIPPED) for r in res):
            new, finish = self._finish(new)
            ops = [Put(cur.key, new), *steps, *finish]
        self.store.commit([Unchanged(cur.key, cur.mod_revision)], ops)

    def _finish(self, dep: DeploymentRecord) -> tuple[DeploymentRecord, list[Put]]:
        op_v = self.store.get(keys.operation(dep.operation_id), OperationRecord)
        failed = [r for r in dep.resources if r.state == ResourceState.FAILED]
        error = None
        if failed:
            deployment_error = {"code": "DeploymentFailed", "message": FAILED_MESSAGE, "target": "", "details": [
                {"code": r.status_code, "message": json.dumps(r.status_message, indent=2), "target": r.id,
                 "details": []} for r in failed]}
            error = {"code": "ResourceDeploymentFailure", "message": TERMINAL_MESSAGE, "target": "",
                     "details": [deployment_error]}
        done = dep.replace(provisioning_state=DeploymentState.FAILED if failed else DeploymentState.SUCCEEDED,
                           end=now(),
                           error=error["details"][0] if error else None)
        ops = [operations.step(dep.operation_id, SOURCE, "failed" if failed else "completed",
                               f"deployment {dep.name}: {done.provisioning_state}"
                               + (f" ({len(failed)} of {len(dep.resources)} resources failed)" if failed else ""))]
        if op_v is not None and op_v.value.status == OperationStatus.IN_PROGRESS:
            ops.append(Put(op_v.key, operations.finished(op_v.value, error)))
        return done, ops

    def _fail(self, r: DeploymentResource, err: ArmError, dep: DeploymentRecord,
              steps: list[Put]) -> DeploymentResource:
        steps.append(operations.step(dep.operation_id, SOURCE, "resource-failed",
                                     f"{r.label}: {err.code}: {err.message}"))
        return r.replace(state=ResourceState.FAILED, end=now(), status_code=STATUS_CODES.get(err.kind, "BadRequest"),
                         status_message={"error": err.body()})

    def _follow(self, r: DeploymentResource, dep: DeploymentRecord, steps: list[Put]) -> DeploymentResource:
        """A running resource's own operation: done when it ends."""
        op = self.store.get(keys.operation(r.operation_id), OperationRecord)
        if op is None or op.value.status == OperationStatus.IN_PROGRESS:
            return r
        if op.value.status == OperationStatus.SUCCEEDED:
            steps.append(operations.step(dep.operation_id, SOURCE, "resource-succeeded",
                                         f"{r.label}: operation {op.value.id} succeeded"))
            return r.replace(state=ResourceState.SUCCEEDED, end=now(), status_code="OK", status_message=None)
        steps.append(operations.step(dep.operation_id, SOURCE, "resource-failed",
                                     f"{r.label}: operation {op.value.id} failed: "
                                     f"{(op.value.error or {}).get('message', '')}"))
        return r.replace(state=ResourceState.FAILED, end=now(), status_code="Conflict",
                         status_message={"status": "Failed", "error": {"code": "ResourceDeploymentFailure",
                                                                      "message": TERMINAL_MESSAGE,
                                                                      "details": [_readable(op.value.error or {})]}})

    def _start(self, r: DeploymentResource, dep: DeploymentRecord, steps: list[Put]) -> DeploymentResource:
        r = r.replace(start=now(), tracking_id=str(uuid.uuid4()))
        try:
            op_id = self._put(r, dep)
        except ArmError as e:
            return self._fail(_secrets_out(r), e, dep, steps)
        r = _secrets_out(r)
        if op_id:
            steps.append(operations.step(dep.operation_id, SOURCE, "resource-started", f"{r.label}: operation {op_id}"))
            return r.replace(state=ResourceState.RUNNING, operation_id=op_id)
        steps.append(operations.step(dep.operation_id, SOURCE, "resource-succeeded", f"{r.label}: in place"))
        return r.replace(state=ResourceState.SUCCEEDED, end=now(), status_code="OK")

    def _put(self, r: DeploymentResource, dep: DeploymentRecord) -> str:
        """Create or update one resource; its operation id, or "" when it is done already."""
        rg, p, t = dep.resource_group, r.properties, r.type
        if t == tpl.STORAGE_TYPE:
            self.compute.storage.create_account(rg, r.name, r.location)
            return ""
        if t == tpl.VNET_TYPE:
            return self._vnet(rg, r.name, p)
        if t == tpl.NIC_TYPE:
            vnet, subnet, ip = _nic_subnet(p, "")
            try:
                self.compute.network.nic(rg, r.name)
                return ""                              # in place
            except ArmError:
                self.compute.network.create_nic(rg, r.name, vnet, subnet, ip)
                return ""
        if t == tpl.VM_TYPE:
            return self._vm(rg, r, p)
        vm_name, ext_name = r.name.split("/")
        vm = self.compute.get(rg, vm_name).value
        old = extensions.find(vm, ext_name)
        if old is not None and old.settings == (p.get("settings") or {}) \
                and old.protected_settings == (p.get("protectedSettings") or {}) and old.operation_id:
            if operations.running(self.store, old.operation_id):
                return old.operation_id                 # started before a restart: adopt it
        op = extensions.set_extension(self.compute, rg, vm_name, ext_name, str(p["publisher"]), str(p["type"]),
                                      str(p["typeHandlerVersion"]), bool(p.get("autoUpgradeMinorVersion", False)),
                                      p.get("settings"), p.get("protectedSettings"), str(p.get("forceUpdateTag", "")))
        return op.id

    def _vnet(self, rg: str, name: str, p: dict[str, Any]) -> str:
        net = self.compute.network
        prefixes = [str(x) for x in p["addressSpace"]["addressPrefixes"]]
        subnets = [(str(s.get("name", "")), str((s.get("properties") or {}).get("addressPrefix", "")))
                   for s in p.get("subnets") or [] if isinstance(s, dict)]
        try:
            existing = net.vnet(rg, name).value
        except ArmError:
            existing = None
        if existing is None:
            first = subnets[0] if subnets else ("", "")
            net.create_vnet(rg, name, prefixes, *first)
            subnets = subnets[1:]
        elif sorted(existing.address_prefixes) != sorted(prefixes):
            raise ArmError("PropertyChangeNotAllowed", f"Changing the address space of virtual network '{name}' is "
                                                       f"not supported here.", "properties.addressSpace")
        have = {s["name"].lower() for s in net.vnet(rg, name).value.subnets}
        for sname, prefix in subnets:
            if sname.lower() not in have:
                net.add_subnet(rg, name, sname, prefix)
        return ""

    def _vm(self, rg: str, r: DeploymentResource, p: dict[str, Any]) -> str:
        name = r.name
        img = p["storageProfile"]["imageReference"]
        urn = f"{img['publisher']}:{img['offer']}:{img['sku']}:{img.get('version') or 'latest'}"
        size = str(p["hardwareProfile"]["vmSize"])
        found = self.store.get(keys.vm(rg, name), VmRecord)
        if found is not None:
            vm = found.value
            if vm.size.lower() != size.lower():
                raise ArmError("PropertyChangeNotAllowed",
                               f"Changing property 'hardwareProfile.vmSize' of VM '{name}' from {vm.size} to {size} "
                               f"is not allowed by this fabric.", "properties.hardwareProfile.vmSize")
            pub, offer, sku, _ = parse_urn(urn)
            have = vm.image
            if (pub, offer, sku) != (have.publisher, have.offer, have.sku):
                raise ArmError("PropertyChangeNotAllowed", f"Changing property 'storageProfile.imageReference' of "
                                                           f"VM '{name}' is not allowed.",
                               "properties.storageProfile.imageReference")
            # in place; or being made by this deployment before a restart: follow that operation
            return vm.operation_id if operations.running(self.store, vm.operation_id) else ""
        nics = [str(n.get("id", "")).rsplit("/", 1)[-1] for n in
                (p.get("networkProfile") or {}).get("networkInterfaces") or [] if isinstance(n, dict)]
        os_disk = (p.get("storageProfile") or {}).get("osDisk") or {}
        profile = _object(p.get("osProfile"), "properties.osProfile")
        linux = _object(profile.get("linuxConfiguration"), "properties.osProfile.linuxConfiguration")
        ssh = _object(linux.get("ssh"), "properties.osProfile.linuxConfiguration.ssh")
        keys_in = ssh.get("publicKeys") or []
        if not isinstance(keys_in, list) or not all(isinstance(k, dict) for k in keys_in):
            raise invalid("properties.osProfile.linuxConfiguration.ssh.publicKeys", "a list of {path, keyData}")
        ssh_keys = [SshKey(path=str(k.get("path") or ""), key_data=str(k.get("keyData") or "")) for k in keys_in]
        disable = linux.get("disablePasswordAuthentication")
        if disable is not None and not isinstance(disable, bool):
            raise invalid("properties.osProfile.linuxConfiguration.disablePasswordAuthentication", "true or false")
        op = self.compute.create(rg, name, r.location, urn, size,
                                 delete_option=str(os_disk.get("deleteOption") or "Delete"), nic_names=nics,
                                 user_data=str(p.get("userData") or ""),
                                 provision_vm_agent=bool(linux.get("provisionVMAgent", True)),
                                 admin_username=str(profile.get("adminUsername") or ""), ssh_keys=ssh_keys,
                                 computer_name=str(profile.get("computerName") or ""),
                                 admin_password=str(profile.get("adminPassword") or ""),
                                 custom_data=str(profile.get("customData") or ""),
                                 disable_password_authentication=disable)
        return op.id
