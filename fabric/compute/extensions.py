"""VM extensions: child resources Microsoft.Compute/virtualMachines/extensions, run by the guest agent.

Contract:
  - `set_extension` and `delete_extension` either raise ArmError having written
    nothing, or commit one transaction: the VM record (its `extensions` list and
    a new extension generation), the node assignment (what the guest agent gets
    from the wireserver, as a new goal state incarnation) and the operation.
  - The guest agent runs each extension whose sequence number it has not run,
    and reports a status per extension; the node agent copies it into its
    Observed record, and `reconcile_extensions` ends the operation: Succeeded
    on `success`, Failed with VMExtensionProvisioningError (the handler's own
    message) on `error`, VMAgentStatusCommunicationError when no status came in
    time. The VM's provisioning state is never touched by an extension.
  - protectedSettings are kept in the VM record and the assignment only; no API
    answer carries them, and the wireserver gives them to that VM alone.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from fabric import operations
from fabric.core import constants
from fabric.core.errors import ArmError, invalid
from fabric.compute.sizes import find_size
from fabric.model import (AgentHealth, ExtensionStatus, GoalExtension, Observed, OperationRecord, PowerState,
                          ProvisioningState, VmExtension, VmRecord)
from fabric.storage import sas
from fabric.store import Put, Unchanged, Versioned, keys
from fabric.store.client import Compare

if TYPE_CHECKING:
    from fabric.compute.vms import ComputeProvider
    from fabric.storage.provider import StorageProvider

SOURCE = "controller"
EXTENSION_TYPE = "Microsoft.Compute/virtualMachines/extensions"
MAX_SETTINGS_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSION = re.compile(r"^(\d+)\.(\d+)$")


@dataclasses.dataclass(frozen=True)
class Handler:
    """An extension handler the guest image carries, in the versions the catalogue publishes."""
    publisher: str
    type: str
    versions: tuple[str, ...]
    description: str
    check: Callable[[StorageProvider, dict[str, Any], dict[str, Any]], None]
    agent: str                # the guest agent that runs it (GUEST_AGENTS)

    @property
    def name(self) -> str:
        """The handler's folder in the guest: {publisher}.{type}."""
        return f"{self.publisher}.{self.type}"


def _check_custom_script(storage: StorageProvider, settings: dict[str, Any], protected: dict[str, Any]) -> None:
    """CustomScript: `commandToExecute` in the public or the protected settings (not both), `fileUris` a list
    of blob URLs of this fabric that a guest can read (by SAS, or from a public container)."""
    for name, part in (("settings", settings), ("protectedSettings", protected)):
        unknown = sorted(set(part) - {"fileUris", "commandToExecute", "timestamp"})
        if unknown:
            raise invalid(f"{name}.{unknown[0]}", "CustomScript settings are fileUris, commandToExecute and "
                                                  "timestamp")
    if "commandToExecute" in settings and "commandToExecute" in protected:
        raise invalid("protectedSettings.commandToExecute", "commandToExecute is given in both the public and the "
                                                             "protected settings; give it once")
    where, command = ("protectedSettings", protected.get("commandToExecute")) if "commandToExecute" in protected \
        else ("settings", settings.get("commandToExecute"))
    if not isinstance(command, str) or not command.strip():
        raise invalid(f"{where}.commandToExecute", "a non-empty command line is required")
    for name, part in (("settings", settings), ("protectedSettings", protected)):
        uris = part.get("fileUris", [])
        if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
            raise invalid(f"{name}.fileUris", "a list of URLs")
        for i, uri in enumerate(uris):
            check_guest_blob_url(storage, uri, f"{name}.fileUris[{i}]")


def _check_linux_custom_script(storage: StorageProvider, settings: dict[str, Any], protected: dict[str, Any]) -> None:
    """CustomScript 2.x, run by the reference's own Linux agent: its protected settings would reach the guest
    encrypted to the VM's certificate, a document this fabric's wireserver does not offer yet."""
    if protected:
        raise invalid("protectedSettings", "Microsoft.Azure.Extensions.CustomScript takes public settings only in "
                                           "this fabric (protected settings need the VM's certificate, which its "
                                           "wireserver does not offer): put fileUris and commandToExecute in "
                                           "settings")
    _check_custom_script(storage, settings, protected)


