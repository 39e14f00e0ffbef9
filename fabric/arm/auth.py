"""Who may call what on the controller's API.

The API is served over mutual TLS (`server_credentials`): a client without a certificate from the cluster CA
never completes the handshake, so nothing it sends is read. (gRPC's Python server can require a client
certificate or not ask for one; it cannot ask and let the call decide, so a missing or foreign certificate is
refused by the handshake, and the CLI names that refusal `Unauthenticated`.) Every call that gets through
is then checked against the role in its certificate (`fabric.pki`): the resource APIs are for admins; a
node's or a controller's certificate is PERMISSION_DENIED there; the node API is for nodes, each call then
checked against the node it names (`node_server`).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
from cryptography import x509

from fabric.pki import ADMINS, NODES, Credential, Identity, PkiError, identity_of, load_cert

# fully-qualified service name -> the roles that may call it
SERVICE_ROLES: dict[str, frozenset[str]] = {
    **{f"fabric.v1.{s}": frozenset({ADMINS}) for s in (
        "ResourceGroups", "VirtualMachines", "VirtualMachineExtensions", "Operations", "Nodes", "Deployments",
        "StorageAccounts", "Containers", "Blobs", "StorageChecks", "VirtualNetworks", "NetworkInterfaces",
        "Images")},
    "fabric.v1.NodeAgents": frozenset({NODES})}


def server_credentials(cred: Credential) -> grpc.ServerCredentials:
    """TLS with this certificate, and a client certificate from the cluster CA required."""
    return grpc.ssl_server_credentials([(cred.key.encode(), cred.certificate.encode())],
                                       root_certificates=cred.ca.encode(), require_client_auth=True)


def peer_certificate(context: grpc.ServicerContext) -> x509.Certificate | None:
    """The verified client certificate of this call."""
    pem = context.auth_context().get("x509_pem_cert")
    try:
        return load_cert(pem[0]) if pem else None
    except PkiError:
        return None


def caller(context: grpc.ServicerContext) -> Identity | None:
    """The identity in the verified client certificate of this call."""
    cert = peer_certificate(context)
    try:
        return identity_of(cert) if cert is not None else None
    except PkiError:
        return None


class Authorizer(grpc.ServerInterceptor):  # type: ignore[misc]   # grpc has no type stubs
    def __init__(self, roles: dict[str, frozenset[str]] = SERVICE_ROLES) -> None:
        self.roles = roles

    def check(self, method: str, context: grpc.ServicerContext) -> None:
        who = caller(context)
        if who is None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "the call carries no certificate of the cluster CA")
        service = method.lstrip("/").split("/", 1)[0]
        allowed = self.roles.get(service, frozenset())
        if who is not None and who.role not in allowed:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"{who.name} ({who.role}) may not call {method}: it is for {', '.join(sorted(allowed))}"
                          if allowed else f"{who.name} ({who.role}) may not call {method}")

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method
        check = self.check

        def guard(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            def guarded(request: Any, context: grpc.ServicerContext) -> Any:
                check(method, context)
                return behaviour(request, context)
            return guarded

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(guard(handler.unary_unary),
                                                       handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(guard(handler.unary_stream),
                                                        handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(guard(handler.stream_unary),
                                                        handler.request_deserializer, handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(guard(handler.stream_stream),
                                                     handler.request_deserializer, handler.response_serializer)
