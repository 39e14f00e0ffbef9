"""The node agent: heartbeat registration and the level-based reconcile loop.

Contract:
  - The node record lives under an etcd lease renewed every NODE_HEARTBEAT_S;
    when the agent dies the lease expires and the node disappears from placement.
  - `reconcile()` re-reads this node's assignments and libvirt, converges each
    VM (overlay, resource disk, define, start/stop/destroy/undefine), writes an
    Observed record when what it sees changes, and destroys + undefines owned
    domains that no assignment names (fencing orphans). It is idempotent: a
    SIGKILL at any point followed by a restart reaches the same end state.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from fabric.core.constants import AGENT_GRACE_S
from fabric.model import Assignment, BlobService, NodeRecord, Observed, PowerState, now
from fabric.storage.model import StorageAccountRecord
from fabric.network import naming
from fabric.network.model import NicRecord
from fabric.operations import record_step, running
from fabric.store import Store, StoreUnavailable, keys
from nodeagent import resource_disks
from nodeagent.console import BootRecord, Consoles
from nodeagent.hypervisor import DomainSpec, Host, HypervisorError, domain_xml
from nodeagent.hypervisor.domain_xml import data_disk_xml
from nodeagent.netsvc.dnsmasq import Reservation
from nodeagent.netsvc.iproute import NetError
from nodeagent.netsvc.networks import NetSpec, Networks
from nodeagent.netsvc.portsec import Port
from nodeagent.storage_backends import BackendError, DiskSource, backend_for

log = logging.getLogger("nodeagent")

NODE_LEASE_TTL_S = 10
NODE_HEARTBEAT_S = 3.0
RESYNC_S = 5.0            # full reconcile at least this often
BOOT_POLL_S = 0.1         # console polling while a guest is booting
EXTENSION_POLL_S = 0.5    # wireserver status polling while a guest runs an extension
AGENT_STALE_S = 60.0      # a guest agent heard from longer ago than this is Not Ready (it reports every 15 s)
STATUS_TEXT_MAX = 4096    # what an Observed record keeps of any text a guest sent


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _text(v: Any) -> str:
    return (v if isinstance(v, str) else "" if v is None else json.dumps(v))[-STATUS_TEXT_MAX:]


def agent_status(reports: list[dict[str, Any]], boot_started: float, now_s: float) -> dict[str, str]:
    """Ready when the guest agent reported Ready to the wireserver during this boot and within AGENT_STALE_S;
    Not Ready otherwise, with when it was last heard from."""
    if not reports:
        return {"status": "Not Ready", "version": "", "time": ""}
    last = max(reports, key=lambda h: float(h["time"]))
    report = str(last.get("report", ""))
    version = re.search(r"<AgentVersion>([^<]*)</AgentVersion>", report)
    state = re.search(r"<State>([^<]*)</State>", report)
    disk = re.search(r"<ResourceDisk>(formatted|kept)</ResourceDisk>", report)
    heard = float(last["time"])
    this_boot = heard >= boot_started
    ready = this_boot and now_s - heard <= AGENT_STALE_S and state is not None and state[1] == "Ready"
    return {"status": "Ready" if ready else "Not Ready", "version": version[1][:40] if version else "",
            "time": _utc(heard), "resourceDisk": disk[1] if disk and this_boot else ""}


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def extension_status(posted: dict[str, Any]) -> dict[str, Any]:
    """A guest's posted extension status (the handler's status file, wrapped by the guest agent) in the Observed
    shape. The guest is not trusted: anything missing or malformed becomes empty, texts are capped."""
    raw = _obj(posted.get("status"))
    files = _list(raw.get("status"))
    top = _obj(_obj(files[0]).get("status")) if files else {}

    def message(d: dict[str, Any]) -> str:
        fm = d.get("formattedMessage")
        return _text(fm.get("message") if isinstance(fm, dict) else "")

    subs = _list(top.get("substatus"))
    code = top.get("code")
    return {"seq": raw.get("seqNo") if isinstance(raw.get("seqNo"), int) else -1,
            "handler": _text(raw.get("handler"))[:200], "version": _text(raw.get("version"))[:20],
            "status": top.get("status") if top.get("status") in ("transitioning", "success", "error") else "error",
            "code": code if isinstance(code, int) else None, "message": message(top),
            "substatuses": [{"name": _text(x.get("name"))[:100], "status": _text(x.get("status"))[:20],
                             "message": message(x)} for x in subs[:8] if isinstance(x, dict)],
            "operation": _text(top.get("operation"))[:40],
            "time": _utc(float(posted.get("time", 0))), "log": _text(raw.get("handlerLog"))}


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    node: str
    fault_domain: int
    state_dir: Path
    cores: int
    memory_mb: int
    local_disk_mb: int
    diagnostics_url: str = ""
    underlay_ns: str = ""
    underlay_ip: str = ""


class NodeAgent:
    def __init__(self, store: Store, host: Host, config: AgentConfig, domain_type: str) -> None:
        self.store = store
        self.host = host
        self.config = config
        self.domain_type = domain_type
        self.consoles = Consoles(config.state_dir)
        self.blob_relay_path = config.state_dir / "blob-relay.sock"
        self.networks = Networks(config.state_dir, naming.node_tag(host.fabric_id, config.node),
                                 config.underlay_ns, config.underlay_ip, str(self.blob_relay_path))
        self.resource_dir = config.state_dir / "resource-disks"
        self.lease_id: int | None = None
        self.changed = threading.Event()
        self._assigned: set[str] = set()
        self._last_observed: dict[str, Observed] = {}
        self._pending_since: dict[tuple[str, str, int], float] = {}   # extensions the guest has not finished

    # ----- registration -----

    def record(self) -> NodeRecord:
        c = self.config
        return NodeRecord(name=c.node, fault_domain=c.fault_domain, hypervisor=self.domain_type, cores=c.cores,
                          memory_mb=c.memory_mb, local_disk_mb=c.local_disk_mb, diagnostics_url=c.diagnostics_url,
                          net_tag=self.networks.tag, underlay_ip=c.underlay_ip, pid=os.getpid(), registered=now())

    def register(self) -> None:
        self.lease_id = self.store.grant_lease(NODE_LEASE_TTL_S)
        self.store.put(keys.node(self.config.node), self.record(), lease=self.lease_id)
        log.info("node %s registered (lease %x, ttl %d s, domain type %s)", self.config.node, self.lease_id,
                 NODE_LEASE_TTL_S, self.domain_type)

    def heartbeat(self) -> None:
        """Renew the lease; register again if it has expired (e.g. etcd was down too long)."""
        if self.lease_id is None or self.store.refresh_lease(self.lease_id) <= 0:
            self.register()

    def deregister(self) -> None:
        if self.lease_id is not None:
            self.store.revoke_lease(self.lease_id)
            self.lease_id = None

    # ----- reconcile -----

    def is_mine(self, vm_id: str) -> bool:
        return vm_id in self._assigned

    def reconcile(self) -> float:
        """One pass. How soon to look again: soon while a guest boots or runs an extension, else RESYNC_S."""
        assigned = {a.value.vm_id: a.value for a in
                    self.store.list(keys.assignments_of(self.config.node), Assignment)}
        self._assigned = set(assigned)
        self._last_observed = {k: v for k, v in self._last_observed.items() if k in assigned}
        self._pending_since = {k: v for k, v in self._pending_since.items() if k[0] in assigned}
        self._converge_networks(assigned)
        booting, running_extension = False, False
        for vm_id, a in assigned.items():
            try:
                obs = self._converge(a)
            except (HypervisorError, BackendError, NetError, OSError) as exc:
                log.warning("vm %s (%s/%s): %s", vm_id, a.resource_group, a.name, exc)
                obs = Observed(vm_id=vm_id, node=self.config.node, power=PowerState.STOPPED,
                               generation=a.generation, operation_id=a.operation_id,
                               error={"code": "NodeOperationFailed", "message": f"node {self.config.node}: {exc}"})
                if self._last_observed.get(vm_id, None) is None or self._last_observed[vm_id].error != obs.error:
                    record_step(self.store, a.operation_id, self.config.node, "node-error", str(exc))
            booting = booting or (obs.power == PowerState.RUNNING and not obs.booted)
            running_extension = self._extension_pending(a, obs) or running_extension
            self._trace_extensions(a, obs)
            self._report(obs)
        for uuid, dom in self.host.owned().items():
            if uuid not in assigned:
                self.fence(uuid, dom.name)
        return BOOT_POLL_S if booting else EXTENSION_POLL_S if running_extension else RESYNC_S

    def _converge_networks(self, assigned: dict[str, Assignment]) -> None:
        """Each network with a VM placed here gets its bridge, service namespace and dnsmasq; others go."""
        self._secure_ports(assigned)
        local = [a for a in assigned.values() if a.power not in (PowerState.DELETED, PowerState.DEALLOCATED)]
        vnis = {n["vni"]: n for a in local for n in a.nics}
        if not vnis:
            self.networks.converge({})
            return
        attached = [n for n in (v.value for v in self.store.list(keys.NICS, NicRecord)) if n.vm_id]
        peers = self._peers(set(vnis))
        blob = self.store.get(keys.BLOB_SERVICE, BlobService)
        accounts = sorted(a.key.rsplit("/", 1)[1] for a in self.store.list(keys.STORAGE_ACCOUNTS, StorageAccountRecord))
        blob_names = tuple(naming.blob_host(a, blob.value.domain) for a in accounts) if blob else ()
        specs = {}
        for vni, n in vnis.items():
            dhcp = tuple(Reservation(x["mac"], x["ip"], a.name) for a in local for x in a.nics if x["vni"] == vni)
            dns = tuple(Reservation(x.mac, x.private_ip, x.vm_name) for x in attached if x.vnet == n["vnet"])
            docs = {x["ip"]: self._metadata(a, x) for a in local for x in a.nics if x["vni"] == vni}
            specs[vni] = NetSpec(vni=vni, prefix=n["prefix"], gateway=n["gateway"], domain=n["dnsSuffix"],
                                 dhcp_hosts=dhcp, dns_hosts=dns, metadata=docs,
                                 peers=frozenset(peers.get(vni, set())), blob_names=blob_names,
                                 blob_stamp=blob.value.stamp_host if blob else "")
        for vni, events in self.networks.converge(specs).items():
            for a in local:
                if any(x["vni"] == vni for x in a.nics):
                    for event in events:
                        record_step(self.store, a.operation_id, self.config.node, "network", event)

    def _secure_ports(self, assigned: dict[str, Assignment]) -> None:
        """Port security on every NIC of the VMs assigned here, before any of them starts; a port goes with its
        assignment (after its domain). Each change is a step of its VM's operation."""
        nics = {self.networks.tap(n["mac"]): (a, n) for a in assigned.values() for n in a.nics}
        for tap, events in self.networks.secure([Port(t, n["mac"], n["ip"]) for t, (_, n) in nics.items()]).items():
            for event in events:
                if tap in nics:
                    record_step(self.store, nics[tap][0].operation_id, self.config.node, "port-security", event)
                else:
                    log.warning("%s", event)

    def _peers(self, vnis: set[int]) -> dict[int, set[str]]:
        """vni -> underlay addresses of the other nodes running VMs of that network."""
        underlay = {n.value.name: n.value.underlay_ip for n in self.store.list(keys.NODES, NodeRecord)}
        out: dict[int, set[str]] = {}
        for a in (v.value for v in self.store.list(keys.ASSIGNMENTS, Assignment)):
            ip = underlay.get(a.node, "")
            if a.node == self.config.node or not ip or a.power in (PowerState.DELETED, PowerState.DEALLOCATED):
                continue
            for n in a.nics:
                if n["vni"] in vnis:
                    out.setdefault(n["vni"], set()).add(ip)
        return out

    def _metadata(self, a: Assignment, nic: dict[str, Any]) -> dict[str, Any]:
        """What IMDS and the wireserver answer this VM: its compute section (plus this node's fault domain),
        its network section, and the goal state's incarnation (changes with restarts and disk changes)."""
        net = ipaddress.IPv4Network(nic["prefix"])
        return {"incarnation": 1 + a.generation + a.disk_generation + a.extension_generation,
                "extensions": a.extensions,
                "compute": {**a.instance_metadata, "platformFaultDomain": str(self.config.fault_domain)},
                "network": {"interface": [{
                    "macAddress": nic["mac"].replace(":", "").upper(),
                    "ipv4": {"ipAddress": [{"privateIpAddress": nic["ip"], "publicIpAddress": ""}],
                             "subnet": [{"address": str(net.network_address), "prefix": str(net.prefixlen)}]},
                    "ipv6": {"ipAddress": []}}]}}

    def fence(self, vm_id: str, domain: str) -> None:
        """A domain of ours that no assignment names (e.g. deleted while this node was down):
        destroy and undefine it, and drop its node-local files (resource disk, console, boot record)."""
        log.warning("fencing domain %s (%s): no assignment names it", domain, vm_id)
        self.host.undefine(vm_id)
        resource_disks.remove(self.resource_dir / f"{vm_id}.raw")
        self.consoles.forget(vm_id)

    def _report(self, obs: Observed) -> None:
        last = self._last_observed.get(obs.vm_id)
        if last is not None and dataclasses.replace(last, time="") == obs:
            return
        stamped = obs.replace(time=now())
        self.store.put(keys.observed(self.config.node, obs.vm_id), stamped)
        self._last_observed[obs.vm_id] = obs

    def _resource_disk(self, a: Assignment) -> Path:
        return self.resource_dir / f"{a.vm_id}.raw"

    def _converge(self, a: Assignment) -> Observed:
        node = self.config.node
        resource_disk = self._resource_disk(a)
        base = Observed(vm_id=a.vm_id, node=node, power=a.power, generation=a.generation,
                        operation_id=a.operation_id, disk_generation=a.disk_generation,
                        domain=self._domain_name(a), hypervisor=self.domain_type,
                        console=str(self.consoles.log_path(a.vm_id)))
        if a.power in (PowerState.DELETED, PowerState.DEALLOCATED):
            if self.host.xml(a.vm_id):
                self.host.undefine(a.vm_id)
                record_step(self.store, a.operation_id, node, "domain-undefined", f"domain {base.domain} removed")
            if resource_disks.remove(resource_disk):
                record_step(self.store, a.operation_id, node, "resource-disk-removed",
                            f"temporary disk {resource_disk} wiped")
            if a.power == PowerState.DELETED:
                self.consoles.forget(a.vm_id)
            return base
        holder = self.host.holder(a.vm_id)
        if holder:
            if self._last_observed.get(a.vm_id) is None:
                record_step(self.store, a.operation_id, node, "waiting",
                            f"domain {a.vm_id} is still defined by {holder} on this libvirtd; waiting for it to "
                            f"be released")
            return base.replace(power=PowerState.STOPPED)
        self._ensure_defined(a, resource_disk)
        self._converge_data_disks(a)
        if a.power == PowerState.STOPPED:
            if self._active(a.vm_id):
                self.host.destroy(a.vm_id)
                record_step(self.store, a.operation_id, node, "domain-stopped", f"domain {base.domain} powered off")
            return base
        return self._ensure_running(a, base)

    def _domain_name(self, a: Assignment) -> str:
        return f"fl-{a.name}-{a.vm_id[:8]}"

    def _active(self, vm_id: str) -> bool:
        dom = self.host.owned().get(vm_id)
        return bool(dom and dom.active)

    def _ensure_defined(self, a: Assignment, resource_disk: Path) -> None:
        node, img = self.config.node, a.image
        backend = backend_for(a.os_disk)
        backend.check(a.os_disk)
        if resource_disks.ensure_resource_disk(resource_disk, a.resource_disk_mb):
            record_step(self.store, a.operation_id, node, "resource-disk-created",
                        f"temporary disk {resource_disk} ({a.resource_disk_mb} MB, sparse, node-local)")
        defined = self.host.xml(a.vm_id, persistent=True)
        taps = [self.networks.tap(n["mac"]) for n in a.nics]
        if defined and all(f"dev='{tap}'" in defined for tap in taps):
            return
        spec = DomainSpec(name=self._domain_name(a), uuid=a.vm_id, node=node, fabric_id=self.host.fabric_id,
                          resource_group=a.resource_group,
                          vm_name=a.name, domain_type=self.domain_type, cores=a.cores, memory_mb=a.memory_mb,
                          kernel=img["kernel"], initrd=img["initrd"],
                          cmdline=f"{img['cmdline']} fabric.hostname={a.name}" + ("" if a.vm_agent else
                                                                                  " fabric.vmagent=0"), os_disk=backend.source(a.os_disk),
                          resource_disk=str(resource_disk), console_log=str(self.consoles.log_path(a.vm_id)),
                          data_disks=tuple((lun, src) for lun, (src, _) in self._data_disks(a).items()),
                          nics=tuple((n["mac"], self.networks.bridge(n["vni"]), tap) for n, tap in zip(a.nics, taps)))
        xml = domain_xml(spec)
        self.host.define(xml)
        if defined:     # defined before its taps had names: port security filters them from its next start
            log.warning("domain %s redefined with named taps %s; until it restarts its NICs carry nothing",
                        spec.name, ", ".join(taps))
            record_step(self.store, a.operation_id, node, "domain-redefined",
                        f"libvirt domain {spec.name} redefined so that its taps are {', '.join(taps)} (port "
                        f"security); until its next start they carry nothing", detail=xml)
            return
        record_step(self.store, a.operation_id, node, "domain-defined",
                    f"libvirt domain {spec.name} (type {self.domain_type})", detail=xml)

    def _data_disks(self, a: Assignment) -> dict[int, tuple[DiskSource, str]]:
        """LUN -> (source, blob URL) of the assignment's data disks; each must be reachable."""
        out = {}
        for d in a.data_disks:
            backend = backend_for(d["ref"])
            backend.check(d["ref"])
            out[d["lun"]] = (backend.source(d["ref"]), d["ref"].get("uri", ""))
        return out

    def _converge_data_disks(self, a: Assignment) -> None:
        """Hot-plug or unplug SCSI LUNs until the domain has exactly the assignment's data disks."""
        want = self._data_disks(a)
        have = self.host.scsi_luns(a.vm_id)
        for lun, (xml, source) in have.items():
            if lun not in want or want[lun][0].identity != source:
                self.host.detach_device(a.vm_id, xml)
                record_step(self.store, a.operation_id, self.config.node, "data-disk-detached",
                            f"LUN {lun} ({source}) unplugged")
        for lun, (src, uri) in want.items():
            if lun not in have or have[lun][1] != src.identity:
                self.host.attach_device(a.vm_id, data_disk_xml(lun, src))
                record_step(self.store, a.operation_id, self.config.node, "data-disk-attached",
                            f"{uri} plugged in as LUN {lun} (/dev/sd{chr(ord('a') + lun)} in the guest)")

    def _ensure_running(self, a: Assignment, base: Observed) -> Observed:
        node = self.config.node
        boot = self.consoles.boot(a.vm_id)
        active = self._active(a.vm_id)
        if boot is None and active:
            boot = BootRecord(a.generation, 0)      # state folder lost: scan the whole log
        if not active or boot is None or boot.generation < a.generation:
            if active:
                self.host.destroy(a.vm_id)
                record_step(self.store, a.operation_id, node, "domain-reset", f"domain {base.domain} restarting")
            boot = BootRecord(a.generation, self.consoles.size(a.vm_id), started=time.time())
            self.consoles.save_boot(a.vm_id, boot)
            self.host.start(a.vm_id)
            record_step(self.store, a.operation_id, node, "domain-started",
                        f"domain {base.domain} started; waiting for '{a.image['boot_marker']}' on the serial console",
                        detail=f"console log {self.consoles.log_path(a.vm_id)} from byte {boot.offset}")
        if not boot.booted:
            line = self.consoles.find_marker(a.vm_id, boot.offset, a.image["boot_marker"])
            if line is not None:
                boot = dataclasses.replace(boot, booted=True)
                self.consoles.save_boot(a.vm_id, boot)
                record_step(self.store, a.operation_id, node, "guest-ready", "guest reached user space",
                            detail=line)
        return base.replace(generation=boot.generation, booted=boot.booted, agent=self._agent_status(a, boot),
                            extensions=self._extension_statuses(a))

    def _extension_pending(self, a: Assignment, obs: Observed) -> bool:
        """An extension of a running VM without a final status for its sequence number, for at most its timeout
        and a grace (a guest that never reports is not polled for ever)."""
        now_s = time.monotonic()
        pending = False
        for e in a.extensions:
            st = obs.extensions.get(e["name"]) or {}
            key = (a.vm_id, e["name"], e["seq"])
            if obs.power != PowerState.RUNNING or (st.get("seq") == e["seq"] and st.get("status") != "transitioning"):
                self._pending_since.pop(key, None)
                continue
            since = self._pending_since.setdefault(key, now_s)
            pending = pending or now_s - since < float(e["timeoutSeconds"]) + AGENT_GRACE_S
        return pending

    def _trace_extensions(self, a: Assignment, obs: Observed) -> None:
        """Each new status a guest posted for an extension, as a step of that extension's operation."""
        last = self._last_observed.get(a.vm_id)
        before = last.extensions if last else {}
        for e in a.extensions:
            st = obs.extensions.get(e["name"])
            if not st or st.get("seq") != e["seq"]:
                continue
            old = before.get(e["name"]) or {}
            if (old.get("seq"), old.get("status"), old.get("time")) == (st["seq"], st["status"], st["time"]):
                continue
            if running(self.store, e.get("operationId", "")):   # not again after a restart
                record_step(self.store, e.get("operationId", ""), self.config.node, "guest-status",
                            f"the guest agent posted {e['name']} sequence {st['seq']} ({st['handler']} "
                            f"{st['version']}) to the wireserver: {st['status']}: {st['message']}",
                            detail=st.get("log", ""))

    def _extension_statuses(self, a: Assignment) -> dict[str, dict[str, Any]]:
        """The guest agent's last status for each extension of the assignment."""
        wanted = {e["name"] for e in a.extensions}
        out: dict[str, dict[str, Any]] = {}
        for n in a.nics:
            for name, posted in self.networks.extension_statuses(n["vni"], n["ip"]).items():
                if name in wanted:
                    out[name] = extension_status(posted)
        return out

    def _agent_status(self, a: Assignment, boot: BootRecord) -> dict[str, str]:
        reports = [h for n in a.nics if (h := self.networks.health(n["vni"], n["ip"])) is not None]
        return agent_status(reports, boot.started, time.time())

    # ----- loops -----

    def blob_endpoint(self) -> str:
        """Where guests' blob requests go: the controller's data plane, as it registered it."""
        found = self.store.get(keys.BLOB_SERVICE, BlobService)
        return found.value.endpoint if found else "http://127.0.0.1:1"

    def run(self, stop: threading.Event) -> None:
        """Heartbeat in a thread; reconcile on every change under our assignments and on a timer."""
        def beat() -> None:
            while not stop.wait(NODE_HEARTBEAT_S):
                try:
                    self.heartbeat()
                except StoreUnavailable as exc:
                    log.warning("heartbeat: %s", exc)
        threading.Thread(target=beat, daemon=True).start()
        watch = None
        while not stop.is_set():
            wait = RESYNC_S
            try:
                if watch is None or watch.broken:
                    watch = self.store.watch_prefix(keys.assignments_of(self.config.node), self.changed.set)
                wait = self.reconcile()
            except StoreUnavailable as exc:
                log.warning("reconcile: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("reconcile failed")
            self.changed.wait(wait)
            self.changed.clear()
        if watch is not None:
            watch.cancel()

    def power_off_all(self) -> None:
        """Destroy and undefine every domain this node owns (disks and assignments stay)."""
        for uuid in self.host.owned():
            self.host.undefine(uuid)
        self.networks.teardown()
