"""Filter, then weigh, over a bounded sample of the nodes; ties go to the node with fewer VMs, then at random.

The filters run on the nodes from a random one on, until `nodes_to_score(n)` nodes have passed them all (or
every node was tried: nothing that fits is missed when few do), and only those are weighed. So the work
per placement stops growing past a few hundred nodes, and concurrent placements start from different nodes
and rarely compete for one node's allocation (each commits with a compare-and-swap on it).

What a placement keeps to explain itself stays small however large the fabric: the chosen node and the
best others, a few rejected nodes with their reasons, and how many nodes each filter rejected. Any other
node is explained on demand (`explain`).
"""
from __future__ import annotations

import collections
import dataclasses
import heapq
import random
from collections.abc import Sequence

from fabric.scheduler import core_filter, disk_filter, ram_filter, spread_weigher
from fabric.scheduler.host_state import HostState, Request

FILTERS = (core_filter, ram_filter, disk_filter)
WEIGHERS = (spread_weigher,)
MIN_NODES_TO_SCORE = 100        # below this many nodes, all are weighed
TOP_ROWS = 3                    # the chosen node and the best others, explained row by row
TRACE_ROWS = 5                  # rows in all, rejected nodes filling what the best leave

_RANDOM = random.Random()

__all__ = ["Candidate", "HostState", "Placement", "Request", "explain", "nodes_to_score", "place"]


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
    candidates: tuple[Candidate, ...]            # at most TRACE_ROWS: the best first, then rejected nodes
    nodes: int = 0                               # the nodes it could choose from
    considered: int = 0                          # the nodes the filters ran on
    feasible: int = 0                            # those every filter passed (all of them weighed)
    rejected: tuple[tuple[str, int], ...] = ()   # (filter, nodes it rejected) in filter order

    def reason(self) -> str:
        """Why nothing fits: how many nodes each filter rejected, and a few nodes' reasons."""
        if not self.nodes:
            return "no healthy node is registered"
        parts = []
        for c in self.candidates:
            fails = [f"{name}: {why}" for name, ok, why in c.verdicts if not ok]
            parts.append(f"{c.node}: {'; '.join(fails)}")
        more = self.considered - len(self.candidates)
        counts = ", ".join(f"{name} rejected {n}" for name, n in self.rejected)
        return (f"{self.considered} of {self.nodes} nodes considered ({counts}): " + " | ".join(parts)
                + (f" | and {more} more" if more > 0 else ""))


def nodes_to_score(n: int) -> int:
    """How many feasible nodes to weigh out of n: all up to MIN_NODES_TO_SCORE, then a share falling from
    50 % towards 5 % as the fabric grows (never fewer than MIN_NODES_TO_SCORE)."""
    if n <= MIN_NODES_TO_SCORE:
        return n
    percent = max(5, 50 - n // 125)
    return max(MIN_NODES_TO_SCORE, n * percent // 100)


def explain(host: HostState, req: Request) -> Candidate:
    """One node's verdict from every filter, and its weight when all pass."""
    cand = Candidate(host.name, host.fault_domain, tuple((f.NAME, *f.check(host, req)) for f in FILTERS))
    return dataclasses.replace(cand, weight=weight(host, req)) if cand.passed else cand


def weight(host: HostState, req: Request) -> float:
    """What the weighers make of a node that passed every filter."""
    total: float = sum(w.weigh(host, req) for w in WEIGHERS)
    return round(total, 4)


def place(hosts: Sequence[HostState], req: Request, rng: random.Random | None = None) -> Placement:
    rng = rng or _RANDOM
    n = len(hosts)
    want = nodes_to_score(n)
    start = rng.randrange(n) if n else 0
    fit: list[tuple[float, int, float, HostState]] = []      # (weight, VMs, a random draw, host)
    refused: list[HostState] = []
    counts: collections.Counter[str] = collections.Counter()
    considered = 0
    for i in range(n):
        host = hosts[(start + i) % n]
        considered += 1
        failed = [f.NAME for f in FILTERS if not f.fits(host, req)]
        if not failed:
            fit.append((weight(host, req), host.vm_count, rng.random(), host))
            if len(fit) >= want:
                break
        else:
            counts.update(failed)
            if len(refused) < TRACE_ROWS:
                refused.append(host)
    rejected = tuple((f.NAME, counts[f.NAME]) for f in FILTERS if counts[f.NAME])
    refused_rows = sorted((explain(h, req) for h in refused), key=lambda c: c.node)
    if not fit:
        return Placement(None, tuple(refused_rows), n, considered, 0, rejected)
    ranked = heapq.nsmallest(TOP_ROWS, fit, key=lambda f: (-f[0], f[1], f[2]))   # only the best are explained
    top = [explain(h, req) for _, _, _, h in ranked]
    top[0] = dataclasses.replace(top[0], chosen=True)
    rows = top + refused_rows[:TRACE_ROWS - len(top)]
    return Placement(top[0].node, tuple(rows), n, considered, len(fit), rejected)
