"""The node's word for a guest agent: Ready while it reports, Not Ready once it stops (after AGENT_STALE_S)."""
from __future__ import annotations

from fabric.model import AgentHealth
from nodeagent.guest_reports import AGENT_STALE_S, agent_status

REPORT = "<Health><State>Ready</State></Health><AgentVersion>0.2.0</AgentVersion><ResourceDisk>kept</ResourceDisk>"


def test_ready_while_reporting_then_not_ready_with_when_it_was_heard() -> None:
    boot, heard = 1000.0, 1010.0
    now = agent_status([{"time": heard, "report": REPORT}], boot, heard + 1)
    assert now == AgentHealth(status="Ready", version="0.2.0", time="1970-01-01T00:16:50Z", resource_disk="kept")
    later = agent_status([{"time": heard, "report": REPORT}], boot, heard + AGENT_STALE_S + 1)
    assert later.status == "Not Ready" and later.time == "1970-01-01T00:16:50Z"


def test_a_report_from_before_this_boot_does_not_count() -> None:
    got = agent_status([{"time": 999.0, "report": REPORT}], 1000.0, 1001.0)
    assert got.status == "Not Ready" and got.resource_disk == ""


def test_never_heard_from() -> None:
    assert agent_status([], 1000.0, 1001.0) == AgentHealth(status="Not Ready")
