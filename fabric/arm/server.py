"""gRPC servicers: the ARM front door over the providers.

Every handler runs inside `_unary` or `_stream`, the one place where provider errors
become gRPC status codes with an ARM error body in the trailing metadata.
"""
from __future__ import annotations

import functools
import logging
import threading
import http.client
import ssl
from urllib.parse import urlsplit
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from cryptography import x509

from fabric import operations
from fabric.arm import convert, paging
from fabric.arm.errors import grpc_code
from fabric.core.errors import ArmError, check_location, invalid, shorten
from fabric.core import ids
from fabric.pki import PkiError, identity_of, node_identity
from fabric.compute import data_disks
from fabric.compute.sizes import sizes_for
from fabric.compute.vms import ComputeProvider, candidate_row
from fabric.enrollment import DEFAULT_TOKEN_TTL_S, Enrollment
from fabric.storage.nbd import NbdExports
from fabric.model import Record, EnrollmentRecord, SshKey, JoinTokenRecord, NodeAllocation, NodeRecord, Observed, OperationRecord, OperationStatus, ResourceGroupRecord, TraceRecord, now
from fabric.scheduler import Request
from fabric.store import Absent, Put, Store, StoreUnavailable, keys
from fabric.store.informer import Informer, informed
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import fabric_pb2_grpc as rpc

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound=Record)

WATCH_RECHECK_S = 1.0          # a Watch re-reads the operation at least this often
SERIAL_FETCH_TIMEOUT_S = 5.0
SERIAL_DEFAULT_TAIL = 200


def _abort(context: grpc.ServicerContext, err: ArmError) -> None:
    """The ARM body (bounded, see errors.py) in the trailers; the status message is its head, so that both
    fit gRPC's metadata limit whatever the message holds (percent-encoding can triple its bytes)."""
    context.set_trailing_metadata(err.to_metadata())
    context.abort(grpc_code(err), f"{err.code}: {shorten(err.message)}")


def _fail(context: grpc.ServicerContext, exc: Exception, where: str) -> None:
    if isinstance(exc, ArmError):
        _abort(context, exc)
    elif isinstance(exc, StoreUnavailable):
        _abort(context, ArmError("StoreUnavailable", f"{exc}; nothing was written."))
    else:  # never let a traceback reach the client
        log.error("internal error in %s", where, exc_info=exc)
        _abort(context, ArmError("InternalError", "The controller failed internally; see its log."))


