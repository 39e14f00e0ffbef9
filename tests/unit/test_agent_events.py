"""What the node agent reacts to without polling everything: which operations a network's change is told to, and
a booting guest's console read only where it grew."""
from __future__ import annotations

from pathlib import Path

from fabric.model import Assignment, DiskRef, ImageRecord, PowerState, VmNic
from nodeagent.console import Consoles, MarkerWatch
from nodeagent.network_converge import concerned

IMAGE = ImageRecord(publisher="p", offer="o", sku="s", version="latest", exact_version="1.0.0", disk="/d",
                    disk_format="vpc", kernel="/k", initrd="/i", cmdline="", boot_marker="READY")
MARKER = "fabriclab-guest: reached user space"


def vm(name: str, mac: str, op: str) -> Assignment:
    return Assignment(vm_id=f"id-{name}", resource_group="RG", name=name, node="n1", power=PowerState.RUNNING,
                      generation=0, cores=1, memory_mb=64, resource_disk_mb=1, image=IMAGE,
                      os_disk=DiskRef("localpath"), operation_id=op,
                      nics=[VmNic(key="k", id="i", mac=mac, ip="10.0.0.4", vnet="rg/v", vni=7, prefix="10.0.0.0/24",
                                  gateway="10.0.0.1", dns_suffix="x.internal")])


def test_a_vm_joining_a_network_is_told_its_events_and_the_vms_already_there_are_not() -> None:
    first, second = vm("a", "52:54:00:00:00:0a", "op-a"), vm("b", "52:54:00:00:00:0b", "op-b")
    events = ["DHCP reservation written: 52:54:00:00:00:0b,10.0.0.5,b,infinite",
              "dnsmasq reloaded: 2 reservations, 2 DNS names"]
    told = concerned(7, events, [first, second], frozenset({second.vm_id}))
    assert [(a.operation_id if a else None, e) for a, e in told] == [("op-b", events[0]), ("op-b", events[1])]
    # a repair nobody asked for (dnsmasq killed, started again) is for the log, not for any finished operation
    assert concerned(7, ["dnsmasq started: 2 reservations"], [first, second], frozenset()) == \
        [(None, "dnsmasq started: 2 reservations")]


def test_a_booting_console_is_read_where_it_grew_and_a_marker_split_across_reads_is_found(tmp_path: Path) -> None:
    consoles = Consoles(tmp_path)
    log = consoles.log_path("vm1")
    log.write_text("an earlier boot: " + MARKER + "\n")
    watch = MarkerWatch(consoles)
    watch.watch("vm1", log.stat().st_size, MARKER)          # this boot starts after the earlier marker
    assert watch.found() == set() and watch
    with open(log, "a") as f:
        f.write("booting...\r\nfabriclab-guest: reached")
    assert watch.found() == set()
    with open(log, "a") as f:
        f.write(" user space\r\n")
    assert watch.found() == {"vm1"} and not watch, "the marker written in two pieces was not found"


def test_a_rotated_console_is_read_from_its_start(tmp_path: Path) -> None:
    consoles = Consoles(tmp_path)
    log = consoles.log_path("vm1")
    log.write_text("x" * 1000)
    watch = MarkerWatch(consoles)
    watch.watch("vm1", 1000, MARKER)
    log.write_text(f"{MARKER}\n")                          # the log rotated: a new, shorter file
    assert watch.found() == {"vm1"}
