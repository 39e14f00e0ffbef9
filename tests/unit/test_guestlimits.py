"""The per-VM limits of the guest-facing services, on an injected clock: what a guest sees, request by request,
without racing the wall clock."""
from nodeagent.netsvc.guestlimits import IMDS_RATE, WIRESERVER_RATE, ConnectionCap, Rate, RateLimit


class Clock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_imds_answers_five_requests_a_second_and_refuses_the_sixth() -> None:
    clock = Clock()
    limit = RateLimit(IMDS_RATE, clock)
    assert [limit.allow("10.0.0.4") for _ in range(8)] == [True] * 5 + [False] * 3
    clock.t += 0.2                              # one token back
    assert [limit.allow("10.0.0.4") for _ in range(2)] == [True, False]
    clock.t += 1.0                              # a full bucket, never more
    assert [limit.allow("10.0.0.4") for _ in range(6)] == [True] * 5 + [False]


def test_one_vm_spending_its_budget_leaves_its_neighbours_theirs() -> None:
    limit = RateLimit(Rate(per_s=1, burst=2), Clock())
    assert [limit.allow("10.0.0.4") for _ in range(3)] == [True, True, False]
    assert [limit.allow("10.0.0.5") for _ in range(3)] == [True, True, False]


def test_the_wireserver_takes_an_agents_start_up_burst() -> None:
    limit = RateLimit(WIRESERVER_RATE, Clock())
    assert sum(limit.allow("10.0.0.4") for _ in range(25)) == WIRESERVER_RATE.burst


def test_buckets_of_vms_gone_quiet_are_forgotten() -> None:
    clock = Clock()
    limit = RateLimit(Rate(per_s=1, burst=2), clock)
    for i in range(100):
        limit.allow(f"10.0.{i}.4")
    clock.t += 3.0
    limit.allow("10.0.0.4")
    assert set(limit.buckets) == {"10.0.0.4"}


def test_a_vm_holds_at_most_its_connections() -> None:
    cap = ConnectionCap(2)
    assert [cap.enter("a"), cap.enter("a"), cap.enter("a"), cap.enter("b")] == [True, True, False, True]
    cap.leave("a")
    assert cap.enter("a")
    for key in ("a", "a", "b"):
        cap.leave(key)
    assert cap.open == {}
