"""How fast a new assignment reaches its node: through the node API (mutual TLS, a server stream of the node's
assignments) against a direct etcd watch (what node agents did before), in the same run.

    .venv/bin/python bench/node_api.py [--assignments 200] [--interval 0.02]

Starts its own etcd on free loopback ports (removed at the end) and the controller's API in this process
with a test CA. A node-1 client watches its assignments through the node API (`nodeagent.control`) while a
store watch on the same prefix does the same; each assignment is then committed, one every `--interval` s,
and each side records when it first saw it. Prints p50 / p99 / max from commit to notice for each, and the
ratio node API / etcd. Both watchers share the process (and its GIL) with the server.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabric.compute.vms import ComputeConfig, ComputeProvider  # noqa: E402
from fabric.controller.main import build_server  # noqa: E402
from fabric.gallery import Gallery  # noqa: E402
from fabric.hostinfo import free_port  # noqa: E402
from fabric.lab.etcd import Etcd  # noqa: E402
from fabric.model import Assignment, DiskRef, ImageRecord, PowerState  # noqa: E402
from fabric.network.provider import NetworkConfig, NetworkProvider  # noqa: E402
from fabric.pki import CONTROLLERS, Authority, Identity  # noqa: E402
from fabric.arm import join_server  # noqa: E402
from fabric.enrollment import Enrollment  # noqa: E402
from fabric.join import join  # noqa: E402
from fabric.storage.provider import StorageConfig, StorageProvider  # noqa: E402
from fabric.store import Store, keys  # noqa: E402
from nodeagent.control import AssignmentWatch, ControlPlane  # noqa: E402

IMAGE = ImageRecord(publisher="fabriclab", offer="busybox", sku="lab", version="latest", exact_version="1.0.0",
                    disk="/g/disk.vhd", disk_format="vpc", kernel="/g/vmlinuz", initrd="/g/initrd.img",
                    cmdline="console=ttyS0", boot_marker="ready")


def assignment(i: int) -> Assignment:
    return Assignment(vm_id=f"vm-{i:05d}", resource_group="bench", name=f"vm{i}", node="node-1",
                      power=PowerState.RUNNING, generation=0, cores=1, memory_mb=64, resource_disk_mb=1,
                      image=IMAGE, os_disk=DiskRef("localpath"), operation_id=f"op-{i}")


def percentile(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--assignments", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.02, help="seconds between commits")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-node-api-") as tmp:
        etcd = Etcd(Path(tmp))
        etcd.start()
        store = Store(etcd.url)
        try:
            sub = "00000000-0000-0000-0000-000000000001"
            storage = StorageProvider(store, StorageConfig(Path(tmp) / "blobs", "local", "http://127.0.0.1:1"))
            compute = ComputeProvider(store, Gallery(Path(tmp) / "gallery"), storage,
                                      NetworkProvider(store, NetworkConfig(sub, "local")), ComputeConfig(sub, "local"))
            ca = Authority.create("bench")
            base = free_port(2)     # both free at once: two picked apart could be the same one
            address, join_address = f"127.0.0.1:{base}", f"127.0.0.1:{base + 1}"
            controller = ca.credential(Identity("controller:bench", CONTROLLERS), "", ("127.0.0.1",))
            enrollment = Enrollment(store, ca)
            join_srv = join_server.serve(join_address, enrollment, controller, address)
            srv = build_server(store, compute, address, controller, enrollment, join_address)
            srv.start()
            plane = ControlPlane(join(join_address, enrollment.create_token(600)[0], "node-1"))
            committed: dict[str, float] = {}
            seen: dict[str, dict[str, float]] = {"node API": {}, "etcd watch": {}}
            lock = threading.Lock()

            def saw(side: str, vm_ids: list[str]) -> None:
                now = time.perf_counter()
                with lock:
                    for v in vm_ids:
                        seen[side].setdefault(v, now)

            watches: list[AssignmentWatch] = []
            watch = plane.watch_assignments(lambda: saw("node API", [a.vm_id for w in watches for a in w.latest or []]))
            watches.append(watch)
            etcd_watch = store.watch_prefix(keys.assignments_of("node-1"), lambda: saw(
                "etcd watch", [a.value.vm_id for a in store.list(keys.assignments_of("node-1"), Assignment)]))
            time.sleep(0.5)
            for i in range(args.assignments):
                a = assignment(i)
                store.put(keys.assignment("node-1", a.vm_id), a)
                committed[a.vm_id] = time.perf_counter()
                time.sleep(args.interval)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(len(s) < args.assignments for s in seen.values()):
                time.sleep(0.05)
            watch.cancel()
            etcd_watch.cancel()
            plane.close()
            srv.stop(grace=0)
            join_srv.shutdown()
        finally:
            store.close()
            etcd.stop()
    print(f"{args.assignments} assignments, one every {args.interval * 1000:g} ms; commit -> the node notices")
    print(f"{'':12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'seen':>6}")
    p50 = {}
    for side, times in seen.items():
        lat = [(times[v] - t) * 1000 for v, t in committed.items() if v in times]
        p50[side] = statistics.median(lat)
        print(f"{side:12} {p50[side]:8.1f} {percentile(lat, 0.99):8.1f} {max(lat):8.1f} {len(lat):6d}")
    print(f"ratio node API / etcd watch (p50): {p50['node API'] / p50['etcd watch']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
