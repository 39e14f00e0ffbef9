"""Filter, then weigh; ties go to the node with fewer VMs, then by name."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from fabric.scheduler import core_filter, disk_filter, ram_filter, spread_weigher
from fabric.scheduler.host_state import HostState, Request

FILTERS = (core_filter, ram_filter, disk_filter)
WEIGHERS = (spread_weigher,)

__all__ = ["Candidate", "HostState", "Placement", "Request", "place"]


@dataclasses.dataclass(frozen=True)
class Candidate:
    node: str
    fault_domain: int
    verdicts: tuple[tuple[str, bool, str], ...]   # (filter, passed, reason)
    weight: float = 0.0
    chosen: bool = False

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.verdicts)


@dataclasses.dataclass(frozen=True)
class Placement:
    node: str | None
    candidates: tuple[Candidate, ...]

    def reason(self) -> str:
        """Why nothing fits, one clause per node."""
        if not self.candidates:
            return "no healthy node is registered"
        parts = []
        for c in self.candidates:
            fails = [f"{name}: {why}" for name, ok, why in c.verdicts if not ok]
            parts.append(f"{c.node}: {'; '.join(fails)}")
        return " | ".join(parts)


def place(hosts: Sequence[HostState], req: Request) -> Placement:
    rows = []
    for host in sorted(hosts, key=lambda h: h.name):
        verdicts = tuple((f.NAME, *f.check(host, req)) for f in FILTERS)
        cand = Candidate(host.name, host.fault_domain, verdicts)
        if cand.passed:
            cand = dataclasses.replace(cand, weight=round(sum(w.weigh(host, req) for w in WEIGHERS), 4))
        rows.append((cand, host))
    fit = [(c, h) for c, h in rows if c.passed]
    if not fit:
        return Placement(None, tuple(c for c, _ in rows))
    best, _ = max(fit, key=lambda ch: (ch[0].weight, -ch[1].vm_count, [-ord(x) for x in ch[0].node]))
    out = tuple(dataclasses.replace(c, chosen=(c.node == best.node)) for c, _ in rows)
    return Placement(best.node, out)
