"""Placement as the fabric grows: creates per second at a few nodes and at many, against the raw
compare-and-swap rate of the same etcd client in the same run.

    .venv/bin/python bench/scale.py [--nodes 10,1000] [--vms 400] [--clients 8]

For each node count: its own etcd on free loopback ports (removed at the end) and the controller's API in
this process (mutual TLS, as in a lab). The nodes are capacity only: records written as the node API's
Register writes them (one lease for all, kept alive), with no agent behind them, so operations stay
InProgress and only the create path is measured (validation, NICs, the OS disk overlay, placement, the
commit). `--clients` threads create `--vms` VMs through the gRPC API, VMS_PER_GROUP to a resource group
(each group's first VM also makes its default storage account and virtual network); then the same Store client runs
`--vms` compare-and-swap transactions from as many threads (the raw rate one etcd round trip allows).

Prints per node count: creates/s, p50 / p99 latency, controller-process CPU per create (clients included:
they share the process), the raw CAS/s and the ratio; then the ratio of creates/s at the largest node
count to the smallest. With `--fill N` the largest fabric is then filled to N VMs: the creates at the end
against those at the start, a whole VM list through the API's pages, every VM reported running (written as
the node API writes a node's report) until the leader's loop has every create Succeeded, the process's RSS
and its CPU while the loop idles. Exits non-zero when any create failed.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from fabric.compute.vms import ComputeProvider  # noqa: E402
from fabric.controller.main import Settings, build_server, providers, reconcile_forever  # noqa: E402
from fabric.gallery import publish_blank  # noqa: E402
from fabric.core.constants import NODE_LEASE_TTL_S  # noqa: E402
from fabric.hostinfo import free_port  # noqa: E402
from fabric.lab.etcd import Etcd  # noqa: E402
from fabric.model import (Assignment, NodeAllocation, NodeRecord, Observed, PowerState,  # noqa: E402
                          ProvisioningState, VmRecord)
from fabric.pki import ADMINS, CONTROLLERS, Authority, Identity  # noqa: E402
from fabric.store import Put, Store, Unchanged, Versioned, keys  # noqa: E402
from fabric.store.informer import informed  # noqa: E402
from fabric.v1 import fabric_pb2 as pb  # noqa: E402
from fabric.v1 import fabric_pb2_grpc as rpc  # noqa: E402

SUB = "00000000-0000-0000-0000-000000000001"
VMS_PER_GROUP = 200       # each group's default subnet (a /24) holds 251 NICs
IDLE_SETTLE_S = 5.0
SUCCEED_WAIT_S = 600.0
IDLE_MEASURE_S = 10.0


def percentile(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def register_nodes(store: Store, n: int) -> int:
    """n capacity-only node records under one lease (Register writes each under the node's own)."""
    lease = store.grant_lease(NODE_LEASE_TTL_S)
    for i in range(n):
        store.put(keys.node(f"cap-{i:05d}"), NodeRecord(name=f"cap-{i:05d}", fault_domain=i % 3, hypervisor="qemu",
                                                        cores=64, memory_mb=262144, local_disk_mb=4_000_000),
                  lease=lease)
    return lease


def keep_alive(store: Store, lease: int, stop: threading.Event) -> None:
    while not stop.wait(NODE_LEASE_TTL_S / 3):
        store.refresh_lease(lease)


def raw_cas(store: Store, count: int, clients: int) -> float:
    """Compare-and-swap transactions/s from `clients` threads, each writing its own key on a compare that holds
    (one round trip and one raft entry each, as a create's commit)."""
    def worker(c: int) -> None:
        for i in range(count // clients):
            ok = store.commit([Unchanged(f"/bench/cas/absent-{c}", 0)],
                              [Put(f"/bench/cas/{c}", NodeAllocation(node=f"c{c}-{i}"))])
            assert ok
    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return (count // clients) * clients / (time.monotonic() - start)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Creates:
    """VM creates through the API from `clients` threads: latencies, failures, wall and process CPU time."""

    def __init__(self, stub: rpc.VirtualMachinesStub, clients: int) -> None:
        self.stub = stub
        self.clients = clients

    def run(self, first: int, count: int) -> dict[str, float]:
        latencies: list[float] = []
        failures: list[str] = []

        def create(i: int) -> None:
            t = time.monotonic()
            try:
                self.stub.Create(pb.CreateVirtualMachineRequest(resource_group=f"bench{i // VMS_PER_GROUP}",
                                                                name=f"vm{i:05d}", size="Lab_A0",
                                                                image="fabriclab:busybox:lab:latest"))
                latencies.append(time.monotonic() - t)
            except grpc.RpcError as exc:
                failures.append(f"vm{i:05d}: {exc.code().name} {exc.details()}")
        cpu, start = cpu_s(), time.monotonic()
        with ThreadPoolExecutor(self.clients) as pool:
            list(pool.map(create, range(first, first + count)))
        wall, cpu = time.monotonic() - start, cpu_s() - cpu
        for f in failures[:5]:
            print(f"  failed: {f}", file=sys.stderr)
        return {"creates": len(latencies), "failed": len(failures),
                "creates_per_s": round(len(latencies) / wall, 1), "p50_s": round(percentile(latencies, 0.5), 3),
                "p99_s": round(percentile(latencies, 0.99), 3), "cpu_ms_per_create": round(1000 * cpu / count, 1)}


def run(tmp: Path, nodes: int, vms: int, clients: int, fill: int) -> dict[str, float]:
    etcd = Etcd(tmp)
    etcd.start()
    store = Store(etcd.url)
    stop = threading.Event()
    try:
        publish_blank(tmp / "gallery")
        blobs = tmp / "blobs"
        blobs.mkdir()
        compute = providers(store, Settings(SUB, "local", "fabric.internal", tmp / "gallery", blobs,
                                            "http://127.0.0.1:1", 300))
        ca = Authority.create("bench")
        address = f"127.0.0.1:{free_port()}"
        srv = build_server(store, compute, address, ca.credential(Identity("controller:bench", CONTROLLERS), "",
                                                                   ("127.0.0.1",)))
        srv.start()
        channel = ca.credential(Identity("admin", ADMINS), "").channel(address)
        groups = rpc.ResourceGroupsStub(channel)
        for g in range((max(vms, fill) + VMS_PER_GROUP - 1) // VMS_PER_GROUP):
            groups.Create(pb.CreateResourceGroupRequest(name=f"bench{g}", location="local"))
        lease = register_nodes(store, nodes)
        threading.Thread(target=keep_alive, args=(store, lease, stop), daemon=True).start()
        stub = rpc.VirtualMachinesStub(channel)
        creates = Creates(stub, clients)
        row: dict[str, float] = {"nodes": nodes, **creates.run(0, vms)}
        cas = raw_cas(store, vms, clients)
        row |= {"raw_cas_per_s": round(cas, 1), "ratio_to_cas": round(row["creates_per_s"] / cas, 3)}
        if fill > vms:
            row |= filled(store, compute, stub, creates, vms, fill)
        srv.stop(grace=0)
        return row
    finally:
        stop.set()
        store.close()
        etcd.stop()


def filled(store: Store, compute: ComputeProvider, stub: rpc.VirtualMachinesStub, creates: Creates, first: int,
           fill: int) -> dict[str, float]:
    """The fabric filled to `fill` VMs: the last creates against the first, a whole list through the API's
    pages; then, the leader's background loop running, every VM reported running by its node and the time
    until every create Succeeded; the process's memory and its CPU while the loop idles over them."""
    last = VMS_PER_GROUP * 2
    creates.run(first, fill - first - last)
    tail = creates.run(fill - last, last)
    start, listed, token, pages = time.monotonic(), 0, "", 0
    while True:
        res = stub.List(pb.ListVirtualMachinesRequest(next_token=token))
        listed, token, pages = listed + len(res.value), res.next_link, pages + 1
        if not token:
            break
    list_s = time.monotonic() - start
    stop = threading.Event()
    loop = threading.Thread(target=reconcile_forever, args=(store, compute, stop), daemon=True)
    loop.start()
    done_s = report_running(store, creates.clients)
    time.sleep(IDLE_SETTLE_S)
    cpu = cpu_s()
    time.sleep(IDLE_MEASURE_S)
    idle = (cpu_s() - cpu) / IDLE_MEASURE_S
    stop.set()
    loop.join(10)
    return {"fill": fill, "fill_failed": tail["failed"], "listed": listed, "list_pages": pages,
            "list_s": round(list_s, 2), "tail_creates_per_s": tail["creates_per_s"],
            "tail_cpu_ms_per_create": tail["cpu_ms_per_create"], "all_succeeded_s": round(done_s, 1),
            "rss_mb": round(rss_mb()), "idle_cpu_share_of_a_core": round(idle, 3)}


def report_running(store: Store, clients: int) -> float:
    """Every VM reported running and booted by its node, written as the node API's ReportObserved writes it
    (while the assignment is unchanged); then the seconds until the leader's loop has every create Succeeded."""
    vms = informed(store, keys.VMS, VmRecord)
    start = time.monotonic()

    def report(v: Versioned[VmRecord]) -> None:
        vm = v.value
        assigned = store.get(keys.assignment(vm.node, vm.vm_id), Assignment)
        if assigned is not None:
            store.commit([Unchanged(assigned.key, assigned.mod_revision)], [Put(
                keys.observed(vm.node, vm.vm_id), Observed(vm_id=vm.vm_id, node=vm.node, power=PowerState.RUNNING,
                                                           booted=True, operation_id=vm.operation_id))])
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(report, vms.list()))
    deadline = time.monotonic() + SUCCEED_WAIT_S
    while any(v.value.provisioning_state != ProvisioningState.SUCCEEDED for v in vms.list()):
        if time.monotonic() > deadline:
            raise SystemExit(f"not every VM Succeeded within {SUCCEED_WAIT_S:g} s")
        time.sleep(0.5)
    return time.monotonic() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="10,1000", help="node counts, comma-separated (default %(default)s)")
    ap.add_argument("--vms", type=int, default=400, help="creates per node count (default %(default)s)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default %(default)s)")
    ap.add_argument("--fill", type=int, default=0, help="then fill the last node count's fabric to this many VMs "
                                                         "and measure it (default: no fill)")
    args = ap.parse_args()
    rows = []
    counts = [int(x) for x in args.nodes.split(",")]
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            row = run(Path(tmp), n, args.vms, args.clients, args.fill if n == counts[-1] else 0)
        print(json.dumps(row), flush=True)
        rows.append(row)
    ratio = rows[-1]["creates_per_s"] / rows[0]["creates_per_s"] if rows[0]["creates_per_s"] else 0.0
    each = " | ".join(f"{r['nodes']} nodes {r['creates_per_s']}/s p99 {r['p99_s']} s" for r in rows)
    print(f"placements/s: {each}; ratio {rows[-1]['nodes']} / {rows[0]['nodes']} nodes = {ratio:.2f}")
    if args.fill:
        f, first = rows[-1], rows[-1]
        print(f"filled to {f['fill']} VMs: list of {f['listed']} in {f['list_pages']} pages {f['list_s']} s; "
              f"creates/s at the end {f['tail_creates_per_s']}; CPU per create at the end / at the start "
              f"{f['tail_cpu_ms_per_create'] / first['cpu_ms_per_create']:.2f}; all reported running -> all "
              f"Succeeded {f['all_succeeded_s']} s; RSS {f['rss_mb']} MB; idle CPU "
              f"{100 * f['idle_cpu_share_of_a_core']:.1f} % of a core")
    return 1 if any(r["failed"] or r.get("fill_failed") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
