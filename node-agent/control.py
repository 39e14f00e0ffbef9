"""The node agent's client of the control plane: the node API (proto/fabric/v1/node.proto) over mutual TLS
with this node's credential. The agent never talks to etcd; everything it reads or writes of the fabric's
state goes through here, and the control plane checks each call against this node's certificate.

A call that cannot reach the control plane raises `ControlPlaneUnavailable`: the agent keeps its VMs as they
are and tries again (a node outlives a control plane restart).
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from fabric.model import Assignment, NodeRecord, Observed
from fabric.pki import Credential
from fabric.v1 import node_pb2 as pb
from fabric.v1 import node_pb2_grpc as rpc

log = logging.getLogger("nodeagent")
T = TypeVar("T")
CALL_TIMEOUT_S = 10.0
WATCH_STALE_S = 75.0     # the control plane sends a snapshot at least every 30 s: silence this long is a dead stream
# back within a second or two of the control plane's return (gRPC's default backoff grows to 2 minutes, longer
# than a node's lease), and a control plane gone without a word is noticed by keepalive pings
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 500), ("grpc.min_reconnect_backoff_ms", 500),
                   ("grpc.max_reconnect_backoff_ms", 2_000), ("grpc.keepalive_time_ms", 20_000),
                   ("grpc.keepalive_timeout_ms", 10_000), ("grpc.keepalive_permit_without_calls", 1)]


class ControlPlaneUnavailable(Exception):
    pass


class ControlPlaneRefused(Exception):
    """The control plane refused the call (this node may not do that): a bug or a revoked node, not a blip."""


class ControlPlane:
    """The node API of one controller of several (`address`: HOST:PORT[,HOST:PORT...], default the
    credential's); when the one in use is unavailable, the next call goes to the next."""

    def __init__(self, credential: Credential, address: str = "") -> None:
        self.credential = credential
        self.addresses = (address or credential.controller).split(",")
        self.node = credential.identity.node
        self._lock = threading.Lock()
        self._at = 0
        self.address = self.addresses[0]
        self.channel = credential.channel(self.address, CHANNEL_OPTIONS)
        self.stub = rpc.NodeAgentsStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def _next_controller(self, failed: grpc.Channel) -> None:
        """Move to the next controller (once per failure: a call on a channel already replaced moves nothing)."""
        with self._lock:
            if len(self.addresses) == 1 or failed is not self.channel:
                return
            self._at = (self._at + 1) % len(self.addresses)
            self.address = self.addresses[self._at]
            self.channel = self.credential.channel(self.address, CHANNEL_OPTIONS)
            self.stub = rpc.NodeAgentsStub(self.channel)
        failed.close()
        log.warning("control plane: now calling %s", self.address)

    def _call(self, fn: Callable[[], T]) -> T:
        channel, address = self.channel, self.address
        try:
            return fn()
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.UNAUTHENTICATED):
                raise ControlPlaneRefused(f"the control plane at {address} refused: {exc.details()}") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                self._next_controller(channel)
            raise ControlPlaneUnavailable(f"the control plane at {address}: {code.name} "
                                          f"({exc.details()})") from None

    def fabric(self) -> pb.FabricInfo:
        info: pb.FabricInfo = self._call(lambda: self.stub.GetFabric(pb.NodeEmpty(), timeout=CALL_TIMEOUT_S))
        return info

    def register(self, record: NodeRecord) -> int:
        reply = self._call(lambda: self.stub.Register(pb.RegisterNodeRequest(record=record.to_json().encode()),
                                                      timeout=CALL_TIMEOUT_S))
        return int(reply.lease_id)

    def heartbeat(self, lease_id: int) -> int:
        """The TTL left on the node's lease; 0 or less: it expired, register again."""
        reply = self._call(lambda: self.stub.Heartbeat(pb.LeaseRef(lease_id=lease_id), timeout=CALL_TIMEOUT_S))
        return int(reply.ttl_s)

    def deregister(self, lease_id: int) -> None:
        self._call(lambda: self.stub.Deregister(pb.LeaseRef(lease_id=lease_id), timeout=CALL_TIMEOUT_S))

    def assignments(self) -> list[Assignment]:
        """This node's assignments now."""
        snap = self._call(lambda: self.stub.ListAssignments(pb.NodeEmpty(), timeout=CALL_TIMEOUT_S))
        return [Assignment.from_json(raw) for raw in snap.assignments]

    def watch_assignments(self, wake: Callable[[], None]) -> AssignmentWatch:
        """This node's assignments kept up to date in a thread (`latest`), `wake()` called after each change,
        until the watch is cancelled or breaks (`broken`, with a last `wake()` if it had connected: the caller
        makes a new one)."""
        return AssignmentWatch(self, wake)

    def network_view(self, vnis: list[int]) -> pb.NetworkView:
        view: pb.NetworkView = self._call(lambda: self.stub.GetNetworkView(pb.NetworkViewRequest(vnis=vnis),
                                                                            timeout=CALL_TIMEOUT_S))
        return view

    def report(self, obs: Observed) -> None:
        self._call(lambda: self.stub.ReportObserved(pb.ReportRequest(observed=obs.to_json().encode()),
                                                    timeout=CALL_TIMEOUT_S))

    def step(self, operation_id: str, name: str, message: str, detail: str = "") -> None:
        if operation_id:
            self._call(lambda: self.stub.RecordStep(pb.StepRequest(operation_id=operation_id, name=name,
                                                                   message=message, detail=detail),
                                                    timeout=CALL_TIMEOUT_S))

    def open_disk(self, vm_id: str, uri: str) -> tuple[str, int, str]:
        """A disk of one of this node's VMs exported to this node: (host, port, export name)."""
        e = self._call(lambda: self.stub.OpenDisk(pb.DiskRequest(vm_id=vm_id, uri=uri), timeout=CALL_TIMEOUT_S))
        return str(e.host), int(e.port), str(e.name)

    def issue_nbd(self, csr: str) -> str:
        """A certificate for this node's qemu (nbd:NODE) from a CSR: PEM."""
        got = self._call(lambda: self.stub.IssueNbdCertificate(pb.CertificateRequest(csr=csr), timeout=CALL_TIMEOUT_S))
        return str(got.certificate)

    def running(self, operation_id: str) -> bool:
        if not operation_id:
            return False
        state: pb.OperationState = self._call(lambda: self.stub.GetOperationState(pb.OperationRef(id=operation_id),
                                                                                  timeout=CALL_TIMEOUT_S))
        return bool(state.running)


