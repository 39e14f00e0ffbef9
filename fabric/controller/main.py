"""fabric-controller: serves the API and reconciles VM state; never calls libvirt.

    fabric-controller --etcd http://127.0.0.1:2379 --listen 127.0.0.1:7450 --credential FILE \\
        --gallery DIR --state-dir DIR [--blob-listen 127.0.0.1:7451] [--location local] [--log-file FILE]

The API is mutual TLS: the credential file (fabric.pki) holds the controller's certificate and the cluster
CA every caller's certificate must come from (fabric.arm.auth says which role may call what).

Stops cleanly on SIGTERM/SIGINT. Killed with SIGKILL it loses nothing: every
change it made is one etcd transaction, and on start it reconciles again.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path

import grpc

from fabric.arm import join_server
from fabric.arm.auth import Authorizer, server_credentials
from fabric.arm import server
from fabric.arm.deployment_server import Deployments
from fabric.arm.extension_server import VirtualMachineExtensions
from fabric.arm.network_server import add_network_servicers
from fabric.arm.image_server import add_image_servicers
from fabric.arm.node_server import MAX_NODE_STREAMS, NodeAgents, extend_node_leases
from fabric.arm.storage_server import add_storage_servicers
from fabric.compute.reconciler import Rechecks, Triggers, VmReconciler
from fabric.compute.vms import ComputeConfig, ComputeProvider
from fabric.controller import retention
from fabric.controller.leader import Election, lead_when_elected
from fabric.core.errors import ArmError
from fabric.core.workqueue import WorkQueue
from fabric.deployments.engine import DeploymentProvider
from fabric.files import TRAVERSE_DIR, ensure_dir, log_to
from fabric.gallery import Gallery
from fabric.model import BlobService
from fabric.network import naming
from fabric.network.provider import DEFAULT_FABRIC_DOMAIN, NetworkConfig, NetworkProvider
from fabric.enrollment import Enrollment
from fabric.pki import Authority, Credential, PkiError
from fabric.storage import dataplane
from fabric.storage.nbd import NbdError, NbdExports, withdraw_unassigned
from fabric.storage.provider import StorageConfig, StorageProvider
from fabric.storage.tls_front import TlsFront
from fabric.store import Store, StoreUnavailable, Watch, keys
from fabric.v1 import deployment_pb2_grpc as drpc
from fabric.v1 import fabric_pb2_grpc as rpc
from fabric.v1 import node_pb2_grpc as node_rpc

log = logging.getLogger("fabric.controller")

DEFAULT_LISTEN = "127.0.0.1:7450"
DEFAULT_BLOB_LISTEN = "127.0.0.1:7451"
RECONCILE_INTERVAL_S = 2.0
RESYNC_S = 1.0              # how often to look for VMs in progress due a recheck (their timeouts: Rechecks)
DEPLOYMENT_PASS_S = 0.2
ETCD_WAIT_S = 30.0
# a client gone without a word (a half-open connection) is found within about 30 s, its stream's thread freed
KEEPALIVE = [("grpc.keepalive_time_ms", 20_000), ("grpc.keepalive_timeout_ms", 10_000),
             ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.min_ping_interval_without_data_ms", 5_000)]
GRPC_WORKERS = 64       # for calls; each node agent's assignment watch holds one more while the node runs (node_server)


def build_server(store: Store, compute: ComputeProvider, listen: str, credential: Credential,
                 enrollment: Enrollment | None = None, join_address: str = "",
                 exports: NbdExports | None = None, node_blob_endpoint: str = "") -> grpc.Server:
    """The API on `listen`, mutual TLS with the controller's credential; each call checked by its role."""
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=GRPC_WORKERS + MAX_NODE_STREAMS), interceptors=[Authorizer()],
                      options=KEEPALIVE)
    add_storage_servicers(srv, compute.storage, compute.config.subscription)
    add_network_servicers(srv, compute.network)
    add_image_servicers(srv, compute.gallery, compute.storage)
    rpc.add_ResourceGroupsServicer_to_server(server.ResourceGroups(store, compute), srv)
    node_tls = credential.ssl_context(server=False)
    node_tls.check_hostname = False         # a node is checked by the name in its certificate (server._serial)
    rpc.add_VirtualMachinesServicer_to_server(server.VirtualMachines(store, compute, node_tls), srv)
    rpc.add_VirtualMachineExtensionsServicer_to_server(VirtualMachineExtensions(store, compute), srv)
    drpc.add_DeploymentsServicer_to_server(Deployments(DeploymentProvider(compute)), srv)
    rpc.add_OperationsServicer_to_server(server.Operations(store, compute), srv)
    rpc.add_NodesServicer_to_server(server.Nodes(store, enrollment or Enrollment(store, None), join_address, exports),
                                    srv)
    node_rpc.add_NodeAgentsServicer_to_server(
        NodeAgents(store, f"https://{join_address}" if join_address else "", exports, enrollment, node_blob_endpoint),
        srv)
    srv.add_secure_port(listen, server_credentials(credential))
    return srv


