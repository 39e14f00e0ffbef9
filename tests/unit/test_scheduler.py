from fabric.scheduler import HostState, Request, place


def host(name: str, cores: int = 2, mem: int = 4096, disk: int = 10000, used: tuple[int, int, int] = (0, 0, 0), fd: int = 0) -> HostState:
    return HostState(name, fd, cores, mem, disk, *used, vm_count=0)


def test_spreads_to_the_emptier_node() -> None:
    p = place([host("a", used=(2, 2048, 0)), host("b")], Request(1, 512, 100))
    assert p.node == "b"
    chosen = [c for c in p.candidates if c.chosen]
    assert [c.node for c in chosen] == ["b"]
    assert p.candidates[0].weight < p.candidates[1].weight


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
