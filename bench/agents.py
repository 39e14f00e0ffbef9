"""Node agents at scale: real agent processes, each on its own libvirt `test:///default` driver, behind a real
controller and etcd; how long until every VM created is Succeeded, and what an agent costs while idle.

    .venv/bin/python bench/agents.py [--runs 20x500,1x200] [--clients 8] [--idle 10]   (as root)

Each run (AGENTSxVMS) gets its own etcd on free loopback ports, the controller's API, join endpoint and
background loop in this process (mutual TLS, as in a lab), and AGENTS `nodeagent.main` processes that join
with one-time tokens, as lab nodes do. What is simulated, and only that: the hypervisor (libvirt's test
driver: domains are defined, started and stopped by libvirt, but nothing boots) and the guest's boot, which
this bench plays: once a node reports a VM running but not booted, the bench appends the image's boot marker
to that VM's console log, as the guest's serial console would. Everything else is real: the OS disk overlays
(qemu-img), the agents' networks (a bridge, a namespace and dnsmasq per network and node; no VXLAN), port
security, the node API, the assignment watch, the reports.

Prints per run: the agents' idle CPU before any VM (the baseline), creates through the API from `--clients`
threads, the seconds from the first create to every VM Succeeded and their ratio to the creates alone (what
the agents add to the API's own time), and each agent's idle CPU afterwards (the mean and the busiest, in % of
a core, measured over `--idle` seconds from /proc), and the ratio of the busiest to the baseline. Exits non-zero when a create failed or a VM did not succeed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from fabric.arm import join_server  # noqa: E402
from fabric.controller.main import Settings, build_server, providers, reconcile_forever  # noqa: E402
from fabric.enrollment import Enrollment  # noqa: E402
from fabric.gallery import publish_blank  # noqa: E402
from fabric.hostinfo import free_port  # noqa: E402
from fabric.join import join  # noqa: E402
from fabric.lab.etcd import Etcd  # noqa: E402
from fabric.model import NodeRecord, Observed, PowerState, ProvisioningState, VmRecord  # noqa: E402
from fabric.pki import ADMINS, CONTROLLERS, Authority, Identity  # noqa: E402
from fabric.store import Store, keys  # noqa: E402
from fabric.store.informer import informed  # noqa: E402
from fabric.v1 import fabric_pb2 as pb  # noqa: E402
from fabric.v1 import fabric_pb2_grpc as rpc  # noqa: E402

SUB = "00000000-0000-0000-0000-000000000001"
VMS_PER_GROUP = 200          # each group's default subnet (a /24) holds 251 NICs
MARKER = "fabriclab-guest: reached user space"    # publish_blank's boot marker
READY_WAIT_S = 60.0
SUCCEED_WAIT_S = float(os.environ.get("BENCH_SUCCEED_WAIT_S", "600"))
SETTLE_S = 5.0
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU over `seconds`, as a share of one core."""
    before = [cpu_ticks(p) for p in pids]
    time.sleep(seconds)
    return [(cpu_ticks(p) - b) / TICKS / seconds for p, b in zip(pids, before)]


class Guests:
    """The guests' side of booting: the boot marker on the console of each VM its node reports running and not
    yet booted (each boot of each VM once)."""

    def __init__(self, store: Store) -> None:
        self.observed = informed(store, keys.OBSERVED, Observed)
        self._lock = threading.Lock()
        self._done: set[tuple[str, int]] = set()
        self.observed.on_change(self.seen)
        for v in self.observed.list():
            self.seen(v.key)

    def seen(self, key: str) -> None:
        found = self.observed.get(key)
        obs = found.value if found is not None else None
        if obs is None or obs.power != PowerState.RUNNING or obs.booted or not obs.console:
            return
        with self._lock:
            if (obs.vm_id, obs.generation) in self._done:
                return
            self._done.add((obs.vm_id, obs.generation))
        with open(obs.console, "a") as f:
            f.write(f"\r\n{MARKER}\r\n")


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def agent_argv(tmp: Path, name: str, credential: Path) -> list[str]:
    return [sys.executable, "-m", "nodeagent.main", "--name", name, "--state-dir", str(tmp / "nodes" / name),
            "--credential", str(credential), "--libvirt", "test:///default", "--disk-access", "path",
            "--underlay-ip", "", "--cores", "256", "--memory-mb", "1048576", "--local-disk-mb", "10000000",
            "--power-off-on-exit", "--image-keep", "3600", "--log-file", str(tmp / "logs" / f"{name}.log")]


