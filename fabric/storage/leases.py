"""Blob leases with the reference service's semantics, as pure functions of (lease, now).

States: available, leased, expired, breaking, broken. Durations: 15-60 s or
infinite (-1). The functions return a new Lease or raise LeaseError with the
service's code and HTTP status:

    acquire  on a leased blob with another id    409 LeaseAlreadyPresent
    renew    with another id                      409 LeaseIdMismatchWithLeaseOperation
    renew    a broken/breaking lease              409 LeaseIsBrokenAndCannotBeRenewed
    release  with another id                      409 LeaseIdMismatchWithLeaseOperation
    break    with no lease                        409 LeaseNotPresentWithLeaseOperation
    write or delete a leased blob, no id given    412 LeaseIdMissing
    write or delete with the wrong id             412 LeaseIdMismatchWithBlobOperation
"""
from __future__ import annotations

import dataclasses
import uuid

INFINITE = -1
MIN_DURATION_S = 15
MAX_DURATION_S = 60
MAX_BREAK_PERIOD_S = 60


class LeaseError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class Lease:
    id: str = ""
    duration_s: int = 0          # -1 infinite, else 15-60
    expires_at: float = 0.0      # fixed leases: epoch seconds
    broken: bool = False         # break requested
    break_at: float = 0.0        # epoch seconds when breaking ends

    def state(self, now: float) -> str:
        if not self.id:
            return "available"
        if self.broken:
            return "breaking" if now < self.break_at else "broken"
        if self.duration_s != INFINITE and now >= self.expires_at:
            return "expired"
        return "leased"

    def status(self, now: float) -> str:
        return "locked" if self.state(now) in ("leased", "breaking") else "unlocked"

    def duration(self, now: float) -> str:
        if self.state(now) != "leased":
            return ""
        return "infinite" if self.duration_s == INFINITE else "fixed"


def check_duration(duration_s: int) -> None:
    if duration_s != INFINITE and not MIN_DURATION_S <= duration_s <= MAX_DURATION_S:
        raise LeaseError("InvalidHeaderValue", 400,
                         f"leaseDuration: -1 (infinite) or {MIN_DURATION_S}-{MAX_DURATION_S} seconds, not {duration_s}")


def _new(lease_id: str, duration_s: int, now: float) -> Lease:
    expires = 0.0 if duration_s == INFINITE else now + duration_s
    return Lease(id=lease_id, duration_s=duration_s, expires_at=expires)


def acquire(cur: Lease, duration_s: int, proposed_id: str, now: float) -> Lease:
    check_duration(duration_s)
    state = cur.state(now)
    if state in ("leased", "breaking") and proposed_id != cur.id:
        raise LeaseError("LeaseAlreadyPresent", 409, "There is already a lease present.")
    if state == "breaking":
        raise LeaseError("LeaseIsBreakingAndCannotBeAcquired", 409, "The lease is breaking and cannot be acquired.")
    return _new(proposed_id or str(uuid.uuid4()), duration_s, now)


def renew(cur: Lease, lease_id: str, now: float) -> Lease:
    state = cur.state(now)
    if state == "available":
        raise LeaseError("LeaseNotPresentWithLeaseOperation", 409, "There is currently no lease on the blob.")
    if lease_id != cur.id:
        raise LeaseError("LeaseIdMismatchWithLeaseOperation", 409,
                         "The lease ID specified did not match the lease ID for the blob.")
    if state in ("breaking", "broken"):
        raise LeaseError("LeaseIsBrokenAndCannotBeRenewed", 409, "The lease is broken and cannot be renewed.")
    return _new(cur.id, cur.duration_s, now)


def release(cur: Lease, lease_id: str, now: float) -> Lease:
    if cur.state(now) == "available":
        raise LeaseError("LeaseNotPresentWithLeaseOperation", 409, "There is currently no lease on the blob.")
    if lease_id != cur.id:
        raise LeaseError("LeaseIdMismatchWithLeaseOperation", 409,
                         "The lease ID specified did not match the lease ID for the blob.")
    return Lease()


def break_(cur: Lease, period_s: int | None, now: float) -> Lease:
    """Break: infinite leases break at once unless a period is given; fixed ones at min(period, remaining)."""
    state = cur.state(now)
    if state == "available":
        raise LeaseError("LeaseNotPresentWithLeaseOperation", 409, "There is currently no lease on the blob.")
    if period_s is not None and not 0 <= period_s <= MAX_BREAK_PERIOD_S:
        raise LeaseError("InvalidHeaderValue", 400, f"breakPeriod: 0-{MAX_BREAK_PERIOD_S} seconds, not {period_s}")
    if state in ("breaking", "broken", "expired"):
        return cur if state != "expired" else dataclasses.replace(cur, broken=True, break_at=now)
    if cur.duration_s == INFINITE:
        wait = float(period_s or 0)
    else:
        remaining = max(0.0, cur.expires_at - now)
        wait = remaining if period_s is None else min(float(period_s), remaining)
    return dataclasses.replace(cur, broken=True, break_at=now + wait)


def check_write(cur: Lease, lease_id: str, now: float) -> None:
    """A write or delete of the blob: refused when the lease is active and the id is missing or wrong."""
    if cur.state(now) in ("leased", "breaking"):
        if not lease_id:
            raise LeaseError("LeaseIdMissing", 412,
                             "There is currently a lease on the blob and no lease ID was specified in the request.")
        if lease_id != cur.id:
            raise LeaseError("LeaseIdMismatchWithBlobOperation", 412,
                             "The lease ID specified did not match the lease ID for the blob.")
    elif lease_id and lease_id != cur.id:
        raise LeaseError("LeaseNotPresentWithBlobOperation", 412, "There is currently no lease on the blob.")