# the guest agents a VM's image may run: fabriclab's own (the busybox images: the ones that print a boot
# marker), or the reference's Linux agent (any other image: it reports Ready to the wireserver itself)
FABRICLAB_AGENT, REFERENCE_AGENT = "fabriclab", "WALinuxAgent"
GUEST_AGENTS = {FABRICLAB_AGENT: "fabriclab's busybox guest agent",
                REFERENCE_AGENT: "the reference's Linux guest agent (WALinuxAgent)"}

CATALOGUE: tuple[Handler, ...] = (
    Handler("Microsoft.Compute", "CustomScriptExtension", ("1.7", "1.8"),
            "Downloads fileUris into the handler's folder and runs commandToExecute there (fabriclab's busybox "
            "guest agent).", _check_custom_script, FABRICLAB_AGENT),
    Handler("Microsoft.Azure.Extensions", "CustomScript", ("2.1",),
            "Downloads fileUris and runs commandToExecute with /bin/sh (the reference's Linux guest agent, "
            "WALinuxAgent, from the wireserver's handler repository).", _check_linux_custom_script,
            REFERENCE_AGENT),
)


def guest_agent(vm: VmRecord) -> str:
    """The guest agent the VM's image runs (GUEST_AGENTS)."""
    return FABRICLAB_AGENT if vm.image.boot_marker else REFERENCE_AGENT


def check_agent_runs(handler: Handler, vm: VmRecord) -> None:
    """A handler reaches only the guest agent that runs it; anything else would wait for a status that never
    comes. OperationNotAllowed naming the handler that would run, otherwise."""
    agent = guest_agent(vm)
    if handler.agent == agent:
        return
    fits = [f"{h.publisher}/{h.type} {h.versions[-1]}" for h in CATALOGUE if h.agent == agent]
    raise ArmError("OperationNotAllowed",
                   f"The VM extension handler '{handler.name}' runs under {GUEST_AGENTS[handler.agent]}; VM "
                   f"'{vm.name}' (image {vm.image.publisher}:{vm.image.offer}:{vm.image.sku}) runs "
                   f"{GUEST_AGENTS[agent]}: use {' or '.join(fits)}.", "type")


def find_handler(publisher: str, type_: str) -> Handler:
    for h in CATALOGUE:
        if h.publisher.lower() == publisher.lower() and h.type.lower() == type_.lower():
            return h
    known = ", ".join(f"{h.publisher}/{h.type}" for h in CATALOGUE)
    if not any(h.publisher.lower() == publisher.lower() for h in CATALOGUE):
        raise ArmError("ArtifactNotFound", f"The VM extension publisher '{publisher}' was not found in location "
                                           f"'local'. Known handlers: {known}.", "publisher")
    raise ArmError("ArtifactNotFound", f"The VM extension type '{type_}' of publisher '{publisher}' was not "
                                       f"found. Known handlers: {known}.", "type")


def resolve_version(h: Handler, version: str, auto_upgrade: bool) -> str:
    """The version the guest runs: the one asked for, or with autoUpgradeMinorVersion the highest minor of
    its major."""
    m = _VERSION.match(version or "")
    if not m:
        raise invalid("typeHandlerVersion", "major.minor, e.g. 1.8")
    major = int(m[1])
    same_major = [v for v in h.versions if int(v.split(".")[0]) == major]
    if auto_upgrade and same_major:
        return max(same_major, key=lambda v: tuple(int(x) for x in v.split(".")))
    if version in h.versions:
        return version
    raise ArmError("ArtifactVersionNotFound",
                   f"The version '{version}' of VM extension '{h.publisher}.{h.type}' was not found; published "
                   f"versions: {', '.join(h.versions)}"
                   + ("" if auto_upgrade else " (or set autoUpgradeMinorVersion to take the highest minor)") + ".",
                   "typeHandlerVersion")


