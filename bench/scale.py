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
count to the smallest. Exits non-zero when any create failed.
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

from fabric.controller.main import Settings, build_server, providers  # noqa: E402
from fabric.gallery import publish_blank  # noqa: E402
from fabric.core.constants import NODE_LEASE_TTL_S  # noqa: E402
from fabric.hostinfo import free_port  # noqa: E402
from fabric.lab.etcd import Etcd  # noqa: E402
from fabric.model import NodeAllocation, NodeRecord  # noqa: E402
from fabric.pki import ADMINS, CONTROLLERS, Authority, Identity  # noqa: E402
from fabric.store import Put, Store, Unchanged, keys  # noqa: E402
from fabric.v1 import fabric_pb2 as pb  # noqa: E402
from fabric.v1 import fabric_pb2_grpc as rpc  # noqa: E402

SUB = "00000000-0000-0000-0000-000000000001"
VMS_PER_GROUP = 200       # each group's default subnet (a /24) holds 251 NICs


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


def run(tmp: Path, nodes: int, vms: int, clients: int) -> dict[str, float]:
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
        for g in range((vms + VMS_PER_GROUP - 1) // VMS_PER_GROUP):
            groups.Create(pb.CreateResourceGroupRequest(name=f"bench{g}", location="local"))
        lease = register_nodes(store, nodes)
        threading.Thread(target=keep_alive, args=(store, lease, stop), daemon=True).start()
        vm_stub = rpc.VirtualMachinesStub(channel)
        latencies: list[float] = []
        failures: list[str] = []

        def create(i: int) -> None:
            t = time.monotonic()
            try:
                vm_stub.Create(pb.CreateVirtualMachineRequest(resource_group=f"bench{i // VMS_PER_GROUP}",
                                                              name=f"vm{i:05d}",
                                                              image="fabriclab:busybox:lab:latest", size="Lab_A0"))
                latencies.append(time.monotonic() - t)
            except grpc.RpcError as exc:
                failures.append(f"vm{i:05d}: {exc.code().name} {exc.details()}")
        cpu, start = cpu_s(), time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, range(vms)))
        wall, cpu = time.monotonic() - start, cpu_s() - cpu
        cas = raw_cas(store, vms, clients)
        srv.stop(grace=0)
        for f in failures[:5]:
            print(f"  failed: {f}", file=sys.stderr)
        return {"nodes": nodes, "creates": len(latencies), "failed": len(failures),
                "creates_per_s": round(len(latencies) / wall, 1), "p50_s": round(percentile(latencies, 0.5), 3),
                "p99_s": round(percentile(latencies, 0.99), 3), "cpu_ms_per_create": round(1000 * cpu / vms, 1),
                "raw_cas_per_s": round(cas, 1), "ratio_to_cas": round(len(latencies) / wall / cas, 3)}
    finally:
        stop.set()
        store.close()
        etcd.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="10,1000", help="node counts, comma-separated (default %(default)s)")
    ap.add_argument("--vms", type=int, default=400, help="creates per node count (default %(default)s)")
    ap.add_argument("--clients", type=int, default=8, help="client threads (default %(default)s)")
    args = ap.parse_args()
    rows = []
    for n in (int(x) for x in args.nodes.split(",")):
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
            row = run(Path(tmp), n, args.vms, args.clients)
        print(json.dumps(row), flush=True)
        rows.append(row)
    ratio = rows[-1]["creates_per_s"] / rows[0]["creates_per_s"] if rows[0]["creates_per_s"] else 0.0
    each = " | ".join(f"{r['nodes']} nodes {r['creates_per_s']}/s p99 {r['p99_s']} s" for r in rows)
    print(f"placements/s: {each}; ratio {rows[-1]['nodes']} / {rows[0]['nodes']} nodes = {ratio:.2f}")
    return 1 if any(r["failed"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
