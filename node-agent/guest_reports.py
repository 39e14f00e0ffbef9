"""What guests reported to the wireserver: the guest agent's health and each extension's status, in the
Observed shape, and their new statuses as steps of the extensions' operations.

The guest is not trusted: anything missing or malformed becomes empty, texts are capped.
"""
from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable
from typing import Any

from fabric.core.constants import AGENT_GRACE_S
from fabric.model import AgentHealth, Assignment, ExtensionStatus, Observed, PowerState, SubStatus
from nodeagent.netsvc.networks import Networks
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


def agent_status(reports: list[dict[str, Any]], boot_started: float, now_s: float) -> AgentHealth:
    """Ready when the guest agent reported Ready to the wireserver during this boot and within AGENT_STALE_S;
    Not Ready otherwise, with when it was last heard from."""
    if not reports:
        return AgentHealth()
    last = max(reports, key=lambda h: float(h["time"]))
    report = str(last.get("report", ""))
    version = re.search(r"<AgentVersion>([^<]*)</AgentVersion>", report)
    state = re.search(r"<State>([^<]*)</State>", report)
    disk = re.search(r"<ResourceDisk>(formatted|kept)</ResourceDisk>", report)
    heard = float(last["time"])
    this_boot = heard >= boot_started
    ready = this_boot and now_s - heard <= AGENT_STALE_S and state is not None and state[1] == "Ready"
    return AgentHealth(status="Ready" if ready else "Not Ready", version=version[1][:40] if version else "",
                       time=_utc(heard), resource_disk=disk[1] if disk and this_boot else "")


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

    def agent(self, a: Assignment, boot_started: float) -> AgentHealth:
        reports = [h for n in a.nics if (h := self.networks.health(n.vni, n.ip)) is not None]
        return agent_status(reports, boot_started, self.wall())

    def extensions(self, a: Assignment) -> dict[str, ExtensionStatus]:
        """The guest agent's last status for each extension of the assignment."""
        wanted = {e.name for e in a.extensions}
        out: dict[str, ExtensionStatus] = {}
        for n in a.nics:
            for name, posted in self.networks.extension_statuses(n.vni, n.ip).items():
                if name in wanted:
                    out[name] = extension_status(posted)
        return out

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
