"""Provisioning latency: `vm create` -> "guest reached user space", through the fabric and bare.

    .venv/bin/python bench/provision.py [--runs 3] [--size Lab_A0]

Starts its own lab (own folder and ports, removed at the end). Each round runs
a bare `virsh create` of an equivalent domain (same domain XML builder, same
kernel, initrd, image and overlay kind) and then a fabric create of the same
size, alternating so both see the same machine. Bare: from `virsh create` to
the boot marker in the console log (polled every 10 ms). Fabric: from the
gRPC Create call to the client seeing the operation Succeeded through the
Watch stream, with the phases taken from the operation trace. The fabric's
guest also takes its DHCP lease and resolves its own name before it prints
the marker; the bare domain has no NIC (nothing would answer its DHCP), so
that part of the guest's boot counts against the fabric.
Prints each run, the medians and the ratio fabric/bare.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabric.gallery import Gallery  # noqa: E402
from fabric.lab.config import ADMIN_CREDENTIAL  # noqa: E402
from fabric.lab.lab import Lab  # noqa: E402
from fabric.pki import Credential  # noqa: E402
from fabric.model import ImageRecord  # noqa: E402
from fabric.v1 import fabric_pb2 as pb  # noqa: E402
from fabric.v1 import fabric_pb2_grpc as rpc  # noqa: E402
from nodeagent.hypervisor import DirectBoot, VmSpec  # noqa: E402
from nodeagent.hypervisor.domain_xml import domain_xml  # noqa: E402
from nodeagent.storage_backends import Disk  # noqa: E402
from fabric.hostinfo import free_port  # noqa: E402

PHASES = [("validated", "os-disk-created", "storage: OS disk blob (qemu-img overlay)"),
          ("os-disk-created", "placed", "api: lease, NIC, place + commit"),
          ("placed", "domain-defined", "node: notice, network, resource disk, define"),
          ("domain-defined", "domain-started", "node: libvirt start"),
          ("domain-started", "guest-ready", "guest boot to user space (+ marker poll)"),
          ("guest-ready", "completed", "controller: observe + complete")]


def ts(s: str) -> float:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def bare_run(lab_root: Path, image: ImageRecord, size_cores: int, size_mb: int, work: Path) -> float:
    vm_id = str(uuid.uuid4())
    overlay = work / f"{vm_id}.qcow2"
    resource = work / f"{vm_id}.raw"
    console = work / f"{vm_id}.log"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", image.disk_format, "-b", image.disk,
                    str(overlay)], check=True)
    with open(resource, "wb") as f:
        f.truncate(512 * 1024 * 1024)
    spec = VmSpec(uuid=vm_id, name=f"bench-bare-{vm_id[:8]}", resource_group="bench", vm_name="bare",
                  cores=size_cores, memory_mb=size_mb,
                  boot=DirectBoot(image.kernel, image.initrd, f"{image.cmdline} fabric.hostname=bare"),
                  os_disk=Disk("file", str(overlay)), resource_disk=Disk("file", str(resource), "raw"),
                  console_log=str(console))
    xml = work / f"{vm_id}.xml"
    xml.write_text(domain_xml(spec, os.environ.get("BENCH_DOMAIN_TYPE", "qemu"), "bench-bare", "bench"))
    t0 = time.monotonic()
    subprocess.run(["virsh", "-q", "-c", "qemu:///system", "create", str(xml)], check=True, stdout=subprocess.DEVNULL)
    while True:
        if console.exists() and image.boot_marker in console.read_text(errors="replace"):
            elapsed = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 300:
            raise RuntimeError("bare guest did not boot in 300 s")
        time.sleep(0.01)
    subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", vm_id], check=True, stdout=subprocess.DEVNULL)
    return elapsed


def fabric_run(stubs: tuple[rpc.VirtualMachinesStub, rpc.OperationsStub], name: str, size: str) -> tuple[float, dict[str, float]]:
    vms, ops = stubs
    t0 = time.monotonic()
    op = vms.Create(pb.CreateVirtualMachineRequest(resource_group="bench", name=name,
                                                   image="fabriclab:busybox:lab:latest", size=size))
    last = op
    for last in ops.Watch(pb.GetOperationRequest(id=op.id, trace=True)):
        pass
    elapsed = time.monotonic() - t0
    if last.status != "Succeeded":
        raise RuntimeError(f"fabric create failed: {last.error}")
    at = {s.step: ts(s.time) for s in last.trace}
    phases = {label: at[b] - at[a] for a, b, label in PHASES if a in at and b in at}
    return elapsed, phases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="Lab_A0")
    args = ap.parse_args()
    root = Path("/var/lib/fabriclab") / f"bench-{os.getpid()}"
    lab = Lab(root)
    try:
        ports = free_port(span=6)         # etcd client and peer; the controller API, data plane, join, TLS data plane
        cfg = lab.up(2, "fabriclab:busybox:lab:latest", "auto", ports, ports + 2, "local")
        image = Gallery(Path(cfg["gallery"])).resolve(cfg["image"])
        ch = Credential.load(root / ADMIN_CREDENTIAL).channel(cfg["controller"])
        rpc.ResourceGroupsStub(ch).Create(pb.CreateResourceGroupRequest(name="bench", location="local"))
        stubs = (rpc.VirtualMachinesStub(ch), rpc.OperationsStub(ch))
        size = next(s for s in stubs[0].ListSizes(pb.ListSizesRequest(location="local")).value
                    if s.name == args.size)
        nodes = rpc.NodesStub(ch).List(pb.ListNodesRequest()).value
        os.environ["BENCH_DOMAIN_TYPE"] = nodes[0].hypervisor
        bare, fab, phases = [], [], []
        with tempfile.TemporaryDirectory(prefix="bench-bare-", dir=root) as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)
            for i in range(args.runs):
                bare.append(bare_run(root, image, size.number_of_cores, size.memory_in_mb, work))
                t, ph = fabric_run(stubs, f"bench{i}", args.size)
                fab.append(t)
                phases.append(ph)
                print(f"run {i + 1}: bare {bare[-1]:.2f} s   fabric {fab[-1]:.2f} s   ratio {fab[-1] / bare[-1]:.2f}")
        print(f"\ndomain type {nodes[0].hypervisor}, size {args.size}, {args.runs} runs (medians)")
        print("fabric phases:")
        for _, _, label in PHASES:
            vals = [p[label] for p in phases if label in p]
            if vals:
                print(f"  {label:<45} {statistics.median(vals):6.3f} s")
        mb, mf = statistics.median(bare), statistics.median(fab)
        print(f"bare virsh create -> user space             {mb:6.3f} s")
        print(f"fabric vm create  -> user space (client)    {mf:6.3f} s")
        print(f"ratio fabric/bare                           {mf / mb:6.2f}   (target <= 1.25)")
        for i in range(args.runs):
            op = stubs[0].Delete(pb.VirtualMachineRef(resource_group="bench", name=f"bench{i}"))
            for _ in stubs[1].Watch(pb.GetOperationRequest(id=op.id)):
                pass
    finally:
        lab.down(purge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
