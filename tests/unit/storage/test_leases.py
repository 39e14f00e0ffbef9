from collections.abc import Callable

import pytest

from fabric.storage import leases
from fabric.storage.leases import INFINITE, Lease, LeaseError


def err(fn: Callable[..., object], *args: object) -> tuple[str, int]:
    with pytest.raises(LeaseError) as e:
        fn(*args)
    return e.value.code, e.value.status


def test_infinite_lease_blocks_others_and_unleased_writes() -> None:
    lease = leases.acquire(Lease(), INFINITE, "", 0)
    assert (lease.state(10**9), lease.status(10**9), lease.duration(10**9)) == ("leased", "locked", "infinite")
    assert err(leases.acquire, lease, INFINITE, "someone-else", 5) == ("LeaseAlreadyPresent", 409)
    assert err(leases.check_write, lease, "", 5) == ("LeaseIdMissing", 412)
    assert err(leases.check_write, lease, "wrong", 5) == ("LeaseIdMismatchWithBlobOperation", 412)
    leases.check_write(lease, lease.id, 5)
    assert leases.acquire(lease, INFINITE, lease.id, 5).id == lease.id     # same id: acquire again is fine


def test_fixed_lease_expires_and_renews() -> None:
    lease = leases.acquire(Lease(), 15, "id-1", 100)
    assert lease.state(114.9) == "leased" and lease.state(115) == "expired"
    leases.check_write(lease, "", 115)                                   # expired: unlocked
    assert leases.renew(lease, "id-1", 120).state(134) == "leased"
    assert err(leases.renew, lease, "id-2", 101) == ("LeaseIdMismatchWithLeaseOperation", 409)


@pytest.mark.parametrize("duration", [0, 14, 61, -2])
def test_durations_outside_15_60_are_refused(duration: int) -> None:
    assert err(leases.acquire, Lease(), duration, "", 0)[0] == "InvalidHeaderValue"


def test_break_then_acquire() -> None:
    lease = leases.acquire(Lease(), 60, "id-1", 0)
    broken = leases.break_(lease, 10, 0)
    assert broken.state(5) == "breaking" and broken.status(5) == "locked"
    assert err(leases.renew, broken, "id-1", 5) == ("LeaseIsBrokenAndCannotBeRenewed", 409)
    assert broken.state(10) == "broken"
    assert leases.acquire(broken, INFINITE, "id-2", 10).id == "id-2"
    infinite = leases.acquire(Lease(), INFINITE, "id-3", 0)
    assert leases.break_(infinite, None, 0).state(0) == "broken"         # infinite: breaks at once by default


def test_release_and_break_need_a_lease() -> None:
    assert err(leases.break_, Lease(), None, 0) == ("LeaseNotPresentWithLeaseOperation", 409)
    lease = leases.acquire(Lease(), INFINITE, "id-1", 0)
    assert err(leases.release, lease, "other", 0)[0] == "LeaseIdMismatchWithLeaseOperation"
    assert leases.release(lease, "id-1", 0).state(0) == "available"