def _unary(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped in _fail
            _fail(context, exc, fn.__name__)
    return wrapper  # type: ignore[return-value]


def _stream(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from fn(self, request, context)
        except Exception as exc:  # noqa: BLE001 - mapped in _fail
            _fail(context, exc, fn.__name__)
    return wrapper  # type: ignore[return-value]


class ResourceGroups(rpc.ResourceGroupsServicer):
    def __init__(self, store: Store, compute: ComputeProvider) -> None:
        self.store, self.compute = store, compute

    @_unary
    def Create(self, req: pb.CreateResourceGroupRequest, ctx: grpc.ServicerContext) -> pb.ResourceGroup:
        ids.check_resource_group_name(req.name, "name")
        if not req.location:
            raise invalid("location", "a location is required")
        check_location(req.location, self.compute.config.location)
        key = keys.resource_group(req.name)
        rec = ResourceGroupRecord(name=req.name, location=self.compute.config.location, created=now())
        if not self.store.commit([Absent(key)], [Put(key, rec)]):
            found = self.store.get(key, ResourceGroupRecord)
            assert found is not None
            rec = found.value
        return convert.resource_group(self.compute.config.subscription, rec)

    @_unary
    def Get(self, req: pb.GetResourceGroupRequest, ctx: grpc.ServicerContext) -> pb.ResourceGroup:
        return convert.resource_group(self.compute.config.subscription, self.compute.resource_group(req.name))

    @_unary
    def List(self, req: pb.ListResourceGroupsRequest, ctx: grpc.ServicerContext) -> pb.ListResourceGroupsResponse:
        sub = self.compute.config.subscription
        groups, next_link = paging.page(informed(self.store, keys.RESOURCE_GROUPS, ResourceGroupRecord).list(),
                                        lambda g: g.key, req.max_items, req.next_token, keys.RESOURCE_GROUPS)
        return pb.ListResourceGroupsResponse(value=[convert.resource_group(sub, r.value) for r in groups],
                                             next_link=next_link)


class VirtualMachines(rpc.VirtualMachinesServicer):
    def __init__(self, store: Store, compute: ComputeProvider, node_tls: ssl.SSLContext | None = None) -> None:
        """`node_tls`: how this controller calls a node's diagnostics (its certificate presented, the node's
        checked against the cluster CA and by name)."""
        self.store, self.compute = store, compute
        self.node_tls = node_tls

    def _op(self, op: OperationRecord) -> pb.Operation:
        return convert.operation(op)

    @_unary
    def Create(self, req: pb.CreateVirtualMachineRequest, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.create(req.resource_group, req.name, req.location, req.image, req.size,
                                            req.storage_account, req.os_disk_delete_option or "Delete",
                                            req.vnet_name, req.subnet, list(req.nics), req.private_ip_address,
                                            req.user_data,
                                            req.provision_vm_agent if req.HasField("provision_vm_agent") else True,
                                            req.admin_username, [SshKey(path=k.path, key_data=k.key_data)
                                                                 for k in req.ssh_public_keys],
                                            req.computer_name, req.admin_password, req.custom_data,
                                            req.disable_password_authentication
                                            if req.HasField("disable_password_authentication") else None))

    @_unary
    def Start(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("start", req.resource_group, req.name))

    @_unary
    def PowerOff(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("powerOff", req.resource_group, req.name))

    @_unary
    def Restart(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("restart", req.resource_group, req.name))

    @_unary
    def Deallocate(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("deallocate", req.resource_group, req.name))

    @_unary
    def Redeploy(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("redeploy", req.resource_group, req.name))

    @_unary
    def Delete(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(self.compute.action("delete", req.resource_group, req.name))

    @_unary
    def AttachDisk(self, req: pb.AttachDiskRequest, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(data_disks.attach(self.compute, req.resource_group, req.vm_name, req.name, req.size_gb,
                                          req.new))

    @_unary
    def DetachDisk(self, req: pb.DetachDiskRequest, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._op(data_disks.detach(self.compute, req.resource_group, req.vm_name, req.name))

    def _message(self, rec: Any, with_view: bool) -> pb.VirtualMachine:
        view = None
        if with_view:        # what nodes observe, from the watch-fed views (a list reads nothing per VM)
            obs = informed(self.store, keys.OBSERVED, Observed).get(keys.observed(rec.node, rec.vm_id)) \
                if rec.node else None
            node = informed(self.store, keys.NODES, NodeRecord).get(keys.node(rec.node)) if rec.node else None
            view = convert.instance_view(rec, obs.value if obs else None, node.value if node else None)
        return convert.vm(self.compute.config.subscription, rec, view)

    @_unary
    def Get(self, req: pb.VirtualMachineRef, ctx: grpc.ServicerContext) -> pb.VirtualMachine:
        return self._message(self.compute.get(req.resource_group, req.name).value, req.instance_view)

    @_unary
    def List(self, req: pb.ListVirtualMachinesRequest, ctx: grpc.ServicerContext) -> pb.ListVirtualMachinesResponse:
        vms, next_link = paging.page(self.compute.list_vms(req.resource_group), lambda v: v.key, req.max_items,
                                     req.next_token, keys.vms_in(req.resource_group))
        return pb.ListVirtualMachinesResponse(value=[self._message(v.value, True) for v in vms], next_link=next_link)

    @_unary
    def ListSizes(self, req: pb.ListSizesRequest, ctx: grpc.ServicerContext) -> pb.ListSizesResponse:
        check_location(req.location, self.compute.config.location)
        return pb.ListSizesResponse(value=[
            pb.VirtualMachineSize(name=s.name, number_of_cores=s.number_of_cores, memory_in_mb=s.memory_in_mb,
                                  os_disk_size_in_mb=s.os_disk_size_in_mb,
                                  resource_disk_size_in_mb=s.resource_disk_size_in_mb,
                                  max_data_disk_count=s.max_data_disk_count) for s in sizes_for(req.location)])

    @_unary
    def GetSerialOutput(self, req: pb.SerialOutputRequest, ctx: grpc.ServicerContext) -> pb.SerialOutput:
        vm = self.compute.get(req.resource_group, req.name).value
        if not vm.node:
            raise ArmError("OperationNotAllowed", f"VM '{vm.name}' is deallocated: it has no serial console.", "name")
        node = self.store.get(keys.node(vm.node), NodeRecord)
        if node is None or not node.value.diagnostics_url:
            raise ArmError("OperationNotAllowed", f"Node '{vm.node}' of VM '{vm.name}' is not reachable.", "name")
        tail = req.tail_lines if req.tail_lines > 0 else SERIAL_DEFAULT_TAIL
        text, path = self._serial(node.value, f"/serial/{vm.vm_id}?tail={tail}")
        return pb.SerialOutput(node_name=vm.node, path=path, output=text)

    def _serial(self, node: NodeRecord, path: str) -> tuple[str, str]:
        """GET a node's diagnostics over TLS, the server's certificate checked to be that node's."""
        url = urlsplit(node.diagnostics_url)
        if self.node_tls is None or url.scheme != "https" or not url.hostname:
            raise ArmError("OperationNotAllowed", f"Node '{node.name}' serves no diagnostics this controller can "
                                                  f"call ({node.diagnostics_url or 'none'}).", "name")
        conn = http.client.HTTPSConnection(url.hostname, url.port, context=self.node_tls,
                                           timeout=SERIAL_FETCH_TIMEOUT_S)
        try:
            conn.connect()
            assert conn.sock is not None
            der = conn.sock.getpeercert(binary_form=True)
            who = identity_of(x509.load_der_x509_certificate(der)) if der else None
            if who != node_identity(node.name):
                raise ArmError("OperationNotAllowed", f"The diagnostics at {node.diagnostics_url} are not node "
                                                      f"'{node.name}'s (its certificate is {who.name if who else 'none'}).")
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode(errors="replace")
            if resp.status != 200:
                raise ArmError("OperationNotAllowed", f"Node '{node.name}' answered {resp.status}: {body[:200]}")
            return body, resp.headers.get("X-Console-Path", "")
        except (OSError, http.client.HTTPException, PkiError, ValueError) as exc:
            raise ArmError("OperationNotAllowed", f"Node '{node.name}' did not return the serial output: {exc}.") \
                from None
        finally:
            conn.close()


class Operations(rpc.OperationsServicer):
    def __init__(self, store: Store, compute: ComputeProvider) -> None:
        self.store = store
        self.compute = compute

    def _read(self, op_id: str, with_trace: bool, why_not: str = "") -> pb.Operation:
        found = self.store.get(keys.operation(op_id), OperationRecord) if op_id else None
        if found is None:
            raise ArmError("OperationNotFound", f"Operation '{op_id}' was not found.", "id")
        trace = operations.trace(self.store, op_id) if with_trace or why_not else None
        out = convert.operation(found.value, trace if with_trace else None)
        if why_not:
            out.why_not.CopyFrom(self._why_not(op_id, why_not, trace or []))
        return out

    def _why_not(self, op_id: str, node: str, trace: list[TraceRecord]) -> pb.PlacementExplanation:
        """One node against the operation's placement: its verdicts for the VM's size as the node stands now,
        and what the placement saw of it."""
        placed = [t for t in trace if t.step == "placed"]
        if not placed:
            raise invalid("whyNot", f"operation '{op_id}' placed no VM: there is no placement to explain")
        step = placed[-1]
        asked = step.placement_summary.get("request")
        if not asked:
            raise invalid("whyNot", f"operation '{op_id}' was placed by an earlier version: its trace lists every "
                                    f"node it considered (--trace)")
        req = Request(asked["cores"], asked["memoryMb"], asked["resourceDiskMb"])
        rows = {r["node"]: r for r in step.placement}
        now = self.compute.explain_placement(node, req)
        out = pb.PlacementExplanation(node=node, registered=now is not None, in_trace=node in rows)
        if now is not None:
            out.now.CopyFrom(convert.candidate(candidate_row(now)))
        s = step.placement_summary
        if node in rows and rows[node]["chosen"]:
            out.note = f"node {node} was chosen (what it holds now counts this VM too)"
        elif node in rows:
            out.note = f"node {node} is one of the placement's rows: its verdicts then are in the trace (--trace)"
        elif s["considered"] < s["nodes"]:
            out.note = (f"the filters ran on {s['considered']} of {s['nodes']} nodes, from a random one, until "
                        f"{s['feasible']} fit: node {node} may not have been among them")
        else:
            out.note = f"every node was considered and node {node} was not among the best shown"
        if now is None:
            out.note += f"; no node named {node} is registered now"
        return out

    @_unary
    def Get(self, req: pb.GetOperationRequest, ctx: grpc.ServicerContext) -> pb.Operation:
        return self._read(req.id, req.trace, req.why_not)

    @_stream
    def Watch(self, req: pb.GetOperationRequest, ctx: grpc.ServicerContext) -> Iterator[pb.Operation]:
        self._read(req.id, False)          # an operation that does not exist is not watched
        changed = threading.Event()
        watches = [self.store.watch_prefix(keys.operation(req.id), changed.set),
                   self.store.watch_prefix(keys.trace_of(req.id), changed.set)]
        try:
            last = None
            while ctx.is_active():
                cur = self._read(req.id, True)
                if cur != last:
                    yield cur
                    last = cur
                if cur.status != OperationStatus.IN_PROGRESS:
                    return
                changed.wait(WATCH_RECHECK_S)
                changed.clear()
        finally:
            for w in watches:
                w.cancel()


class Nodes(rpc.NodesServicer):
    def __init__(self, store: Store, enrollment: Enrollment, join_address: str = "",
                 exports: NbdExports | None = None) -> None:
        self.store = store
        self.enrollment = enrollment
        self.join_address = join_address
        self.exports = exports

    @_unary
    def List(self, req: pb.ListNodesRequest, ctx: grpc.ServicerContext) -> pb.ListNodesResponse:
        """Registered nodes and enrolled ones (NotReady until they register), by name, a page at a time, from the
        watch-fed views."""
        registered = informed(self.store, keys.NODES, NodeRecord)
        enrolled = informed(self.store, keys.ENROLLMENTS, EnrollmentRecord)
        allocs = informed(self.store, keys.ALLOCATIONS, NodeAllocation)
        names = sorted({v.value.name for v in registered.list()} | {v.value.node for v in enrolled.list()})
        shown, next_link = paging.page(names, lambda n: n, req.max_items, req.next_token)

        def value(view: Informer[R], key: str) -> R | None:
            found = view.get(key)
            return found.value if found else None
        return pb.ListNodesResponse(value=[convert.node(n, value(registered, keys.node(n)),
                                                        value(allocs, keys.allocation(n)),
                                                        value(enrolled, keys.enrollment(n))) for n in shown],
                                    next_link=next_link)

    @_unary
    def CreateJoinToken(self, req: pb.CreateJoinTokenRequest, ctx: grpc.ServicerContext) -> pb.JoinToken:
        token, rec = self.enrollment.create_token(req.ttl_s or DEFAULT_TOKEN_TTL_S, req.description)
        return self._token(rec, str(token))

    def _token(self, rec: JoinTokenRecord, text: str = "") -> pb.JoinToken:
        ca = self.enrollment.ca
        return pb.JoinToken(token=text, id=rec.id, expires_time=rec.expires, description=rec.description,
                            used_by=rec.used_by, join_address=self.join_address,
                            ca_fingerprint=ca.fingerprint if ca else "")

    @_unary
    def ListJoinTokens(self, req: pb.ListJoinTokensRequest, ctx: grpc.ServicerContext) -> pb.ListJoinTokensResponse:
        return pb.ListJoinTokensResponse(value=[self._token(t) for t in self.enrollment.tokens()])

    @_unary
    def Remove(self, req: pb.RemoveNodeRequest, ctx: grpc.ServicerContext) -> pb.RemoveNodeResponse:
        removed = self.enrollment.remove(req.name)
        if self.exports is not None:
            self.exports.stop(removed.node)       # its disks' exports end now (other controllers': next pass)
        alloc = self.store.get(keys.allocation(removed.node), NodeAllocation)
        log.info("node %s removed: certificate %s revoked", removed.node, removed.serial)
        return pb.RemoveNodeResponse(name=removed.node, certificate_serial=removed.serial,
                                     vm_count=alloc.value.count() if alloc else 0)
