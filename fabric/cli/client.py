"""Connection to the controller and the one mapping of gRPC failures to CLI errors."""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from fabric.core.errors import ERROR_METADATA_KEY, ArmError
from fabric.lab.config import lab_dir, read_lab
from fabric.v1 import deployment_pb2_grpc as drpc
from fabric.v1 import fabric_pb2_grpc as rpc
from fabric.v1 import network_pb2_grpc as nrpc
from fabric.v1 import storage_pb2_grpc as srpc

DEFAULT_CONTROLLER = "127.0.0.1:7450"
RPC_TIMEOUT_S = 30.0


class CliError(Exception):
    """An error to print as an ARM body; exit code 1."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.body = body


def bad_option(target: str, message: str) -> CliError:
    """Bad input on the command line, refused before anything is sent: names the option and its rule."""
    return CliError({"code": "InvalidParameter", "target": target, "message": message})


def controller_address() -> tuple[str, str]:
    """(address, where it came from)."""
    env = os.environ.get("FABRIC_CONTROLLER")
    if env:
        return env, "FABRIC_CONTROLLER"
    lab = read_lab(lab_dir())
    if lab:
        return str(lab["controller"]), f"{lab_dir()}/lab.json"
    return DEFAULT_CONTROLLER, "the default"


class Client:
    def __init__(self, address: str | None = None) -> None:
        self.address, self.source = (address, "--controller") if address else controller_address()
        self.channel = grpc.insecure_channel(self.address)
        self.groups = rpc.ResourceGroupsStub(self.channel)
        self.vms = rpc.VirtualMachinesStub(self.channel)
        self.extensions = rpc.VirtualMachineExtensionsStub(self.channel)
        self.deployments = drpc.DeploymentsStub(self.channel)
        self.ops = rpc.OperationsStub(self.channel)
        self.nodes = rpc.NodesStub(self.channel)
        self.accounts = srpc.StorageAccountsStub(self.channel)
        self.containers = srpc.ContainersStub(self.channel)
        self.blobs = srpc.BlobsStub(self.channel)
        self.checks = srpc.StorageChecksStub(self.channel)
        self.vnets = nrpc.VirtualNetworksStub(self.channel)
        self.nics = nrpc.NetworkInterfacesStub(self.channel)

    def error(self, exc: grpc.RpcError) -> CliError:
        for key, value in (exc.trailing_metadata() or ()):
            if key == ERROR_METADATA_KEY:
                return CliError(json.loads(value))
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return CliError(ArmError(
                "ControllerUnavailable",
                f"Cannot reach the fabric controller at {self.address} (from {self.source}). "
                f"Start the local lab with `fabric lab up`, or point FABRIC_CONTROLLER at a running controller."
            ).body())
        return CliError(ArmError(code.name, exc.details() or "").body())

    def call(self, method: Callable[..., Any], request: Any, timeout: float = RPC_TIMEOUT_S) -> Any:
        try:
            return method(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise self.error(exc) from None

    def stream(self, method: Callable[..., Any], request: Any) -> Iterator[Any]:
        try:
            yield from method(request)
        except grpc.RpcError as exc:
            raise self.error(exc) from None