def check_guest_blob_url(storage: StorageProvider, uri: str, target: str) -> None:
    """A blob URL a guest of this fabric can read: http://{account}.blob.{domain}/{container}/{blob}, with a
    SAS that is valid now and grants read, or in a container with public read access."""
    domain = storage.config.domain
    u = urlsplit(uri)
    host = (u.hostname or "").lower()
    suffix = f".blob.{domain}"
    if u.scheme not in ("http", "https") or not host.endswith(suffix):
        hint = ""
        parts = u.path.lstrip("/").split("/", 2)
        if uri.startswith(storage.config.endpoint) and len(parts) == 3:
            hint = f"; a guest reaches it as {storage.guest_url(*parts)}" + (f"?{u.query}" if u.query else "")
        raise invalid(target, f"a blob URL of this fabric as guests reach it, "
                              f"http://<account>{suffix}/<container>/<blob>[?SAS]{hint}")
    account = host[: -len(suffix)]
    container, _, blob = u.path.lstrip("/").partition("/")
    if not container or not blob:
        raise invalid(target, "the URL names no container and blob")
    try:
        acct = storage.account(account)
        cont = storage.container(account, container).value
    except ArmError as e:
        raise invalid(target, e.message) from None
    token = sas.parse(parse_qs(u.query))
    if token is None:
        if cont.public_access not in ("blob", "container"):
            raise invalid(target, f"container '{container}' is private and the URL carries no SAS; give a "
                                  f"read SAS (fabric storage blob generate-sas --guest-uri)")
        return
    try:
        sas.verify(token, [acct.key1, acct.key2], account, container, blob, "r",
                   dt.datetime.fromtimestamp(storage.clock(), dt.timezone.utc))
    except sas.SasError as e:
        raise invalid(target, f"the SAS is not valid: {e.message}") from None