def _join_address(join_listen: str, advertise: str) -> str:
    """The join endpoint as nodes dial it: its port on the advertised host when it listens on every address."""
    host, port = join_listen.rsplit(":", 1)
    if host in ("0.0.0.0", "[::]", "::", ""):
        host = advertise.rsplit(":", 1)[0]
    return f"{host}:{port}"


def make_state_dir(state_dir: Path) -> Path:
    """The controller's folder and its blob root, TRAVERSE_DIR (made, or tightened from an earlier run's
    0755): qemu, as libvirt's user, opens OS and data disk bodies below them by path. Returns the blob root."""
    ensure_dir(state_dir, TRAVERSE_DIR)
    return ensure_dir(state_dir / "blobs", TRAVERSE_DIR)


def subscription_id(store: Store) -> str:
    deadline = time.monotonic() + ETCD_WAIT_S
    while True:
        try:
            return store.put_raw_if_absent(keys.SUBSCRIPTION, str(uuid.uuid4()))
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the providers are made of, besides the store."""
    subscription: str
    location: str
    domain: str
    gallery: Path
    blob_root: Path
    blob_endpoint: str
    extension_timeout_s: int


def providers(store: Store, s: Settings) -> ComputeProvider:
    """The providers over a store: the API's, and each leader term's over its fenced store."""
    storage = StorageProvider(store, StorageConfig(s.blob_root, s.location, s.blob_endpoint, s.domain))
    network = NetworkProvider(store, NetworkConfig(s.subscription, s.location, s.domain))
    return ComputeProvider(store, Gallery(s.gallery), storage, network,
                           ComputeConfig(s.subscription, s.location, s.extension_timeout_s))


def reconcile_forever(store: Store, compute: ComputeProvider, stop: threading.Event,
                      retention_s: float = retention.DEFAULT_RETENTION_S, source: str = "controller") -> None:
    """The background work (the leader's), until `stop`: each VM when something that concerns it changes
    (a work queue fed by the watch-fed views), the VMs with work in progress from time to time (Rechecks),
    deployments on every change to them or their VMs (at most every DEPLOYMENT_PASS_S) and every
    RECONCILE_INTERVAL_S, retention every COLLECT_EVERY_S."""
    queue = WorkQueue()
    rechecks = Rechecks()
    reconciler = triggers = None
    deployments = DeploymentProvider(compute)
    collected = resynced = deployed = 0.0
    changed = threading.Event()                   # a deployment or a VM changed

    def vm_changed(_: str) -> None:
        changed.set()
    watch: Watch | None = None
    while not stop.is_set():
        try:
            if reconciler is None:
                reconciler = VmReconciler(store, compute, source=source)
                triggers = Triggers(reconciler, queue)
                reconciler.vms.on_change(vm_changed)
            if watch is None or watch.broken:
                watch = store.watch_prefix(keys.DEPLOYMENTS, changed.set)
            key = queue.get(timeout_s=0.2)
            if key is not None:
                ok = False
                try:
                    reconciler.reconcile_key(key)
                    ok = True
                except ArmError as exc:
                    log.warning("reconcile %s: %s (tried again later)", key, exc.message)
                finally:
                    queue.done(key, ok)
            now = time.monotonic()
            if now - resynced > RESYNC_S:
                for k in rechecks.due(reconciler.in_progress(), now):
                    queue.add(k)
                resynced = now
            if (changed.is_set() and now - deployed > DEPLOYMENT_PASS_S) or now - deployed > RECONCILE_INTERVAL_S:
                changed.clear()
                deployments.reconcile_all()
                deployed = now
            if now - collected > retention.COLLECT_EVERY_S:
                retention.collect(store, retention_s)
                collected = now
        except StoreUnavailable as exc:
            log.warning("reconcile: %s", exc)
            stop.wait(0.5)
        except Exception:  # noqa: BLE001 - the loop must outlive one bad record
            log.exception("reconcile failed")
            stop.wait(0.5)
    if reconciler is not None and triggers is not None:
        triggers.close()
        reconciler.vms.remove_listener(vm_changed)
    if watch is not None:
        watch.cancel()


def withdraw_forever(store: Store, exports: NbdExports, stop: threading.Event) -> None:
    """Every controller withdraws its own disk exports no assignment names any more (not only the leader: each
    keeps the exports it granted)."""
    while not stop.wait(RECONCILE_INTERVAL_S):
        try:
            for node, name in withdraw_unassigned(store, exports):
                log.info("export %s withdrawn from node %s: no VM of it needs the disk", name, node)
        except (StoreUnavailable, NbdError) as exc:
            log.warning("exports: %s", exc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fabric-controller", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--etcd", default="http://127.0.0.1:2379",
                    help="etcd client URLs, comma-separated: https:// with --etcd-credential")
    ap.add_argument("--etcd-credential", type=Path,
                    help="the controller's etcd client credential (a certificate of etcd's CA; fabric.lab.etcd)")
    ap.add_argument("--listen", default=DEFAULT_LISTEN, help="gRPC address (default %(default)s)")
    ap.add_argument("--gallery", required=True, type=Path, help="image gallery folder")
    ap.add_argument("--location", default="local", help="the location this fabric serves (default %(default)s)")
    ap.add_argument("--domain", default=DEFAULT_FABRIC_DOMAIN,
                    help="the fabric's DNS domain: VMs are NAME.<hash>.internal.DOMAIN (default %(default)s)")
    ap.add_argument("--state-dir", required=True, type=Path, help="the controller's folder (blob bodies live here)")
    ap.add_argument("--blob-listen", default=DEFAULT_BLOB_LISTEN,
                    help="HTTP address of the blob data plane (default %(default)s)")
    ap.add_argument("--operation-retention-hours", type=float, default=retention.DEFAULT_RETENTION_S / 3600,
                    help="finished operations and their traces are kept this long (default %(default)g), longer "
                         "while a resource names them as its last operation")
    ap.add_argument("--extension-timeout", type=int, default=300, metavar="SECONDS",
                    help="how long the guest agent lets an extension's command run (default %(default)s)")
    ap.add_argument("--credential", required=True, type=Path,
                    help="the controller's credential file: its certificate for the API's TLS (naming the "
                         "addresses clients dial) and the cluster CA clients must present certificates from "
                         "(fabric lab up writes one)")
    ap.add_argument("--name", default=socket.gethostname().split(".")[0],
                    help="this controller's name, in the leader election and the traces (default %(default)s)")
    ap.add_argument("--ca-dir", type=Path,
                    help="the folder of the cluster CA (ca.pem, and ca.key readable by root only): with it this "
                         "controller enrolls nodes that join with a token")
    ap.add_argument("--join-listen", default="",
                    help="HTTPS address of the join endpoint (with --ca-dir; default: the API's port + 2)")
    ap.add_argument("--advertise", default="",
                    help="the API address nodes and users dial (default --listen); the controller's "
                         "certificate must name its host")
    ap.add_argument("--blob-tls-listen", default="",
                    help="HTTPS address of the blob data plane, for nodes and clients on other hosts (default: the "
                         "API's port + 3)")
    ap.add_argument("--storage-address", default="",
                    help="the address nodes reach this host's disk exports at (NBD; default: --advertise's host)")
    ap.add_argument("--log-file", type=Path, help="log here, rotated at LOG_MAX_BYTES with LOG_BACKUPS kept, "
                                                  "with stdout and stderr (default: stderr)")
    args = ap.parse_args(argv)
    log_to(args.log_file, "%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        credential = Credential.load(args.credential)
    except PkiError as exc:
        log.error("--credential: %s", exc)
        return 1
    if args.listen.rsplit(":", 1)[0].strip("[]") in ("0.0.0.0", "::", "") and not args.advertise:
        log.error("--listen %s: every address; give --advertise HOST:PORT, the address nodes and users dial",
                  args.listen)
        return 1

    ca = None
    if args.ca_dir:
        try:
            ca = Authority.load(args.ca_dir)
        except PkiError as exc:
            log.error("--ca-dir: %s", exc)
            return 1
        if ca.cert_pem.decode() != credential.ca:
            log.error("--ca-dir: its CA is not the one that issued --credential")
            return 1
    try:
        store = Store(args.etcd, tls=Credential.load(args.etcd_credential) if args.etcd_credential else None)
    except (PkiError, ValueError) as exc:
        log.error("--etcd/--etcd-credential: %s", exc)
        return 1
    try:
        sub = subscription_id(store)
    except StoreUnavailable as exc:
        log.error("%s; start etcd first (fabric lab up starts one)", exc)
        return 1
    host, port = args.blob_listen.rsplit(":", 1)
    settings = Settings(sub, args.location, args.domain, args.gallery, make_state_dir(args.state_dir),
                        f"http://{host}:{port}", args.extension_timeout)
    compute = providers(store, settings)
    storage = compute.storage
    blob_srv = dataplane.serve(args.blob_listen, storage)
    store.put(keys.BLOB_SERVICE, BlobService(endpoint=storage.config.endpoint, domain=args.domain,
                                             stamp_host=naming.blob_stamp_host(args.location, args.domain)))
    enrollment = Enrollment(store, ca)
    advertise = args.advertise or args.listen
    api_host, api_port = args.listen.rsplit(":", 1)
    join_srv, join_address = None, ""
    if ca is not None:
        join_listen = args.join_listen or f"{api_host}:{int(api_port) + 2}"
        join_srv = join_server.serve(join_listen, enrollment, credential, advertise, compute.gallery)
        join_address = _join_address(join_listen, advertise)
        log.info("join endpoint on https://%s (cluster CA %s)", join_listen, ca.fingerprint)
    storage_address = args.storage_address or advertise.split(",")[0].rsplit(":", 1)[0].strip("[]")
    exports = NbdExports(settings.blob_root.parent / "nbd", storage_address, credential,
                         enrollment.revocation_list if ca else None)
    blob_tls_listen = args.blob_tls_listen or f"{api_host}:{int(api_port) + 3}"
    blob_front = TlsFront(blob_tls_listen, args.blob_listen, credential).start()
    node_blob = f"https://{storage_address}:{blob_tls_listen.rsplit(':', 1)[1]}"
    log.info("blob data plane over TLS on %s (nodes use %s)", blob_tls_listen, node_blob)
    srv = build_server(store, compute, args.listen, credential, enrollment, join_address, exports, node_blob)
    srv.start()
    log.info("blob data plane on %s", storage.config.endpoint)
    log.info("controller serving %s on %s (subscription %s, location %s)", "fabric.v1", args.listen, sub,
             args.location)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def background(fenced: Store, deposed: threading.Event) -> None:
        log.info("renewed the leases of %d registered nodes: they reconnect to this controller",
                 extend_node_leases(fenced))
        reconcile_forever(fenced, providers(fenced, settings), deposed, args.operation_retention_hours * 3600,
                          source=f"controller/{args.name}")

    threading.Thread(target=withdraw_forever, args=(store, exports, stop), name="exports", daemon=True).start()
    election = threading.Thread(target=lead_when_elected, args=(Election(store, args.name), stop, background),
                                name="election", daemon=True)
    election.start()
    stop.wait()
    election.join()                    # the background work ended, the lease revoked: another may lead now
    srv.stop(grace=2).wait()
    blob_srv.shutdown()
    blob_front.shutdown()
    if join_srv is not None:
        join_srv.shutdown()
    log.info("controller stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
