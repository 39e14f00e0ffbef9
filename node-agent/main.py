"""fabric-node-agent: one per host (or several per host in a lab, each with its own name).

    fabric-node-agent --name node-1 --fault-domain 0 --state-dir DIR --credential FILE \\
        [--controller ADDRESS] [--libvirt qemu:///system] [--hypervisor auto|kvm|qemu]
        [--cores N --memory-mb N --local-disk-mb N] [--power-off-on-exit] [--log-file FILE]
    fabric-node-agent join HOST:PORT --token ID.SECRET.CAHASH [--name NAME] [--credential FILE]
        enrolls this host with the controller's join endpoint (fabric.join): the token's CA hash checked
        before anything is sent, a key made here, its certificate issued by the cluster CA; writes the
        node's credential file (0600), and starts the node's service where systemd runs it
    fabric-node-agent --name node-1 --state-dir DIR --clean-up FABRIC_ID [--libvirt URI]
        removes what that node left behind (its domains of that fabric, port filters, bridges,
        namespaces and their processes, all by exact name) and exits: `fabric lab down --purge`
        runs it for a node that died before it could power off
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from fabric.files import TRAVERSE_DIR, ensure_dir, log_to, make_parent
from fabric.join import NODE_NAME, NODE_NAME_RULE, JoinError, JoinToken, join
from fabric.hostinfo import host_memory_mb, source_address
from fabric.pki import Credential, PkiError
from nodeagent import diagnostics
from fabric.network import naming
from nodeagent.netsvc import relay
from nodeagent.netsvc.networks import Networks
from nodeagent.agent import AgentConfig, NodeAgent
from nodeagent.control import ControlPlane, ControlPlaneRefused, ControlPlaneUnavailable
from nodeagent.hypervisor import DriverError, LibvirtDriver
from nodeagent.images import IMAGE_KEEP_S
from nodeagent.storage_backends import QEMU_CONF, ensure_nbd_tls, qemu_nbd_tls_dir

log = logging.getLogger("nodeagent")
DEFAULT_CREDENTIAL = Path("/etc/fabriclab/node.json")
SERVICE = "fabriclab-node.service"


def join_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="fabric-node-agent join", description="Enroll this host as a node.")
    ap.add_argument("address", help="the controller's join endpoint, HOST:PORT (as join-token create prints it)")
    ap.add_argument("--token", default=os.environ.get("FABRIC_JOIN_TOKEN", ""),
                    help="ID.SECRET.CAHASH from `fabric node join-token create` (default $FABRIC_JOIN_TOKEN, "
                         "which other users of this host cannot read in the process list)")
    ap.add_argument("--name", default=socket.gethostname().split(".")[0].lower(),
                    help="this node's name (default: the host name, %(default)s)")
    ap.add_argument("--credential", type=Path, default=DEFAULT_CREDENTIAL,
                    help="where to write the node's credential (default %(default)s)")
    ap.add_argument("--no-start", action="store_true", help=f"do not start {SERVICE}")
    args = ap.parse_args(argv)
    if not args.token:
        ap.error("--token: required (or $FABRIC_JOIN_TOKEN)")
    if args.credential.exists():
        ap.error(f"--credential: {args.credential} exists: this host has joined already (remove the node with "
                 f"`fabric node remove`, and the file, to join again)")
    try:
        token = JoinToken.parse(args.token)
        credential = join(args.address, token, args.name)
    except JoinError as exc:
        sys.stderr.write(f"join: {exc}\n")
        return 1
    make_parent(args.credential)
    credential.save(args.credential)
    sys.stdout.write(f"node {args.name} enrolled in the cluster of CA sha256:{token.ca_hash[:16]}…; its credential "
                     f"is {args.credential}; the controller is {credential.controller}\n")
    if not args.no_start and Path("/run/systemd/system").is_dir() and \
            subprocess.run(["systemctl", "cat", SERVICE], capture_output=True, check=False).returncode == 0:
        subprocess.run(["systemctl", "enable", "--now", SERVICE], check=True)
        sys.stdout.write(f"started {SERVICE}\n")
    else:
        sys.stdout.write(f"start it: fabric-node-agent --credential {args.credential} --state-dir DIR\n")
    return 0


def make_state_dir(state_dir: Path) -> None:
    """The agent's folder, TRAVERSE_DIR (made, or tightened from an earlier run's 0755): qemu opens the
    resource disks below it, and dnsmasq, as nobody, its hosts files (see fabric.files)."""
    ensure_dir(state_dir, TRAVERSE_DIR)


def clean_up(uri: str, node: str, state_dir: Path, fabric_id: str) -> int:
    """What a node that died before powering off left: its domains (by the fabric and node in their
    metadata), then its networks (by the names recorded under its state folder)."""
    try:
        driver = LibvirtDriver(uri, node, fabric_id)
        for uuid in driver.instances():
            driver.destroy(uuid)
        driver.close()
    except DriverError as exc:
        log.warning("domains of %s not removed: %s", node, exc)
    if (state_dir / "networks").is_dir():
        Networks(state_dir, naming.node_tag(fabric_id, node)).teardown()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["join"]:
        return join_main(argv[1:])
    ap = argparse.ArgumentParser(prog="fabric-node-agent", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="", help="node name (default: the one in its credential)")
    ap.add_argument("--fault-domain", type=int, default=0)
    ap.add_argument("--state-dir", required=True, type=Path)
    ap.add_argument("--credential", type=Path,
                    help="this node's credential file (fabric.pki): its certificate (CN=node:NAME), the cluster "
                         "CA and the controller's address; required unless --clean-up")
    ap.add_argument("--controller", default="", help="the controller's node API address (default: the credential's)")
    ap.add_argument("--libvirt", default="qemu:///system", help="libvirt URI (test:///default for scale tests)")
    ap.add_argument("--hypervisor", choices=("auto", "kvm", "qemu"), default="auto",
                    help="domain type; auto boots a probe guest under KVM and falls back to qemu (TCG)")
    ap.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--memory-mb", type=int, default=host_memory_mb())
    ap.add_argument("--local-disk-mb", type=int, default=0, help="default: free space of the state folder")
    ap.add_argument("--diagnostics-listen", default="auto",
                    help="HTTPS address the controller fetches serial output from (default auto: the underlay "
                         "address, else 127.0.0.1, on a free port)")
    ap.add_argument("--underlay-ip", default="auto",
                    help="this host's address VXLAN tunnels use: auto (default) is the address it reaches the "
                         "controller from (none when that is loopback); empty: no VXLAN")
    ap.add_argument("--disk-access", choices=("nbd", "path"), default="nbd",
                    help="how VM disks are reached: nbd (default), exported by the storage host to this node over "
                         "NBD with TLS; path, opened by path (this host shares the storage host's folder: the lab)")
    ap.add_argument("--nbd-tls-dir", type=Path, default=Path("/etc/fabriclab/nbd-tls"),
                    help="where qemu finds this node's certificate for NBD (qemu.conf's nbd_tls_x509_cert_dir; "
                         "default %(default)s): written at start")
    ap.add_argument("--image-keep", type=float, default=IMAGE_KEEP_S, metavar="SECONDS",
                    help="an image file no VM of this node uses is kept this long after its last use "
                         "(default %(default)g)")
    ap.add_argument("--underlay-ns", default="", help="the namespace holding the underlay (the lab's; empty: root)")
    ap.add_argument("--power-off-on-exit", action="store_true",
                    help="on SIGTERM, destroy and undefine this node's domains (the lab does this)")
    ap.add_argument("--log-file", type=Path, help="log here, rotated at LOG_MAX_BYTES with LOG_BACKUPS kept, "
                                                  "with stdout and stderr (default: stderr)")
    ap.add_argument("--clean-up", metavar="FABRIC_ID", help="remove what this node of that fabric left, and exit")
    args = ap.parse_args(argv)
    if args.clean_up:
        if not NODE_NAME.match(args.name):
            ap.error(f"--name: {NODE_NAME_RULE}")
        log_to(args.log_file, f"%(asctime)s {args.name} %(levelname)s %(message)s")
        return clean_up(args.libvirt, args.name, args.state_dir, args.clean_up)
    if args.credential is None:
        ap.error("--credential: required (the node's credential file, which `fabric-node-agent join` writes)")
    try:
        credential = Credential.load(args.credential)
    except PkiError as exc:
        ap.error(f"--credential: {exc}")
    if args.disk_access == "nbd" and args.libvirt.startswith("qemu:///system") and \
            qemu_nbd_tls_dir() != str(args.nbd_tls_dir):
        ap.error(f"--disk-access nbd: {QEMU_CONF} must set nbd_tls_x509_cert_dir = \"{args.nbd_tls_dir}\" (it sets "
                 f"{qemu_nbd_tls_dir() or 'none'}): qemu takes the node's NBD certificate from there; "
                 f"deploy/install.sh node sets it (then restart libvirtd)")
    args.name = args.name or credential.identity.node
    log_to(args.log_file, f"%(asctime)s {args.name} %(levelname)s %(message)s")
    if credential.identity.node != args.name:
        ap.error(f"--credential: it is {credential.identity.name}'s, not node:{args.name}'s")
    make_state_dir(args.state_dir)
    local_disk_mb = args.local_disk_mb or shutil.disk_usage(args.state_dir).free // (1024 * 1024)
    plane = ControlPlane(credential, args.controller)
    if args.underlay_ip == "auto":
        args.underlay_ip = source_address(plane.address.rsplit(":", 1)[0].strip("[]"))
        log.info("underlay address %s (the one this host reaches %s from)", args.underlay_ip or "none",
                 plane.address)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fabric_id = ""
    while not fabric_id and not stop.is_set():
        try:
            fabric_id = plane.fabric().fabric_id
        except (ControlPlaneUnavailable, ControlPlaneRefused) as exc:
            log.warning("%s; retrying", exc)
            stop.wait(1.0)
    while args.disk_access == "nbd" and not stop.is_set():
        try:
            if ensure_nbd_tls(args.nbd_tls_dir, args.name, credential.ca, plane.issue_nbd):
                log.info("qemu's NBD certificate (nbd:%s) written to %s", args.name, args.nbd_tls_dir)
            break
        except (ControlPlaneUnavailable, ControlPlaneRefused) as exc:
            log.warning("NBD certificate: %s; retrying", exc)
            stop.wait(1.0)
    if stop.is_set():
        return 0
    try:
        driver = LibvirtDriver(args.libvirt, args.name, fabric_id)
    except DriverError as exc:
        log.error("%s; is libvirtd running? (deploy/install.sh starts it)", exc)
        return 1
    why = driver.choose_domain_type(args.hypervisor)
    log.info("domain type %s: %s", driver.hypervisor, why)

    agent: NodeAgent | None = None
    if args.diagnostics_listen == "auto":
        args.diagnostics_listen = f"{args.underlay_ip if args.underlay_ip and not args.underlay_ns else '127.0.0.1'}:0"
    srv = diagnostics.serve(args.diagnostics_listen, lambda: agent, credential)
    url = f"https://{srv.server_address[0]!s}:{srv.server_address[1]}"
    config = AgentConfig(node=args.name, fabric_id=fabric_id, fault_domain=args.fault_domain, state_dir=args.state_dir, cores=args.cores,
                         memory_mb=args.memory_mb, local_disk_mb=local_disk_mb, diagnostics_url=url,
                         underlay_ns=args.underlay_ns, underlay_ip=args.underlay_ip, disk_access=args.disk_access,
                         image_keep_s=args.image_keep)
    agent = NodeAgent(plane, driver, config)
    relay_srv = relay.serve_unix(agent.blob_relay_path, agent.blob_endpoint, credential.ssl_context(server=False))
    while not stop.is_set():
        try:
            agent.refresh_fabric()
            agent.registration.register()
            break
        except (ControlPlaneUnavailable, ControlPlaneRefused) as exc:
            log.warning("register: %s; retrying", exc)
            stop.wait(1.0)
    agent.run(stop)
    if args.power_off_on_exit:
        agent.power_off_all()
    try:
        agent.registration.deregister()
    except (ControlPlaneUnavailable, ControlPlaneRefused):
        pass
    plane.close()
    srv.shutdown()
    relay_srv.shutdown()
    log.info("node agent stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