def _check_name(name: str) -> None:
    if not _NAME.match(name or "") or name.endswith("."):
        raise invalid("name", "an extension name is 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                              "or digit and not ending with '.'")


def _check_settings(target: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(target, "a JSON object")
    if len(json.dumps(value)) > MAX_SETTINGS_BYTES:
        raise invalid(target, f"at most {MAX_SETTINGS_BYTES // 1024} KiB of JSON")
    return value


def extension_id(p: ComputeProvider, vm: VmRecord, name: str) -> str:
    return f"{p.resource_id(vm)}/extensions/{name}"


def find(vm: VmRecord, name: str) -> VmExtension | None:
    return next((e for e in vm.extensions if e.name.lower() == name.lower()), None)


def get(p: ComputeProvider, rg: str, vm_name: str, name: str) -> tuple[VmRecord, VmExtension]:
    vm = p.get(rg, vm_name).value
    ext = find(vm, name)
    if ext is None:
        raise ArmError("ResourceNotFound", f"The Resource '{EXTENSION_TYPE}/{vm_name}/{name}' under resource group "
                                           f"'{rg}' was not found.", "name")
    return vm, ext


def _ext_in_progress(p: ComputeProvider, vm: VmRecord) -> str:
    for e in vm.extensions:
        if operations.running(p.store, e.operation_id):
            return f"{e.name} ({e.operation_id})"
    return ""


def _running_vm(p: ComputeProvider, rg: str, vm_name: str) -> Versioned[VmRecord]:
    cur = p.get(rg, vm_name)
    vm = cur.value
    if vm.provisioning_state == ProvisioningState.DELETING:
        raise ArmError("OperationNotAllowed", f"VM '{vm_name}' is being deleted.", "vmName")
    p.check_idle(vm)
    busy = _ext_in_progress(p, vm)
    if busy:
        raise ArmError("Conflict", f"An operation on extension {busy} is in progress on VM '{vm_name}'; wait for "
                                   f"it to finish.", "name")
    if not vm.provision_vm_agent:
        raise ArmError("OperationNotAllowed", f"VM '{vm_name}' was created with osProfile.linuxConfiguration."
                                              f"provisionVMAgent false: it has no VM agent to run extensions.",
                       "vmName")
    if vm.power_state != PowerState.RUNNING or not vm.node:
        raise ArmError("OperationNotAllowed", f"Cannot modify extensions in the VM when the VM is not running "
                                              f"(VM '{vm_name}' is {vm.power_state}).", "vmName")
    return cur


def set_extension(p: ComputeProvider, rg: str, vm_name: str, name: str, publisher: str, type_: str,
                  version: str, auto_upgrade: bool, settings: Any, protected: Any,
                  force_update_tag: str = "") -> OperationRecord:
    """Create or update an extension; the guest agent runs it again when anything in it changed."""
    _check_name(name)
    handler = find_handler(publisher, type_)
    exact = resolve_version(handler, version, auto_upgrade)
    settings = _check_settings("settings", settings)
    protected = _check_settings("protectedSettings", protected)
    handler.check(p.storage, settings, protected)
    cur = _running_vm(p, rg, vm_name)
    vm = cur.value
    check_agent_runs(handler, vm)
    old = find(vm, name)
    for e in vm.extensions:
        if e is not old and f"{e.publisher}.{e.type}".lower() == handler.name.lower():
            raise ArmError("OperationNotAllowed",
                           f"Multiple VMExtensions per handler not supported for OS type 'Linux'. VMExtension "
                           f"'{e.name}' with handler '{handler.name}' already added or specified in input.",
                           "name")
    op = operations.new_operation("extensionWrite", extension_id(p, vm, name))
    entry = VmExtension(name=old.name if old else name, publisher=handler.publisher, type=handler.type,
                        type_handler_version=version, handler_version=exact, auto_upgrade_minor_version=auto_upgrade,
                        settings=settings, protected_settings=protected, force_update_tag=force_update_tag,
                        operation_id=op.id)
    # the same handler version and settings as a run that succeeded: nothing for the guest to do; anything
    # else (new settings, or the same after a failure) is a new sequence number, which the guest runs
    same = old is not None and old.provisioning_state == ProvisioningState.SUCCEEDED and (
        (old.handler_version, old.settings, old.protected_settings, old.force_update_tag)
        == (entry.handler_version, entry.settings, entry.protected_settings, entry.force_update_tag))
    if same and old is not None:
        entry = entry.replace(seq=old.seq, provisioning_state=ProvisioningState.SUCCEEDED)
        op = operations.finished(op)
        steps = [operations.step(op.id, SOURCE, "unchanged", f"extension {name}: same handler version and settings "
                                                             f"as sequence {old.seq}; not run again (change "
                                                             f"forceUpdateTag to run it again)")]
    else:
        entry = entry.replace(seq=old.seq + 1 if old else 0,
                              provisioning_state=ProvisioningState.UPDATING if old else ProvisioningState.CREATING)
        steps = [operations.step(op.id, SOURCE, "accepted",
                                 f"extension {name}: handler {handler.name} {exact} (asked {version}, "
                                 f"autoUpgradeMinorVersion {str(auto_upgrade).lower()}), sequence {entry.seq}; "
                                 f"the guest agent picks it up with the next goal state")]
    others = [e for e in vm.extensions if e is not old]
    new_vm = vm.replace(extensions=sorted([*others, entry], key=lambda e: e.name.lower()),
                        extension_generation=vm.extension_generation + (0 if same else 1))
    return _commit(p, cur, new_vm, op, steps)


def delete_extension(p: ComputeProvider, rg: str, vm_name: str, name: str) -> OperationRecord:
    """The extension leaves the goal state; the guest agent forgets it (its log stays in the guest)."""
    cur = p.get(rg, vm_name)
    vm = cur.value
    ext = find(vm, name)
    if ext is None:
        raise ArmError("ResourceNotFound", f"The Resource '{EXTENSION_TYPE}/{vm_name}/{name}' under resource group "
                                           f"'{rg}' was not found.", "name")
    p.check_idle(vm)
    op = operations.finished(operations.new_operation("extensionDelete", extension_id(p, vm, ext.name)))
    new_vm = vm.replace(extensions=[e for e in vm.extensions if e is not ext],
                        extension_generation=vm.extension_generation + 1)
    steps = [operations.step(op.id, SOURCE, "deleted", f"extension {ext.name} removed from the goal state")]
    return _commit(p, cur, new_vm, op, steps)


def _commit(p: ComputeProvider, cur: Versioned[VmRecord], new_vm: VmRecord, op: OperationRecord,
            steps: list[Put]) -> OperationRecord:
    vm = cur.value
    ops: list[Put] = [Put(cur.key, new_vm), Put(keys.operation(op.id), op), *steps]
    if vm.node:
        size = find_size(vm.location, vm.size)
        a = p.assignment(new_vm, size, op.id, vm.power_state if vm.power_state in (
            PowerState.RUNNING, PowerState.STOPPED) else PowerState.RUNNING)
        ops.append(Put(keys.assignment(vm.node, vm.vm_id), a))
    if not p.store.commit([Unchanged(cur.key, cur.mod_revision)], ops):
        raise ArmError("Conflict", f"VM '{vm.name}' changed during the request; try again.", "vmName")
    return op


def goal(vm: VmRecord, timeout_s: int) -> list[GoalExtension]:
    """The extensions of a VM as the guest agent gets them (the assignment's `extensions`)."""
    return [GoalExtension(name=e.name, handler=f"{e.publisher}.{e.type}", version=e.handler_version, seq=e.seq,
                          settings=e.settings, protected_settings=e.protected_settings, timeout_seconds=timeout_s,
                          operation_id=e.operation_id) for e in vm.extensions]


def preempt(p: ComputeProvider, vm: VmRecord, by: OperationRecord) -> tuple[list[VmExtension], list[Put]]:
    """Extension operations a power-off, deallocation or deletion cuts short: they end Failed with
    OperationPreempted (the guest stops before it can report). The VM's new extension list, and the puts."""
    exts, puts = [], []
    for e in vm.extensions:
        op_v = operations.running(p.store, e.operation_id)
        if op_v is not None:
            err = ArmError("OperationPreempted", f"Extension '{e.name}' was not run to its end: operation "
                                                 f"{by.name} ({by.id}) stopped the VM first.").body()
            puts += [Put(op_v.key, operations.finished(op_v.value, err)),
                     operations.step(op_v.value.id, SOURCE, "preempted", err["message"])]
            e = e.replace(provisioning_state=ProvisioningState.FAILED, error=err)
        exts.append(e)
    return exts, puts


# ----- status: guest -> node -> here -----

def failure_message(name: str, status: ExtensionStatus) -> str:
    return (f"VM has reported a failure when processing extension '{name}'. Error message: "
            f"\"{status.message}\".")


def reconcile_extensions(p: ComputeProvider, cur: Versioned[VmRecord], obs: Observed | None,
                         timeout_s: int, elapsed_s: Callable[[str], float], seen: Sequence[Compare] = ()) -> None:
    """End each extension operation in progress whose sequence the guest has reported on (or that waited
    too long). One transaction for the VM; nothing when it changed meanwhile."""
    vm = cur.value
    new_exts: list[VmExtension] = []
    ops: list[Put] = []
    for e in vm.extensions:
        op_v = operations.running(p.store, e.operation_id)
        if op_v is None:
            new_exts.append(e)
            continue
        op = op_v.value
        st = obs.extensions.get(e.name) if obs else None
        done = st is not None and st.seq == e.seq and st.final
        if st is not None and done and st.status == "success":
            e = e.replace(provisioning_state=ProvisioningState.SUCCEEDED, error=None)
            ops += [Put(op_v.key, operations.finished(op)),
                    operations.step(op.id, SOURCE, "completed", f"the guest agent reports extension {e.name} "
                                                                f"sequence {e.seq}: {st.message}")]
        elif st is not None and done:
            err = ArmError("VMExtensionProvisioningError", failure_message(e.name, st)).body()
            e = e.replace(provisioning_state=ProvisioningState.FAILED, error=err)
            ops += [Put(op_v.key, operations.finished(op, err)),
                    operations.step(op.id, SOURCE, "failed", err["message"])]
        elif elapsed_s(op.start_time) > timeout_s + constants.AGENT_GRACE_S:
            agent = (obs.agent if obs else None) or AgentHealth()
            err = ArmError("VMAgentStatusCommunicationError",
                           f"VM '{vm.name}' has not reported status for VM agent or extensions within "
                           f"{timeout_s + constants.AGENT_GRACE_S} s (the VM agent is {agent.status}"
                           + (f", last heard {agent.time}" if agent.time else "")
                           + "). Verify that the VM has a running VM agent and can reach its wireserver.").body()
            e = e.replace(provisioning_state=ProvisioningState.FAILED, error=err)
            ops += [Put(op_v.key, operations.finished(op, err)),
                    operations.step(op.id, SOURCE, "timed-out", err["message"])]
        new_exts.append(e)
    if ops:       # `seen`: the observation decided on is still the store's
        p.store.commit([Unchanged(cur.key, cur.mod_revision), *seen],
                       [Put(cur.key, vm.replace(extensions=new_exts)), *ops])