class AssignmentWatch:
    def __init__(self, plane: ControlPlane, wake: Callable[[], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.broken = False
        self.latest: list[Assignment] | None = None     # None until the first snapshot, and once broken
        self.clock = clock
        self._heard = clock()
        self._stream = plane.stub.WatchAssignments(pb.WatchAssignmentsRequest())
        self._thread = threading.Thread(target=self._run, args=(wake,), daemon=True)
        self._thread.start()

    def _run(self, wake: Callable[[], None]) -> None:
        delivered = False
        decoded: dict[bytes, Assignment] = {}      # a record unchanged since the last snapshot is not parsed again
        try:
            for snap in self._stream:
                decoded = {raw: decoded.get(raw) or Assignment.from_json(raw) for raw in snap.assignments}
                self.latest, self._heard = list(decoded.values()), self.clock()
                delivered = True
                wake()
        except grpc.RpcError:
            pass
        except Exception:  # noqa: BLE001 - a record this agent cannot read: no snapshot is trusted after it
            log.exception("assignment watch")
        finally:
            self.broken, self.latest = True, None
        if delivered:       # a watch that never connected wakes nobody: the agent tries again at its next pass
            wake()

    def dead(self) -> bool:
        """Broken, or silent for longer than the control plane ever is: make a new one."""
        return self.broken or self.clock() - self._heard > WATCH_STALE_S

    def cancel(self) -> None:
        self._stream.cancel()
