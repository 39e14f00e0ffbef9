"""The node's word for a guest agent: Ready while it reports, Not Ready once it stops (after AGENT_STALE_S)."""
from __future__ import annotations

from fabric.model import AgentHealth
from nodeagent.guest_reports import AGENT_STALE_S, agent_status

REPORT = "<Health><State>Ready</State></Health><AgentVersion>0.2.0</AgentVersion><ResourceDisk>kept</ResourceDisk>"


def test_ready_while_reporting_then_not_ready_with_when_it_was_heard() -> None:
    boot, heard = 1000.0, 1010.0
    now = agent_status([{"time": heard, "report": REPORT}], boot, heard + 1)
    assert now == AgentHealth(status="Ready", version="0.2.0", time="1970-01-01T00:16:50Z", resource_disk="kept",
                              provisioning="Ready")
    later = agent_status([{"time": heard, "report": REPORT}], boot, heard + AGENT_STALE_S + 1)
    assert later.status == "Not Ready" and later.time == "1970-01-01T00:16:50Z"


def test_a_report_from_before_this_boot_does_not_count() -> None:
    got = agent_status([{"time": 999.0, "report": REPORT}], 1000.0, 1001.0)
    assert got.status == "Not Ready" and got.resource_disk == ""


def test_never_heard_from() -> None:
    assert agent_status([], 1000.0, 1001.0) == AgentHealth(status="Not Ready")


def blob(t: float, status: str = "Ready", version: str = "2.7.3.0") -> dict[str, object]:
    return {"time": t, "status": {"aggregateStatus": {"guestAgentStatus": {"version": version, "status": status}}}}


def test_the_reference_agent_reports_ready_once_and_then_only_its_status_blob() -> None:
    boot = 1000.0
    ready_once = {"time": 1010.0, "report": "<Health><State>Ready</State></Health>"}
    later = 1010.0 + AGENT_STALE_S * 3
    got = agent_status([ready_once], boot, later + 1, [blob(later)])
    assert (got.status, got.version, got.provisioning) == ("Ready", "2.7.3.0", "Ready")
    assert agent_status([ready_once], boot, later + AGENT_STALE_S + 1, [blob(later)]).status == "Not Ready"
    assert agent_status([ready_once], boot, later + 1, [blob(later, status="NotReady")]).status == "Not Ready"


def test_a_restart_is_ready_from_its_new_status_blobs_alone() -> None:
    before = {"time": 900.0, "report": "<Health><State>Ready</State></Health>"}
    got = agent_status([before], 1000.0, 1006.0, [blob(1005.0)])
    assert got.status == "Ready" and got.provisioning == ""        # provisioning was in an earlier boot


def test_provisioning_failed_carries_the_agents_description() -> None:
    report = ("<Health><State>NotReady</State><Details><SubStatus>ProvisioningFailed</SubStatus>"
              "<Description>no user name</Description></Details></Health>")
    got = agent_status([{"time": 1001.0, "report": report}], 1000.0, 1002.0)
    assert (got.status, got.provisioning, got.message) == ("Not Ready", "ProvisioningFailed", "no user name")
