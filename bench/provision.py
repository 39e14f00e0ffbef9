"""Provisioning latency: `vm create` -> "guest reached user space", through the fabric and bare.

    .venv/bin/python bench/provision.py [--runs 3] [--size Lab_A0]
    .venv/bin/python bench/provision.py --image fabriclab:debian:12:latest [--runs 3] [--size Lab_A1]

With an image provisioned by its own guest software (no boot marker: the Debian image), each round is a
bare `virsh create` of the same disk (a raw copy with a NoCloud seed and `datasource_list: [ NoCloud ]`
written in, made before the clock starts: the way a user of plain libvirt provisions a cloud image with
cloud-init, the user and key from the seed) and a fabric `vm create` with an admin user and key (cloud-init
reads them from IMDS and reports Ready to the wireserver). Both are timed to the same console line, cloud-init's
"Cloud-init v. ... finished"; the fabric's create -> Succeeded (the guest's Ready) is printed beside.

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
import json
import os
import re
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
from nodeagent.hypervisor import DirectBoot, FirmwareBoot, VmSpec  # noqa: E402
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


def fabric_run(stubs: tuple[rpc.VirtualMachinesStub, rpc.OperationsStub], name: str, size: str, image: str,
               key: str = "") -> tuple[float, dict[str, float], float]:
    """Create -> Succeeded seen by the client, the phases, and (with `key`: an image its guest provisions) create
    -> cloud-init's "finished" line on the VM's console."""
    vms, ops = stubs
    t0 = time.monotonic()
    op = vms.Create(pb.CreateVirtualMachineRequest(
        resource_group="bench", name=name, image=image, size=size, admin_username="bench" if key else "",
        ssh_public_keys=[pb.SshPublicKey(key_data=key)] if key else []))
    last = op
    for last in ops.Watch(pb.GetOperationRequest(id=op.id, trace=True)):
        pass
    elapsed = time.monotonic() - t0
    if last.status != "Succeeded":
        raise RuntimeError(f"fabric create failed: {last.error}")
    at = {s.step: ts(s.time) for s in last.trace}
    phases = {label: at[b] - at[a] for a, b, label in PHASES if a in at and b in at}
    finished = 0.0
    if key:
        started = next(s for s in last.trace if s.step == "domain-started")
        console, offset = re.match(r"console log (\S+) from byte (\d+)", started.detail).groups()  # type: ignore[union-attr]
        wait_for(Path(console), FINISHED, t0, int(offset))
        finished = time.monotonic() - t0
    return elapsed, phases, finished


FINISHED = re.compile(r"Cloud-init v\. \S+ finished at")      # cloud-init's last stage is done
BOOT_TIMEOUT_S = 300


def wait_for(console: Path, line: str | re.Pattern[str], t0: float, offset: int = 0) -> None:
    """Until the console log holds `line` after `offset` (polled every 10 ms)."""
    while True:
        text = console.read_bytes()[offset:].decode(errors="replace") if console.exists() else ""
        if (line.search(text) if isinstance(line, re.Pattern) else line in text):
            return
        if time.monotonic() - t0 > BOOT_TIMEOUT_S:
            raise RuntimeError(f"{console}: nothing like {line!r} within {BOOT_TIMEOUT_S} s")
        time.sleep(0.01)


def seeded_disk(image: ImageRecord, work: Path, key: str) -> Path:
    """A raw copy of the image's disk with a NoCloud seed and `datasource_list: [ NoCloud ]` written into its first
    partition: the cloud image as a user of plain libvirt provisions it (made before any clock starts)."""
    raw = work / "seeded.raw"
    subprocess.run(["qemu-img", "convert", "-q", "-f", image.disk_format, "-O", "raw", image.disk, str(raw)],
                   check=True)
    table = json.loads(subprocess.run(["sfdisk", "-J", str(raw)], capture_output=True, text=True,
                                      check=True).stdout)
    start = int(table["partitiontable"]["partitions"][0]["start"]) * 512
    files = {"etc/cloud/cloud.cfg.d/99_bench_nocloud.cfg": "datasource_list: [ NoCloud ]\n",
             "var/lib/cloud/seed/nocloud/meta-data": "instance-id: bench-bare\nlocal-hostname: bare\n",
             "var/lib/cloud/seed/nocloud/user-data": f"#cloud-config\nusers:\n  - name: bench\n"
                                                      f"    ssh_authorized_keys: [\"{key}\"]\n"}
    staged, mnt = work / "seedfs", work / "mnt"
    for rel, text in files.items():
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).write_text(text)
    mnt.mkdir()
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    f'mount -o loop,offset={start} "$1" "$2" && cp -r "$3/." "$2/"; umount "$2"', "seed",
                    str(raw), str(mnt), str(staged)], check=True)
    return raw


def bare_run(backing: str, backing_format: str, boot: DirectBoot | FirmwareBoot, until: str | re.Pattern[str],
             size_cores: int, size_mb: int, work: Path) -> float:
    """`virsh create` of a domain from the same XML builder, on an overlay of `backing`, to `until` on its console."""
    vm_id = str(uuid.uuid4())
    overlay, resource, console = work / f"{vm_id}.qcow2", work / f"{vm_id}.raw", work / f"{vm_id}.log"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", backing_format, "-b", backing, str(overlay)],
                   check=True)
    with open(resource, "wb") as f:
        f.truncate(512 * 1024 * 1024)
    spec = VmSpec(uuid=vm_id, name=f"bench-bare-{vm_id[:8]}", resource_group="bench", vm_name="bare",
                  cores=size_cores, memory_mb=size_mb, boot=boot, os_disk=Disk("file", str(overlay)),
                  resource_disk=Disk("file", str(resource), "raw"), console_log=str(console))
    xml = work / f"{vm_id}.xml"
    xml.write_text(domain_xml(spec, os.environ.get("BENCH_DOMAIN_TYPE", "qemu"), "bench-bare", "bench"))
    t0 = time.monotonic()
    subprocess.run(["virsh", "-q", "-c", "qemu:///system", "create", str(xml)], check=True, stdout=subprocess.DEVNULL)
    try:
        wait_for(console, until, t0)
        return time.monotonic() - t0
    finally:
        subprocess.run(["virsh", "-q", "-c", "qemu:///system", "destroy", vm_id], stdout=subprocess.DEVNULL)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", default="")
    ap.add_argument("--image", default="fabriclab:busybox:lab:latest")
    args = ap.parse_args()
    root = Path("/var/lib/fabriclab") / f"bench-{os.getpid()}"
    lab = Lab(root)
    try:
        ports = free_port(span=6)         # etcd client and peer; the controller API, data plane, join, TLS data plane
        cfg = lab.up(2, args.image, "auto", ports, ports + 2, "local")
        image = Gallery(Path(cfg["gallery"])).resolve(cfg["image"])
        guest_provisioned = not image.boot_marker
        size_name = args.size or ("Lab_A1" if guest_provisioned else "Lab_A0")
        ch = Credential.load(root / ADMIN_CREDENTIAL).channel(cfg["controller"])
        rpc.ResourceGroupsStub(ch).Create(pb.CreateResourceGroupRequest(name="bench", location="local"))
        stubs = (rpc.VirtualMachinesStub(ch), rpc.OperationsStub(ch))
        size = next(s for s in stubs[0].ListSizes(pb.ListSizesRequest(location="local")).value
                    if s.name == size_name)
        nodes = rpc.NodesStub(ch).List(pb.ListNodesRequest()).value
        os.environ["BENCH_DOMAIN_TYPE"] = nodes[0].hypervisor
        bare, fab, phases, finished = [], [], [], []
        with tempfile.TemporaryDirectory(prefix="bench-bare-", dir=root) as tmp:
            work = Path(tmp)
            os.chmod(work, 0o755)
            key = ""
            if guest_provisioned:
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(work / "key")], check=True)
                key = (work / "key.pub").read_text().strip()
                seeded = seeded_disk(image, work, key)
            for i in range(args.runs):
                if guest_provisioned:      # the seeded copy, booted through the firmware, to cloud-init's end
                    bare.append(bare_run(str(seeded), "raw", FirmwareBoot(), FINISHED, size.number_of_cores,
                                         size.memory_in_mb, work))
                else:                      # the image's kernel, booted directly, to its marker
                    bare.append(bare_run(image.disk, image.disk_format, DirectBoot(
                        image.kernel, image.initrd, f"{image.cmdline} fabric.hostname=bare"), image.boot_marker,
                        size.number_of_cores, size.memory_in_mb, work))
                t, ph, done = fabric_run(stubs, f"bench{i}", size_name, cfg["image"], key)
                fab.append(done or t)
                finished.append(t)
                phases.append(ph)
                ready = f"   (fabric create -> Succeeded {t:.2f} s)" if guest_provisioned else ""
                print(f"run {i + 1}: bare {bare[-1]:.2f} s   fabric {fab[-1]:.2f} s   ratio {fab[-1] / bare[-1]:.2f}"
                      f"{ready}", flush=True)
                if guest_provisioned:          # one guest at a time: two cores
                    op = stubs[0].Delete(pb.VirtualMachineRef(resource_group="bench", name=f"bench{i}"))
                    for _ in stubs[1].Watch(pb.GetOperationRequest(id=op.id)):
                        pass
        print(f"\nimage {cfg['image']}, domain type {nodes[0].hypervisor}, size {size_name}, {args.runs} runs "
              f"(medians)")
        print("fabric phases:")
        for _, _, label in PHASES:
            vals = [p[label] for p in phases if label in p]
            if vals:
                print(f"  {label:<45} {statistics.median(vals):6.3f} s")
        mb, mf = statistics.median(bare), statistics.median(fab)
        what = "cloud-init finished" if guest_provisioned else "user space"
        print(f"bare virsh create -> {what:<22} {mb:6.3f} s")
        print(f"fabric vm create  -> {what:<22} {mf:6.3f} s")
        if guest_provisioned:
            print(f"fabric vm create  -> Succeeded (guest Ready) {statistics.median(finished):6.3f} s")
        print(f"ratio fabric/bare                           {mf / mb:6.2f}   (target <= 1.25)")
        if not guest_provisioned:
            for i in range(args.runs):
                op = stubs[0].Delete(pb.VirtualMachineRef(resource_group="bench", name=f"bench{i}"))
                for _ in stubs[1].Watch(pb.GetOperationRequest(id=op.id)):
                    pass
    finally:
        lab.down(purge=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
