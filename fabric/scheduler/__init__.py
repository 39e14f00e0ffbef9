"""Placement: filters decide which nodes can take a VM, weighers rank the rest.

Every decision is explained: `place()` returns the chosen node, the best others and a few rejected nodes
with each filter's verdict and each weigher's score, and how many nodes each filter rejected; that goes into
the operation trace. `explain()` gives any one node's verdicts on demand.
"""
from fabric.scheduler.scheduler import Candidate, HostState, Placement, Request, explain, nodes_to_score, place

__all__ = ["Candidate", "HostState", "Placement", "Request", "explain", "nodes_to_score", "place"]
