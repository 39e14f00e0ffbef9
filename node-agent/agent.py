"""The node agent: the level-based reconcile loop over this node's assignments.

Contract:
  - The agent reaches the control plane only through the node API (`control`), never etcd. The node is
    registered under a lease (`registration`); when the agent dies the lease expires and the node
    disappears from placement. Its VMs keep running while the control plane is away.
  - `reconcile()` takes this node's assignments (the watch's latest), converges their networks
    (`network_converge`) and each VM that something concerning it changed for (`vm_converge`, through the
    compute driver): its assignment, its instance (the driver tells of the hypervisor's events), its console
    showing the boot marker, a retry falling due; every VM every FULL_RESYNC_S. It reads what the guests
    reported (`guest_reports`), writes an Observed record when what it sees changes, and destroys owned
    instances that no assignment names (fencing orphans). It is idempotent: a SIGKILL at any point followed by
    a restart reaches the same end state. An idle pass reads files and memory only: no hypervisor call, no
    control plane call but the network view every few seconds.
  - A VM whose converge fails temporarily is tried again with backoff, each attempt a step of its
    operation; a terminal failure, or a temporary one that lasts (`retries`), is reported in its Observed
    record and fails the operation.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fabric.model import Assignment, NodeRecord, Observed, PowerState, now
from fabric.network import naming
from nodeagent.console import BootRecord, Consoles, MarkerWatch
from nodeagent.control import AssignmentWatch, ControlPlane, ControlPlaneRefused, ControlPlaneUnavailable
from nodeagent.guest_reports import GuestReports
from nodeagent.faults import Fault
from nodeagent.hypervisor import ComputeDriver
from nodeagent.netsvc.iproute import NetError
from nodeagent.netsvc.networks import Networks
from nodeagent.network_converge import NetworkConverger
from nodeagent.registration import NODE_HEARTBEAT_S, Registration
from nodeagent.retries import RETRY_FOR_S, Retries
from nodeagent.tracing import Trace
from nodeagent.images import IMAGE_KEEP_S, ImageCache, digests
from nodeagent.storage_backends import backend
from nodeagent.vm_converge import VmConverger

log = logging.getLogger("nodeagent")

FULL_RESYNC_S = 30.0      # every VM converged at least this often, for drift no event told of
GUEST_REPORT_S = 5.0      # running guests' reports (agent health, extension statuses) read this often
BOOT_POLL_S = 0.1         # booting guests' consoles looked at this often (where they grew)
EXTENSION_POLL_S = 0.5    # wireserver status polling while a guest runs an extension

# a file operation that may succeed later: a full disk or quota, a busy or briefly failing device
TEMPORARY_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EBUSY, errno.EIO, errno.ETIMEDOUT,
                              errno.ENOMEM})


def temporary(exc: Exception) -> bool:
    """Whether trying again later may succeed: as the driver or the storage backend says; a network command
    may, and a file operation when its error says so. Anything else (a bug) is terminal."""
    if isinstance(exc, Fault):
        return exc.temporary
    if isinstance(exc, OSError):
        return exc.errno in TEMPORARY_ERRNOS
    return isinstance(exc, NetError)


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    node: str
    fabric_id: str
    fault_domain: int
    state_dir: Path
    cores: int
    memory_mb: int
    local_disk_mb: int
    diagnostics_url: str = ""
    underlay_ns: str = ""
    underlay_ip: str = ""
    disk_access: str = "path"       # how disk bodies are reached (nodeagent.storage_backends): path or nbd
    image_keep_s: float = IMAGE_KEEP_S   # an image file no VM uses is kept this long after its last use


class NodeAgent:
    """`clock` (monotonic seconds) paces retries and extension waits; `wall` (epoch seconds) dates boots and
    guest reports. Both injected by tests."""

    def __init__(self, plane: ControlPlane, driver: ComputeDriver, config: AgentConfig,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.plane = plane
        self.driver = driver
        self.config = config
        self.clock = clock
        self.consoles = Consoles(config.state_dir)
        self.blob_relay_path = config.state_dir / "blob-relay.sock"
        self.networks = Networks(config.state_dir, naming.node_tag(config.fabric_id, config.node),
                                 config.underlay_ns, config.underlay_ip, str(self.blob_relay_path))
        self.trace = Trace(plane, config.node)
        self.registration = Registration(plane, self.record)
        self.network = NetworkConverger(plane, self.networks, self.trace, config.fault_domain, clock)
        self.gallery_endpoint_url = ""          # the control plane's, once it said (refresh_fabric)
        self.images = ImageCache(config.state_dir / "images", plane.credential, lambda: self.gallery_endpoint_url,
                                 config.image_keep_s)
        self.vms = VmConverger(driver, self.trace, self.consoles, self.networks,
                               config.state_dir / "resource-disks", self.images,
                               backend(config.disk_access, plane.open_disk), wall)
        self.guests = GuestReports(self.networks, self.trace, clock, wall)
        self.retries = Retries(clock)
        self.changed = threading.Event()
        self.watch: AssignmentWatch | None = None
        self.blob_endpoint_url = "http://127.0.0.1:1"     # the control plane's, once it said (refresh_fabric)
        self._assigned: set[str] = set()
        self._last_observed: dict[str, Observed] = {}
        self._traced_errors: dict[str, tuple[str, str]] = {}   # vm id -> (operation, failure) last traced
        self._converged: dict[str, Assignment] = {}    # vm id -> the assignment it was last converged to
        self._seen: dict[str, Assignment] = {}         # vm id -> the assignment the last pass took
        self._due: set[str] = set()                    # vm ids to converge at the next pass
        self._boots: dict[str, BootRecord] = {}        # vm id -> its boot, while it runs
        self._extension_vms: set[str] = set()          # running an extension: their reports are read often
        self.markers = MarkerWatch(self.consoles)
        self._events: set[str] = set()                 # instances the hypervisor told of a change to
        self._events_lock = threading.Lock()
        self._full_at = self._guests_at = self._extensions_at = -FULL_RESYNC_S
        driver.on_change = self.domain_changed

    def record(self) -> NodeRecord:
        c = self.config
        return NodeRecord(name=c.node, fault_domain=c.fault_domain, hypervisor=self.driver.hypervisor,
                          cores=c.cores, memory_mb=c.memory_mb, local_disk_mb=c.local_disk_mb,
                          diagnostics_url=c.diagnostics_url, net_tag=self.networks.tag, underlay_ip=c.underlay_ip,
                          pid=os.getpid(), registered=now())

    def is_mine(self, vm_id: str) -> bool:
        return vm_id in self._assigned

    # ----- reconcile -----

    def reconcile(self) -> float:
        """One pass. A VM is converged when something that concerns it changed: its assignment, its domain (a
        libvirt event), its console showing the boot marker, a retry falling due; and every VM every
        FULL_RESYNC_S, for drift nothing told of. Running guests' reports are read every GUEST_REPORT_S (every
        EXTENSION_POLL_S while one runs an extension). How soon to look again: soon while a guest boots or
        runs an extension, when a retry or the network view is due, else at the next periodic look."""
        latest = self.watch.latest if self.watch is not None else None
        assigned = {a.vm_id: a for a in (latest if latest is not None else self.plane.assignments())}
        now_s = self.clock()
        with self._events_lock:
            events, self._events = self._events, set()
        self._due |= events
        # "" due: the hypervisor connection was lost (and a pass that failed since did not look at everything)
        full = now_s - self._full_at >= FULL_RESYNC_S or "" in self._due
        guests_due = full or now_s - self._guests_at >= GUEST_REPORT_S
        extensions_due = guests_due or now_s - self._extensions_at >= EXTENSION_POLL_S
        moved = {vm_id for vm_id, a in assigned.items() if self._seen.get(vm_id) is not a} | \
            (self._seen.keys() - assigned.keys())
        self._seen = dict(assigned)
        self._assigned = set(assigned)
        self._converged = {k: v for k, v in self._converged.items() if k in assigned}
        self._last_observed = {k: v for k, v in self._last_observed.items() if k in assigned}
        self._boots = {k: v for k, v in self._boots.items() if k in assigned}
        self.markers.keep(self._assigned)
        self.guests.keep(self._assigned)
        self.retries.keep(self._assigned)
        self._traced_errors = {k: v for k, v in self._traced_errors.items() if k in assigned}
        self._extension_vms &= self._assigned
        # what is due stays due until done: a pass that fails half-way (the control plane away) loses nothing
        self._due |= self.markers.found() | self.retries.waiting() | \
            {vm_id for vm_id, a in assigned.items() if self._converged.get(vm_id) is not a}
        self._due &= self._assigned | {""}
        self.network.converge(assigned, changed=bool(moved))
        for vm_id, a in assigned.items():
            if full or vm_id in self._due:
                obs = self._converge(a)
            elif (guests_due or (extensions_due and vm_id in self._extension_vms)) and vm_id in self._boots:
                obs = self._observe_guest(a, self._boots[vm_id])
            else:
                continue
            if obs is not None:
                provisioning = obs.power == PowerState.RUNNING and not obs.booted and vm_id in self._boots
                if provisioning and a.image.boot_marker:
                    self.markers.watch(vm_id, self._boots[vm_id].offset, a.image.boot_marker)
                else:
                    self.markers.discard(vm_id)
                if self.guests.pending(a, obs) or (provisioning and not a.image.boot_marker):
                    self._extension_vms.add(vm_id)
                else:
                    self._extension_vms.discard(vm_id)
                self.guests.trace_new(a, obs, self._last_observed.get(vm_id))
                self._report(obs)
                if vm_id not in self.retries.waiting():
                    self._converged[vm_id] = a      # reported: only a new cause converges it again
            self._due.discard(vm_id)
        if full or moved or events:
            for uuid, inst in self.driver.instances().items():
                if uuid not in assigned:
                    self.vms.fence(uuid, inst.name)
            self.vms.sweep_provisioning_cds({v for v, a in assigned.items() if a.provisioning_media})
            for gone_file in self.images.evict(d for a in assigned.values() if a.on_node for d in digests(a.image)):
                log.info("image file %s evicted: no VM of this node boots from it", gone_file)
        self._due.discard("")
        if full:                            # the periodic looks count from a pass that completed
            self._full_at = now_s
        if guests_due:
            self._guests_at = now_s
        if extensions_due:
            self._extensions_at = now_s
        return self._next_look(now_s)

    def _next_look(self, now_s: float) -> float:
        waits = [self._full_at + FULL_RESYNC_S - now_s, self._guests_at + GUEST_REPORT_S - now_s, self.network.due()]
        if self.markers:
            waits.append(BOOT_POLL_S)
        if self._extension_vms:
            waits.append(self._extensions_at + EXTENSION_POLL_S - now_s)
        retry = self.retries.wait()
        if retry is not None:
            waits.append(retry)
        return max(BOOT_POLL_S, min(waits))

    def domain_changed(self, uuid: str) -> None:
        """The hypervisor told of a change to an instance (any instance when `uuid` is ""): converge it now."""
        with self._events_lock:
            self._events.add(uuid)
        self.changed.set()

    def _converge(self, a: Assignment) -> Observed | None:
        """What to report of one VM; None while a temporary failure waits for its retry."""
        version = (a.power, a.generation, a.disk_generation, a.operation_id)
        if not self.retries.due(a.vm_id, version):
            return None
        try:
            obs, boot = self.vms.converge(a, first_seen=a.vm_id not in self._last_observed)
        except ControlPlaneUnavailable:
            raise                   # the whole pass waits for the control plane
        except Exception as exc:    # noqa: BLE001 - one VM's failure, whatever it is, is that VM's
            if not isinstance(exc, (Fault, NetError, OSError)):
                log.exception("vm %s: converge failed", a.vm_id)
            return self._failed(a, version, exc)
        self.retries.succeeded(a.vm_id)
        self._traced_errors.pop(a.vm_id, None)
        if boot is None:
            self._boots.pop(a.vm_id, None)
            return obs
        self._boots[a.vm_id] = boot
        return self._observe_guest(a, boot, obs)

    def _observe_guest(self, a: Assignment, boot: BootRecord, obs: Observed | None = None) -> Observed | None:
        """A running VM as last converged, with what its guest reported since (agent health, extensions)."""
        base = obs or self._last_observed.get(a.vm_id)
        if base is None:
            return None
        try:
            agent = self.guests.agent(a, boot.started)
            seen = base.replace(agent=agent, extensions=self.guests.extensions(a))
        except Exception:    # noqa: BLE001 - what one guest sent must never stop the pass for the others
            log.exception("vm %s: its guest's reports could not be read", a.vm_id)
            return base
        if a.image.boot_marker or seen.power != PowerState.RUNNING or seen.error:
            return seen
        # an image without a boot marker is provisioned by its guest agent: Ready, or the failure it reports;
        # a later boot of a VM provisioned on this node is up when its agent runs (or at once: it was provisioned)
        if agent.provisioning == "ProvisioningFailed":
            return seen.replace(error={"code": "OSProvisioningClientError", "message": (
                f"OS provisioning failed for VM '{a.name}': the guest agent reported ProvisioningFailed: "
                f"{agent.message or 'no description'}")})
        up = agent.provisioning == "Ready" or agent.status == "Ready" or self.guests.provisioned(a)
        if up and not seen.booted:
            self.trace.step(a.operation_id, "guest-ready",
                            "the guest agent reported Ready to the wireserver: provisioning finished"
                            if agent.provisioning == "Ready" else
                            "the guest was provisioned before; its agent's last report: "
                            f"{agent.status} (heard {agent.time or 'never'})", detail=agent.version)
        return seen.replace(booted=up)

    def _failed(self, a: Assignment, version: tuple[object, ...], exc: Exception) -> Observed | None:
        self.vms.disks.forget(a.vm_id)          # where its disks are is asked again at the retry
        att = self.retries.failed(a.vm_id, version, temporary(exc))
        log.warning("vm %s (%s/%s): %s (attempt %d)", a.vm_id, a.resource_group, a.name, exc, att.count)
        if not att.give_up:
            self.trace.step(a.operation_id, "node-retry",
                            f"{exc}: temporary, attempt {att.count}; trying again in {att.delay:g} s")
            return None
        why = "" if not temporary(exc) else f" (temporary, still failing after {RETRY_FOR_S:g} s of retries)"
        told = (a.operation_id, str(exc))
        if self._traced_errors.get(a.vm_id) != told:
            self._traced_errors[a.vm_id] = told
            self.trace.step(a.operation_id, "node-error",
                            f"{exc}{why}" + (f"; {att.story(self.retries.clock())}" if why else ""))
        return Observed(vm_id=a.vm_id, node=self.config.node, power=PowerState.STOPPED, generation=a.generation,
                        operation_id=a.operation_id,
                        error={"code": "NodeOperationFailed", "message": f"node {self.config.node}: {exc}{why}"})

    def _report(self, obs: Observed) -> None:
        last = self._last_observed.get(obs.vm_id)
        if last is not None and dataclasses.replace(last, time="") == obs:
            return
        try:
            self.plane.report(obs.replace(time=now()))
        except ControlPlaneRefused as exc:        # unassigned since this pass read its assignments
            log.warning("vm %s: %s", obs.vm_id, exc)
            return
        self._last_observed[obs.vm_id] = obs

    # ----- loops -----

    def blob_endpoint(self) -> str:
        """Where guests' blob requests go: the controller's data plane, as the control plane last said."""
        return self.blob_endpoint_url

    def refresh_fabric(self) -> str:
        """The fabric's id (what this node's instances, bridges and namespaces are named by), and where the
        blob data plane is now."""
        info = self.plane.fabric()
        self.blob_endpoint_url = info.blob_endpoint or self.blob_endpoint_url
        self.gallery_endpoint_url = info.gallery_endpoint or self.gallery_endpoint_url
        return info.fabric_id

    def run(self, stop: threading.Event) -> None:
        """Heartbeat in a thread; reconcile on every change to our assignments and on a timer."""
        def beat() -> None:
            while not stop.wait(NODE_HEARTBEAT_S):
                try:
                    self.registration.heartbeat()
                    self.refresh_fabric()
                except (ControlPlaneUnavailable, ControlPlaneRefused) as exc:
                    log.warning("heartbeat: %s", exc)
        threading.Thread(target=beat, daemon=True).start()
        while not stop.is_set():
            wait = GUEST_REPORT_S
            try:
                if self.watch is None or self.watch.dead():
                    if self.watch is not None:
                        self.watch.cancel()
                    self.watch = self.plane.watch_assignments(self.changed.set)
                wait = self.reconcile()
            except ControlPlaneUnavailable as exc:
                log.warning("reconcile: %s", exc)
            except Exception:  # noqa: BLE001 - the loop must outlive one bad pass
                log.exception("reconcile failed")
            self.changed.wait(wait)
            self.changed.clear()
        if self.watch is not None:
            self.watch.cancel()

    def power_off_all(self) -> None:
        """Destroy every instance this node owns (disks and assignments stay)."""
        for uuid in self.driver.instances():
            self.driver.destroy(uuid)
        self.networks.teardown()
