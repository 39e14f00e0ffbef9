"""The node API (proto/fabric/v1/node.proto): the only way a node agent reaches the control plane's state.

Every call is for the node named by the caller's certificate (`fabric.pki`, O=nodes, CN=node:NAME), and is
checked for node restriction: a node registers and heartbeats only itself, reads
only its own assignments and the networks of the VMs assigned to it (their reservations and peers; the names
of the storage accounts, never their keys), reports only on the VMs assigned to it, and writes trace steps
only into the operations those VMs (or their extensions) are carrying out. A refusal is PERMISSION_DENIED
and names the rule.
"""
from __future__ import annotations

import dataclasses
import functools
import ipaddress
import threading
from pathlib import Path
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc

from fabric.arm.auth import peer_certificate
from fabric.core.errors import ArmError
from fabric.enrollment import Enrollment
from fabric.storage.nbd import NbdError, NbdExports
from fabric.core.constants import NODE_LEASE_TTL_S
from fabric.model import Assignment, BlobService, NodeRecord, Observed, Record
from fabric.network import naming
from fabric.network.model import NicRecord
from fabric.operations import record_step, running
from fabric.pki import NODES, PkiError, identity_of
from fabric.storage.model import StorageAccountRecord
from fabric.store import Put, Store, StoreUnavailable, Unchanged, keys
from fabric.store.informer import Informer, informed
from fabric.v1 import node_pb2 as pb
from fabric.v1 import node_pb2_grpc as rpc

WATCH_RESYNC_S = 30.0      # a watch stream sends its snapshot at least this often (a change missed is healed)
MAX_NODE_STREAMS = 1_000   # nodes whose assignment streams one controller serves (a worker thread each)
REPORT_ATTEMPTS = 3
F = TypeVar("F", bound=Callable[..., Any])


def extend_node_leases(store: Store) -> int:
    """At a controller's start: renew every registered node's lease once. Nodes renew theirs through this API,
    so they could not while no controller ran; this gives each a full NODE_LEASE_TTL_S to reconnect before the
    fabric counts it as gone. A lease that expired during the outage stays expired. Returns how many."""
    renewed = 0
    for n in store.list(keys.NODES, NodeRecord):
        lease = store.lease_of(n.key)
        if lease and store.refresh_lease(lease) > 0:
            renewed += 1
    return renewed


R = TypeVar("R", bound=Record)


def _etcd_unavailable(fn: F) -> F:
    """etcd away: UNAVAILABLE (the node tries again), not an internal error."""
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    return wrapper  # type: ignore[return-value]


def _check_record(rec: NodeRecord, context: grpc.ServicerContext) -> None:
    """What the controller will use of a node's record: its diagnostics URL (fetched for serial output) must be
    https to an address literal and a port; its underlay address an IP address or empty."""
    url = urlsplit(rec.diagnostics_url)
    try:
        ipaddress.ip_address(url.hostname or "")
        ok = url.scheme == "https" and url.port is not None and url.path in ("", "/") and not url.query
    except ValueError:
        ok = False
    if rec.diagnostics_url and not ok:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f"diagnostics_url {rec.diagnostics_url!r}: https://ADDRESS:PORT, the address an IP literal")
    try:
        if rec.underlay_ip:
            ipaddress.IPv4Address(rec.underlay_ip)
    except ValueError:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"underlay_ip {rec.underlay_ip!r}: an IPv4 address")


def _record(cls: type[R], raw: bytes, context: grpc.ServicerContext) -> R:
    try:
        return cls.from_json(raw)
    except (ValueError, TypeError) as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"not a {cls.__name__}: {exc}")
        raise


@dataclasses.dataclass(frozen=True)
class NetworkIndex:
    """Per network, the nodes holding a VM of it (with their underlay addresses), and per virtual network its
    attached NICs: what every node's network view is made of, computed once per change of the views."""
    revisions: tuple[int, ...]
    nodes_of: dict[int, dict[str, str]]          # vni -> node -> underlay address (nodes without one left out)
    attached: dict[str, list[NicRecord]]         # vnet key -> its NICs attached to a VM

    @classmethod
    def of(cls, revisions: tuple[int, ...], assignments: Informer[Assignment], nodes: Informer[NodeRecord],
           nics: Informer[NicRecord]) -> NetworkIndex:
        ips = {n.value.name: n.value.underlay_ip for n in nodes.list()}
        nodes_of: dict[int, dict[str, str]] = {}
        for a in (v.value for v in assignments.list()):
            if a.on_node and ips.get(a.node):
                for n in a.nics:
                    nodes_of.setdefault(n.vni, {})[a.node] = ips[a.node]
        attached: dict[str, list[NicRecord]] = {}
        for x in (v.value for v in nics.list()):
            if x.vm_id:
                attached.setdefault(x.vnet, []).append(x)
        return cls(revisions, nodes_of, attached)


