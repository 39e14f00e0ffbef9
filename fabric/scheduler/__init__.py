"""Placement: filters decide which nodes can take a VM, weighers rank the rest.

Every decision is explained: `place()` returns a row per node with each
filter's verdict and each weigher's score, which goes into the operation trace.
"""
from fabric.scheduler.scheduler import Candidate, HostState, Placement, Request, place

__all__ = ["Candidate", "HostState", "Placement", "Request", "place"]
