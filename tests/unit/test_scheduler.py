import random

from fabric.scheduler import HostState, Request, nodes_to_score, place
from fabric.scheduler.scheduler import TRACE_ROWS


def host(name: str, cores: int = 2, mem: int = 4096, disk: int = 10000, used: tuple[int, int, int] = (0, 0, 0), fd: int = 0) -> HostState:
    return HostState(name, fd, cores, mem, disk, *used, vm_count=0)


def test_spreads_to_the_emptier_node() -> None:
    p = place([host("a", used=(2, 2048, 0)), host("b")], Request(1, 512, 100))
    assert p.node == "b"
    assert [(c.node, c.chosen) for c in p.candidates] == [("b", True), ("a", False)]     # the best first
    assert p.candidates[0].weight > p.candidates[1].weight


def test_each_filter_explains_its_verdict() -> None:
    p = place([host("a", mem=256), host("b", disk=100)], Request(1, 512, 1024))
    assert p.node is None
    by_node = {c.node: {f: (ok, why) for f, ok, why in c.verdicts} for c in p.candidates}
    assert by_node["a"]["RamFilter"][0] is False
    assert "needs 512 MB memory, 256 MB free" in by_node["a"]["RamFilter"][1]
    assert by_node["b"]["DiskFilter"][0] is False
    assert by_node["b"]["RamFilter"][0] is True
    assert "a: RamFilter" in p.reason() and "b: DiskFilter" in p.reason()


def test_cpu_overcommit_is_bounded() -> None:
    # 1 core x ratio 4 = 4 vCPUs: a 4th single-core VM fits, a 5th does not
    assert place([host("a", cores=1, used=(3, 0, 0))], Request(1, 1, 1)).node == "a"
    p = place([host("a", cores=1, used=(4, 0, 0))], Request(1, 1, 1))
    assert p.node is None and "CoreFilter" in p.reason()


def test_no_nodes_says_so() -> None:
    assert place([], Request(1, 1, 1)).reason() == "no healthy node is registered"


def test_a_large_fabric_weighs_a_bounded_sample() -> None:
    hosts = [host(f"n{i:04d}") for i in range(1000)]
    p = place(hosts, Request(1, 512, 100), random.Random(1))
    assert p.node is not None and p.nodes == 1000
    assert p.considered == p.feasible == nodes_to_score(1000) < 1000
    assert len(p.candidates) <= TRACE_ROWS
    assert nodes_to_score(50) == 50 and nodes_to_score(10_000) == 500 and nodes_to_score(100_000) == 5000


def test_ties_are_broken_at_random_so_concurrent_creates_spread() -> None:
    hosts = [host(f"n{i:03d}") for i in range(200)]
    rng = random.Random(7)
    chosen = {place(hosts, Request(1, 512, 100), rng).node for _ in range(50)}
    assert len(chosen) > 30             # a deterministic choice would give 1


def test_fewer_vms_wins_a_tie_in_weight() -> None:
    busy = HostState("a", 0, 2, 4096, 10000, 0, 0, 0, vm_count=5)
    for seed in range(20):
        assert place([busy, host("b")], Request(1, 512, 100), random.Random(seed)).node == "b"


def test_the_one_node_that_fits_is_found_however_many_do_not() -> None:
    hosts = [host(f"n{i:04d}", used=(8, 0, 0)) for i in range(2000)] + [host("z-free")]
    for seed in range(5):
        p = place(hosts, Request(1, 512, 100), random.Random(seed))
        assert p.node == "z-free" and p.feasible == 1


def test_a_refusal_counts_each_filter_and_shows_a_few_nodes() -> None:
    hosts = [host(f"n{i:03d}", used=(8, 0, 0)) for i in range(300)] + [host("tiny", mem=100)]
    p = place(hosts, Request(1, 512, 100), random.Random(3))
    assert p.node is None and p.considered == 301
    assert dict(p.rejected) == {"CoreFilter": 300, "RamFilter": 1}
    assert len(p.candidates) == TRACE_ROWS
    assert p.reason().startswith("301 of 301 nodes considered (CoreFilter rejected 300, RamFilter rejected 1): ")
    assert p.reason().endswith(f"and {301 - TRACE_ROWS} more")
