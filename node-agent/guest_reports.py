"""What guests reported to the wireserver: the guest agent's health and each extension's status, in the
Observed shape, and their new statuses as steps of the extensions' operations.

The guest is not trusted: anything missing or malformed becomes empty, texts are capped.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from fabric.core.constants import AGENT_GRACE_S
from fabric.model import AgentHealth, Assignment, ExtensionStatus, Observed, PowerState, SubStatus
from nodeagent.netsvc.networks import Networks
from nodeagent.netsvc.wireserver import container_of
from nodeagent.tracing import Trace

AGENT_STALE_S = 60.0      # a guest agent heard from longer ago than this is Not Ready (it reports every 15 s)
STATUS_TEXT_MAX = 4096    # what an Observed record keeps of any text a guest sent


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat().replace("+00:00", "Z")


def _text(v: Any) -> str:
    return (v if isinstance(v, str) else "" if v is None else json.dumps(v))[-STATUS_TEXT_MAX:]


def _obj(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _time(posted: dict[str, Any]) -> float:
    return float(posted["time"])


def _aggregate(blob: dict[str, Any]) -> dict[str, Any]:
    """The aggregateStatus of a status blob as kept (the agent's status under "status")."""
    return _obj(_obj(blob.get("status")).get("aggregateStatus"))


def _guest_agent(blob: dict[str, Any]) -> dict[str, Any]:
    return _obj(_aggregate(blob).get("guestAgentStatus"))


def mine(a: Assignment, posted: dict[str, Any] | None) -> bool:
    """A report the wireserver kept for this VM: stamped with its container (an earlier VM at the same address,
    or one on another node, had another)."""
    return posted is not None and posted.get("container") == container_of(a)


def health_state(report: str) -> str:
    """The <State> of a guest's health report ("" without one)."""
    state = re.search(r"<State>([^<]*)</State>", report)
    return state[1] if state else ""


def agent_status(reports: list[dict[str, Any]], boot_started: float, now_s: float,
                 blobs: Sequence[dict[str, Any]] = ()) -> AgentHealth:
    """The guest agent as the wireserver heard from it: its health reports (both agents post them; the
    reference's agent posts Ready once) and its status blobs (the reference's agent puts one every few
    seconds). Ready when the last of either, during this boot and within AGENT_STALE_S, says Ready; Not Ready
    otherwise, with when it was last heard from. `provisioning` is what the last health report of this boot
    said of provisioning (Provisioning, Ready, ProvisioningFailed), with its description."""
    heard_from = [(_time(h), "health") for h in reports] + [(_time(b), "blob") for b in blobs]
    if not heard_from:
        return AgentHealth()
    heard, kind = max(heard_from, key=lambda x: x[0])
    this_boot = heard >= boot_started
    fresh = this_boot and now_s - heard <= AGENT_STALE_S
    health = max(reports, key=_time) if reports else None
    ga = _guest_agent(max(blobs, key=_time)) if blobs else {}      # the last status blob's agent
    report = str(health.get("report", "")) if health else ""
    health_now = health is not None and _time(health) >= boot_started
    state = health_state(report)
    sub = re.search(r"<SubStatus>([^<]*)</SubStatus>", report)
    said = re.search(r"<Description>([^<]*)</Description>", report)
    disk = re.search(r"<ResourceDisk>(formatted|kept)</ResourceDisk>", report)
    version = re.search(r"<AgentVersion>([^<]*)</AgentVersion>", report)
    ready = fresh and (ga.get("status") if kind == "blob" else state) == "Ready"
    shown_version = (version[1] if version and kind == "health" else "") or _text(ga.get("version"))
    provisioning = ""
    if health_now and state:
        provisioning = "Ready" if state == "Ready" else sub[1][:40] if sub else ""
    return AgentHealth(status="Ready" if ready else "Not Ready", version=shown_version[:40],
                       time=_utc(heard), resource_disk=disk[1] if disk and health_now else "",
                       provisioning=provisioning, message=_text(said[1] if said and health_now else "")[:1024])


def handler_statuses(blob: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Handler name -> its status from the reference agent's status blob, in the shape the busybox agent
    posts an extension's status (so that extension_status reads both): the handler's settings status when it
    ran, or the handler's own status (e.g. it could not be downloaded) as an error."""
    out: dict[str, dict[str, Any]] = {}
    for h in _list(_aggregate(blob).get("handlerAggregateStatus"))[:32]:
        h = _obj(h)
        name = _text(h.get("handlerName"))[:200]
        runtime = _obj(h.get("runtimeSettingsStatus"))
        settings = _obj(runtime.get("settingsStatus"))
        if not _obj(settings.get("status")):
            settings = {"status": {"status": "error" if h.get("status") != "Ready" else "transitioning",
                                   "code": h.get("code"), "formattedMessage": h.get("formattedMessage"),
                                   "operation": "Install"}}
        seq = runtime.get("sequenceNumber")
        out[name] = {"time": blob.get("time", 0), "status": {
            "seqNo": seq if isinstance(seq, int) and not isinstance(seq, bool) else
                     int(seq) if isinstance(seq, str) and re.fullmatch(r"[0-9]{1,9}", seq) else -1,
            "handler": name, "version": h.get("handlerVersion"), "status": [settings]}}
    return out


def extension_status(posted: dict[str, Any]) -> ExtensionStatus:
    """A guest's posted extension status (the handler's status file, wrapped by the guest agent) in the Observed
    shape."""
    raw = _obj(posted.get("status"))
    files = _list(raw.get("status"))
    top = _obj(_obj(files[0]).get("status")) if files else {}

    def message(d: dict[str, Any]) -> str:
        fm = d.get("formattedMessage")
        return _text(fm.get("message") if isinstance(fm, dict) else "")

    subs = _list(top.get("substatus"))
    code = top.get("code")
    seq, status = raw.get("seqNo"), top.get("status")
    return ExtensionStatus(
        seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else -1,
        handler=_text(raw.get("handler"))[:200], version=_text(raw.get("version"))[:20],
        status=status if status in ("transitioning", "success", "error") else "error",
        code=code if isinstance(code, int) and not isinstance(code, bool) else None, message=message(top),
        substatuses=[SubStatus(name=_text(x.get("name"))[:100], status=_text(x.get("status"))[:20],
                               message=message(x)) for x in subs[:8] if isinstance(x, dict)],
        operation=_text(top.get("operation"))[:40],
        time=_utc(float(posted.get("time", 0))), log=_text(raw.get("handlerLog")))


class GuestReports:
    """`clock` (monotonic seconds) decides how long an extension is waited for; `wall` (epoch seconds) how
    old a guest agent's report is. Both injected by tests."""

    def __init__(self, networks: Networks, trace: Trace, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.networks = networks
        self.trace = trace
        self.clock = clock
        self.wall = wall
        self._pending_since: dict[tuple[str, str, int], float] = {}   # extensions the guest has not finished

    def keep(self, vm_ids: set[str]) -> None:
        self._pending_since = {k: v for k, v in self._pending_since.items() if k[0] in vm_ids}

    def _mine(self, a: Assignment, read: Callable[[int, str], dict[str, Any] | None]) -> list[dict[str, Any]]:
        """What the wireserver kept of one kind (health reports, status blobs) for this VM, a NIC's each."""
        found = (read(n.vni, n.ip) for n in a.nics)
        return [r for r in found if r is not None and mine(a, r)]

    def agent(self, a: Assignment, boot_started: float) -> AgentHealth:
        return agent_status(self._mine(a, self.networks.health), boot_started, self.wall(),
                            self._mine(a, self.networks.agent_status))

    def provisioned(self, a: Assignment) -> bool:
        """The guest reported Ready to the wireserver for this VM on this node, in this boot or an earlier one
        (its report names the VM's container): a later boot needs no provisioning. (The reference's agents report
        Ready once, at provisioning; after a restart only the agent's status blob says it runs.)"""
        return any(health_state(str(h.get("report", ""))) == "Ready" for h in self._mine(a, self.networks.health))

    def extensions(self, a: Assignment) -> dict[str, ExtensionStatus]:
        """The guest agent's last status for each extension of the assignment: as the busybox agent posts it
        (by the extension's name), or from the reference agent's status blob (by its handler: one extension
        of a handler per VM)."""
        wanted = {e.name for e in a.extensions}
        by_handler = {e.handler: e.name for e in a.extensions}
        posted_at: dict[str, tuple[float, dict[str, Any]]] = {}
        found = [(name, p) for n in a.nics for name, p in self.networks.extension_statuses(n.vni, n.ip).items()
                 if mine(a, p)]
        found += [(by_handler[h], p) for blob in self._mine(a, self.networks.agent_status)
                  for h, p in handler_statuses(blob).items() if h in by_handler]
        for name, posted in found:
            t = float(posted.get("time", 0))
            if name in wanted and (name not in posted_at or t > posted_at[name][0]):
                posted_at[name] = (t, posted)
        return {name: extension_status(posted) for name, (_, posted) in posted_at.items()}

    def pending(self, a: Assignment, obs: Observed) -> bool:
        """An extension of a running VM without a final status for its sequence number, for at most its timeout
        and a grace (a guest that never reports is not polled for ever)."""
        now_s = self.clock()
        pending = False
        for e in a.extensions:
            st = obs.extensions.get(e.name)
            key = (a.vm_id, e.name, e.seq)
            if obs.power != PowerState.RUNNING or (st is not None and st.seq == e.seq and st.final):
                self._pending_since.pop(key, None)
                continue
            since = self._pending_since.setdefault(key, now_s)
            pending = pending or now_s - since < e.timeout_seconds + AGENT_GRACE_S
        return pending

    def trace_new(self, a: Assignment, obs: Observed, last: Observed | None) -> None:
        """Each new status a guest posted for an extension, as a step of that extension's operation."""
        before = last.extensions if last else {}
        for e in a.extensions:
            st = obs.extensions.get(e.name)
            if st is None or st.seq != e.seq:
                continue
            old = before.get(e.name)
            if old is not None and (old.seq, old.status, old.time) == (st.seq, st.status, st.time):
                continue
            if self.trace.plane.running(e.operation_id):   # not again after a restart
                self.trace.step(e.operation_id, "guest-status",
                                f"the guest agent posted {e.name} sequence {st.seq} ({st.handler} "
                                f"{st.version}) to the wireserver: {st.status}: {st.message}", detail=st.log)