class NodeAgents(rpc.NodeAgentsServicer):
    def __init__(self, store: Store, gallery_endpoint: str = "", exports: NbdExports | None = None,
                 enrollment: Enrollment | None = None, blob_endpoint: str = "") -> None:
        """`blob_endpoint`: where nodes send their guests' blob requests (the data plane's TLS front), when it
        is not the data plane's own address."""
        self.store = store
        self.blob_endpoint = blob_endpoint
        self.enrollment = enrollment or Enrollment(store, None)
        self.gallery_endpoint = gallery_endpoint
        self.exports = exports          # this controller's host keeps the disk blobs and exports them
        self._streams: dict[str, Callable[[], None]] = {}   # node -> how to end its open watch stream
        self._lock = threading.Lock()
        self._index: NetworkIndex | None = None

    def _node(self, context: grpc.ServicerContext, fresh: bool = False) -> str:
        """The node whose certificate made this call: the one certificate its enrollment names (`fresh`: read
        from the store, not the view: the caller's own watch saw the enrollment change, maybe before the view
        did)."""
        cert = peer_certificate(context)
        try:
            who = identity_of(cert) if cert is not None else None
        except PkiError:
            who = None
        if who is None or who.role != NODES or not who.node:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "the node API is for node certificates (CN=node:NAME)")
            return ""
        serial = f"{cert.serial_number:x}" if cert is not None else ""
        if not self.enrollment.holds(who.node, serial, fresh):
            context.abort(grpc.StatusCode.UNAUTHENTICATED,
                          f"node {who.node}'s certificate {serial} is not enrolled in this cluster: the node was "
                          f"removed (fabric node remove), or it joined again with another certificate")
        return who.node

    def _assignments(self, node: str, fresh: bool = False) -> list[Assignment]:
        """The node's assignments, from the watch-fed view (`fresh`: from the store: the node's own watch may
        have told it of one the view has not applied yet)."""
        if fresh:
            return [v.value for v in self.store.list(keys.assignments_of(node), Assignment)]
        return [v.value for v in informed(self.store, keys.ASSIGNMENTS, Assignment).under(keys.assignments_of(node))]

    def _network_index(self) -> NetworkIndex:
        """Who holds which network, from the views, computed again only when one of them changed."""
        views = (informed(self.store, keys.ASSIGNMENTS, Assignment), informed(self.store, keys.NODES, NodeRecord),
                 informed(self.store, keys.NICS, NicRecord))
        revisions = tuple(v.revision for v in views)
        with self._lock:
            if self._index is None or self._index.revisions != revisions:
                self._index = NetworkIndex.of(revisions, *views)
            return self._index

    def _deny(self, context: grpc.ServicerContext, message: str) -> None:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, message)

    @_etcd_unavailable
    def GetFabric(self, request: pb.NodeEmpty, context: grpc.ServicerContext) -> pb.FabricInfo:
        self._node(context)
        blob = self.store.get(keys.BLOB_SERVICE, BlobService)
        return pb.FabricInfo(fabric_id=self.store.fabric_id(),
                             blob_endpoint=self.blob_endpoint or (blob.value.endpoint if blob else ""),
                             gallery_endpoint=self.gallery_endpoint)

    @_etcd_unavailable
    def Register(self, request: pb.RegisterNodeRequest, context: grpc.ServicerContext) -> pb.NodeLease:
        node = self._node(context)
        rec = _record(NodeRecord, request.record, context)
        if rec.name != node:
            self._deny(context, f"node {node} may not register node {rec.name}")
        _check_record(rec, context)
        previous = self.store.lease_of(keys.node(node))
        lease = self.store.grant_lease(NODE_LEASE_TTL_S)
        self.store.put(keys.node(node), rec, lease=lease)
        if previous:
            self.store.revoke_lease(previous)
        return pb.NodeLease(lease_id=lease, ttl_s=NODE_LEASE_TTL_S)

    def _own_lease(self, node: str, lease_id: int, context: grpc.ServicerContext) -> bool:
        """Whether the lease is the one this node's record lives under (False: expired, register again)."""
        held = self.store.lease_of(keys.node(node))
        if held is None:
            return False
        if held != lease_id:
            self._deny(context, f"lease {lease_id:x} is not the lease of node {node}")
        return True

    @_etcd_unavailable
    def Heartbeat(self, request: pb.LeaseRef, context: grpc.ServicerContext) -> pb.NodeLease:
        node = self._node(context)
        if not self._own_lease(node, request.lease_id, context):
            return pb.NodeLease(lease_id=request.lease_id, ttl_s=0)
        return pb.NodeLease(lease_id=request.lease_id, ttl_s=self.store.refresh_lease(request.lease_id))

    @_etcd_unavailable
    def Deregister(self, request: pb.LeaseRef, context: grpc.ServicerContext) -> pb.NodeEmpty:
        node = self._node(context)
        if self._own_lease(node, request.lease_id, context):
            self.store.revoke_lease(request.lease_id)
        return pb.NodeEmpty()

    def _snapshot(self, node: str) -> pb.AssignmentsSnapshot:
        # the records as stored (the controller wrote them): passed on without decoding them here
        return pb.AssignmentsSnapshot(assignments=[v for _, v in self.store.raw_items(keys.assignments_of(node))])

    @_etcd_unavailable
    def ListAssignments(self, request: pb.NodeEmpty, context: grpc.ServicerContext) -> pb.AssignmentsSnapshot:
        return self._snapshot(self._node(context))

    def WatchAssignments(self, request: pb.WatchAssignmentsRequest,
                         context: grpc.ServicerContext) -> Iterator[pb.AssignmentsSnapshot]:
        """The node's assignments now, and again after every change to them (and every WATCH_RESYNC_S). The
        stream holds one of the controller's worker threads while the node runs (the server is synchronous),
        asleep until something concerning the node happens: MAX_NODE_STREAMS bounds how many nodes one controller
        serves (one more is refused RESOURCE_EXHAUSTED, and its agent reads its assignments at each pass)."""
        try:
            node = self._node(context)
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            return
        changed, ended = threading.Event(), threading.Event()

        def end() -> None:
            ended.set()
            changed.set()
        with self._lock:                              # one stream per node: a newer one ends this one
            if node in self._streams:
                self._streams.pop(node)()
            elif len(self._streams) >= MAX_NODE_STREAMS:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"this controller serves the assignment streams of {MAX_NODE_STREAMS} nodes already; "
                              f"add a controller (fabric cluster add-controller) for more")
            self._streams[node] = end
        context.add_callback(end)                     # the node went away: stop waiting
        enrollment_changed = threading.Event()
        enrollment_changed.set()                      # checked again once the watches exist (a removal between)

        def enrollment_change() -> None:
            enrollment_changed.set()
            changed.set()

        watches = []
        try:
            # its assignments, and its enrollment: a removed node's stream ends at once
            watches.append(self.store.watch_prefix(keys.assignments_of(node), changed.set))
            watches.append(self.store.watch_prefix(keys.enrollment(node), enrollment_change))
            while context.is_active() and not any(w.broken for w in watches) and not ended.is_set():
                changed.clear()
                try:
                    if enrollment_changed.is_set():
                        enrollment_changed.clear()
                        self._node(context, fresh=True)   # still enrolled (else the stream ends UNAUTHENTICATED)
                    snapshot = self._snapshot(node)
                except StoreUnavailable as exc:
                    context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
                yield snapshot
                if not changed.wait(WATCH_RESYNC_S):  # a change, a broken watch (its callback), the end
                    enrollment_changed.set()          # and at every resync
        except StoreUnavailable as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            for w in watches:
                w.cancel()
            with self._lock:
                if self._streams.get(node) is end:
                    del self._streams[node]

    @_etcd_unavailable
    def GetNetworkView(self, request: pb.NetworkViewRequest, context: grpc.ServicerContext) -> pb.NetworkView:
        """Served from the views: what a node asks every few seconds reads nothing from etcd."""
        node = self._node(context)
        asked = set(request.vnis)
        if not asked:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "vnis: at least one network")
        mine = {n.vni: n.vnet for a in self._assignments(node) if a.on_node for n in a.nics}
        if asked - set(mine):
            mine = {n.vni: n.vnet for a in self._assignments(node, fresh=True) if a.on_node for n in a.nics}
        if asked - set(mine):
            self._deny(context, f"node {node} runs no VM in network(s) {sorted(asked - set(mine))}")
        index = self._network_index()
        blob = self.store.get(keys.BLOB_SERVICE, BlobService)
        accounts = [a.key.rsplit("/", 1)[1] for a in informed(self.store, keys.STORAGE_ACCOUNTS,
                                                                StorageAccountRecord).list()]
        return pb.NetworkView(
            networks=[pb.NetworkPeers(vni=vni, peers=sorted(ip for n, ip in index.nodes_of.get(vni, {}).items()
                                                            if n != node),
                                      dns_hosts=[pb.DnsHost(mac=x.mac, ip=x.private_ip, name=x.vm_name)
                                                 for x in index.attached.get(mine[vni], ())])
                      for vni in sorted(asked)],
            blob_names=[naming.blob_host(a, blob.value.domain) for a in sorted(accounts)] if blob else [],
            blob_stamp=blob.value.stamp_host if blob else "")

    @_etcd_unavailable
    def ReportObserved(self, request: pb.ReportRequest, context: grpc.ServicerContext) -> pb.NodeEmpty:
        """Written only while the assignment it reports on is unchanged (one transaction): a report racing a
        delete or a move cannot bring back an observation the controller removed."""
        node = self._node(context)
        obs = _record(Observed, request.observed, context)
        if obs.node != node:
            self._deny(context, f"node {node} may not report for node {obs.node}")
        view = informed(self.store, keys.ASSIGNMENTS, Assignment)
        for attempt in range(REPORT_ATTEMPTS):
            key = keys.assignment(node, obs.vm_id)
            assigned = (view.get(key) if attempt == 0 else None) or self.store.get(key, Assignment)
            if assigned is None:
                self._deny(context, f"VM {obs.vm_id} is not assigned to node {node}")
                break
            if self.store.commit([Unchanged(assigned.key, assigned.mod_revision)],
                                 [Put(keys.observed(node, obs.vm_id), obs)]):
                return pb.NodeEmpty()
        context.abort(grpc.StatusCode.ABORTED, f"VM {obs.vm_id}'s assignment kept changing; report again")
        return pb.NodeEmpty()

    def _check_operation(self, node: str, op_id: str, context: grpc.ServicerContext) -> None:
        def ours(fresh: bool) -> set[str]:
            return {x for a in self._assignments(node, fresh) for x in (a.operation_id,
                                                                        *(e.operation_id for e in a.extensions))}
        if op_id not in ours(False) and op_id not in ours(True):
            self._deny(context, f"operation {op_id} is not carried out by a VM of node {node}")

    @_etcd_unavailable
    def RecordStep(self, request: pb.StepRequest, context: grpc.ServicerContext) -> pb.NodeEmpty:
        node = self._node(context)
        self._check_operation(node, request.operation_id, context)
        record_step(self.store, request.operation_id, node, request.name, request.message, detail=request.detail)
        return pb.NodeEmpty()

    @_etcd_unavailable
    def GetOperationState(self, request: pb.OperationRef, context: grpc.ServicerContext) -> pb.OperationState:
        node = self._node(context)
        self._check_operation(node, request.id, context)
        return pb.OperationState(running=running(self.store, request.id) is not None)

    @_etcd_unavailable
    def OpenDisk(self, request: pb.DiskRequest, context: grpc.ServicerContext) -> pb.DiskExport:
        """Export a disk to the caller: only a disk of a VM assigned to it (and on it: not deallocated)."""
        node = self._node(context)
        assigned = self.store.get(keys.assignment(node, request.vm_id), Assignment)
        if assigned is None or not assigned.value.on_node:
            self._deny(context, f"VM {request.vm_id} is not assigned to node {node}")
            return pb.DiskExport()
        a = assigned.value
        ref = next((r for r in (a.os_disk, *(d.ref for d in a.data_disks)) if r.uri == request.uri), None)
        if ref is None:
            self._deny(context, f"disk {request.uri} is not a disk of VM {request.vm_id}")
            return pb.DiskExport()
        if self.exports is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, "this controller exports no disks over the network")
        assert self.exports is not None
        try:
            e = self.exports.grant(node, Path(ref.path))
        except NbdError as exc:       # e.g. another writer holds the disk: retried, on this controller
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        return pb.DiskExport(host=e.host, port=e.port, name=e.name)

    @_etcd_unavailable
    def IssueNbdCertificate(self, request: pb.CertificateRequest,
                            context: grpc.ServicerContext) -> pb.IssuedCertificate:
        node = self._node(context)
        try:
            cert = self.enrollment.issue_nbd(node, request.csr)
        except ArmError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT if exc.code == "InvalidParameter"
                          else grpc.StatusCode.FAILED_PRECONDITION, exc.message)
            raise
        ca = self.enrollment.ca
        return pb.IssuedCertificate(certificate=cert, ca=ca.cert_pem.decode() if ca else "")