def run(tmp: Path, agents: int, vms: int, clients: int, idle_s: float) -> dict[str, float]:
    etcd = Etcd(tmp)
    etcd.start()
    store = Store(etcd.url)
    procs: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    try:
        publish_blank(tmp / "gallery")
        (tmp / "blobs").mkdir()
        (tmp / "logs").mkdir()
        ca = Authority.create("bench-agents")
        address, join_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        controller = ca.credential(Identity("controller:bench", CONTROLLERS), "", ("127.0.0.1",))
        compute = providers(store, Settings(SUB, "local", "fabric.internal", tmp / "gallery", tmp / "blobs",
                                            "http://127.0.0.1:1", 300))
        enrollment = Enrollment(store, ca)
        join_srv = join_server.serve(join_address, enrollment, controller, address, compute.gallery)
        srv = build_server(store, compute, address, controller, enrollment, join_address)
        srv.start()
        names = [f"bench-{i:02d}" for i in range(agents)]
        for name in names:
            token, _ = enrollment.create_token(600, f"bench node {name}")
            cred = tmp / f"{name}.json"
            join(join_address, token, name).save(cred)
            procs.append(subprocess.Popen(agent_argv(tmp, name, cred), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + READY_WAIT_S
        while not all(store.get(keys.node(n), NodeRecord) for n in names):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise SystemExit(f"the agents did not all register; see {tmp / 'logs'}")
            time.sleep(0.2)
        pids = [p.pid for p in procs]
        time.sleep(SETTLE_S)
        baseline = idle_cpu(pids, idle_s)
        threading.Thread(target=reconcile_forever, args=(store, compute, stop), daemon=True).start()
        Guests(store)
        channel = ca.credential(Identity("admin", ADMINS), "").channel(address)
        for g in range((vms + VMS_PER_GROUP - 1) // VMS_PER_GROUP):
            rpc.ResourceGroupsStub(channel).Create(pb.CreateResourceGroupRequest(name=f"bench{g}", location="local"))
        stub = rpc.VirtualMachinesStub(channel)
        failures: list[str] = []

        def create(i: int) -> None:
            try:
                stub.Create(pb.CreateVirtualMachineRequest(resource_group=f"bench{i // VMS_PER_GROUP}",
                                                           name=f"vm{i:05d}", size="Lab_A0",
                                                           image="fabriclab:busybox:lab:latest"))
            except grpc.RpcError as exc:
                failures.append(f"vm{i:05d}: {exc.code().name} {exc.details()}")
        start = time.monotonic()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(create, range(vms)))
        created_s = time.monotonic() - start
        for f in failures[:5]:
            print(f"  failed: {f}", file=sys.stderr)
        records = informed(store, keys.VMS, VmRecord)
        deadline = time.monotonic() + SUCCEED_WAIT_S
        while (done := sum(v.value.provisioning_state == ProvisioningState.SUCCEEDED for v in records.list())) \
                < vms - len(failures):
            if time.monotonic() > deadline:
                print(f"  only {done} of {vms} VMs Succeeded within {SUCCEED_WAIT_S:g} s; the end of an agent's "
                      f"log:\n{tail(tmp / 'logs' / f'{names[0]}.log')}", file=sys.stderr)
                break
            time.sleep(0.1)
        succeeded_s = time.monotonic() - start
        time.sleep(SETTLE_S)
        after = idle_cpu(pids, idle_s)
        srv.stop(grace=0)
        join_srv.shutdown()
        base = max(baseline)
        return {"agents": agents, "vms": vms, "failed": len(failures), "succeeded": done,
                "creates_s": round(created_s, 1), "all_succeeded_s": round(succeeded_s, 1),
                "succeeded_to_created": round(succeeded_s / created_s, 2),
                "idle_before_pct": round(100 * base, 2), "idle_mean_pct": round(100 * sum(after) / len(after), 2),
                "idle_max_pct": round(100 * max(after), 2),
                "idle_ratio": round(max(after) / base, 2) if base else 0.0}
    finally:
        stop.set()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        store.close()
        etcd.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="20x500,1x200", help="AGENTSxVMS, comma-separated (default %(default)s)")
    ap.add_argument("--clients", type=int, default=8, help="client threads creating VMs (default %(default)s)")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds each idle CPU is measured over")
    args = ap.parse_args()
    if os.geteuid() != 0:
        ap.error("run as root: the agents make bridges, namespaces and dnsmasq processes for their networks")
    rows = []
    for spec in args.runs.split(","):
        agents, vms = (int(x) for x in spec.split("x"))
        with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
            row = run(Path(tmp), agents, vms, args.clients, args.idle)
        print(json.dumps(row), flush=True)
        rows.append(row)
    print("; ".join(f"{r['agents']} agents, {r['vms']} VMs: created in {r['creates_s']} s, all Succeeded "
                    f"{r['all_succeeded_s']} s after the first create ({r['succeeded_to_created']}x the creates alone); agent idle CPU {r['idle_mean_pct']} % of a "
                    f"core (busiest {r['idle_max_pct']} %, {r['idle_ratio']}x its {r['idle_before_pct']} % with no VM)"
                    for r in rows))
    return 1 if any(r["failed"] or r["succeeded"] < r["vms"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
