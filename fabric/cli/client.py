"""Connection to the controller and the one mapping of gRPC failures to CLI errors.

The CLI calls the controller over mutual TLS with a credential file (`fabric.pki.Credential`), the first of:
$FABRIC_CREDENTIALS, ~/.fabriclab/credentials.json, and the local lab's admin credential
(`{lab}/admin.json`, root only), which `fabric lab up` writes, as a cluster's set-up writes its first admin's.
A credential may name several controllers (HOST:PORT,HOST:PORT): the CLI uses the first that answers.
"""
from __future__ import annotations

import argparse
import json
import sys
from argparse import ArgumentTypeError
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from fabric.arm.paging import MAX_PAGE
from fabric.core.errors import ERROR_METADATA_KEY, ArmError
from fabric.lab.config import ADMIN_CREDENTIAL, lab_dir, read_lab
from fabric.pki import Credential, PkiError
from fabric.v1 import deployment_pb2_grpc as drpc
from fabric.v1 import fabric_pb2_grpc as rpc
from fabric.v1 import network_pb2_grpc as nrpc
from fabric.v1 import storage_pb2_grpc as srpc

DEFAULT_CONTROLLER = "127.0.0.1:7450"
RPC_TIMEOUT_S = 30.0
DIAGNOSE_TIMEOUT_S = 3.0
PICK_TIMEOUT_S = 2.0         # a controller of several that has not answered a handshake by then is passed over
USER_CREDENTIAL = Path("~/.fabriclab/credentials.json")


class CliError(Exception):
    """An error to print as an ARM body; exit code 1."""

    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.body = body


def bad_option(target: str, message: str) -> CliError:
    """Bad input on the command line, refused before anything is sent: names the option and its rule."""
    return CliError({"code": "InvalidParameter", "target": target, "message": message})


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> int:
    """Seconds from 90, 90s, 30m, 1h or 2d."""
    t = text.strip().lower()
    unit = _UNITS.get(t[-1:], 0)
    number = t[:-1] if unit else t
    if not number.isdigit():
        raise ArgumentTypeError(f"{text!r}: a whole number of seconds, or with s, m, h or d (1h)")
    return int(number) * (unit or 1)


def credential_places() -> list[Path]:
    env = os.environ.get("FABRIC_CREDENTIALS")
    if env:
        return [Path(env)]
    return [USER_CREDENTIAL.expanduser(), lab_dir() / ADMIN_CREDENTIAL]


def load_credential() -> tuple[Credential, Path]:
    """The caller's credential and where it was found; Unauthenticated when there is none it can read."""
    places = credential_places()
    for path in places:
        if path.exists():
            try:
                return Credential.load(path), path
            except PkiError as exc:
                raise CliError(ArmError("Unauthenticated", f"The credential file {exc}").body()) from None
    raise CliError(ArmError(
        "Unauthenticated",
        f"No credential to call the fabric controller with (looked for {', '.join(map(str, places))}). "
        f"`fabric lab up` writes the local lab's admin credential to {lab_dir() / ADMIN_CREDENTIAL} (readable by "
        f"root); elsewhere set FABRIC_CREDENTIALS to a copy of a credential file.").body())


def controller_address(cred: Credential | None = None, cred_path: Path | None = None) -> tuple[str, str]:
    """(address, where it came from)."""
    env = os.environ.get("FABRIC_CONTROLLER")
    if env:
        return env, "FABRIC_CONTROLLER"
    if cred is not None and cred.controller:
        return cred.controller, str(cred_path)
    lab = read_lab(lab_dir())
    if lab:
        return str(lab["controller"]), f"{lab_dir()}/lab.json"
    return DEFAULT_CONTROLLER, "the default"


class Client:
    def __init__(self, address: str | None = None) -> None:
        self.credential, self.credential_path = load_credential()
        addresses, self.source = (address, "--controller") if address else \
            controller_address(self.credential, self.credential_path)
        self.address, self.channel = self._first_answering(addresses.split(","))
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
        self.images = rpc.ImagesStub(self.channel)

    def _first_answering(self, addresses: list[str]) -> tuple[str, grpc.Channel]:
        """A channel to the first of several controllers (any serves the API) that completes a handshake within
        PICK_TIMEOUT_S; to the first when none does (its call then says why)."""
        if len(addresses) == 1:
            return addresses[0], self.credential.channel(addresses[0])
        for a in addresses:
            ch = self.credential.channel(a)
            try:
                grpc.channel_ready_future(ch).result(timeout=PICK_TIMEOUT_S)
                return a, ch
            except grpc.FutureTimeoutError:
                ch.close()
        return addresses[0], self.credential.channel(addresses[0])

    def error(self, exc: grpc.RpcError) -> CliError:
        for key, value in (exc.trailing_metadata() or ()):
            if key == ERROR_METADATA_KEY:
                return CliError(json.loads(value))
        code = exc.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            return self.diagnose(exc.details() or "")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return CliError(ArmError("Unauthenticated", exc.details() or "").body())
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return CliError(ArmError("AuthorizationFailed", exc.details() or "").body())
        return CliError(ArmError(code.name, exc.details() or "").body())

    def diagnose(self, details: str) -> CliError:
        """Why the controller cannot be called: not listening, or one side's certificate refused by the other
        (a refusal gRPC only reports as unavailable)."""
        host, _, port = self.address.rpartition(":")
        unreachable = CliError(ArmError(
            "ControllerUnavailable",
            f"Cannot reach the fabric controller at {self.address} (from {self.source}): {details}. "
            f"Start the local lab with `fabric lab up`, or point FABRIC_CONTROLLER at a running controller."
        ).body())
        try:
            sock = socket.create_connection((host.strip("[]"), int(port)), timeout=DIAGNOSE_TIMEOUT_S)
        except (OSError, ValueError):
            return unreachable
        refused = ""
        try:
            ctx = self.credential.ssl_context(server=False)
            ctx.set_alpn_protocols(["h2"])           # what a gRPC client offers
            with ctx.wrap_socket(sock, server_hostname=host.strip("[]")) as tls:
                tls.settimeout(DIAGNOSE_TIMEOUT_S)
                # TLS 1.3: a server refuses a client certificate after the handshake; a gRPC server that
                # took it speaks first (its HTTP/2 settings)
                if not tls.recv(1):
                    refused = "it closed the connection"
        except ssl.SSLCertVerificationError as exc:
            return CliError(ArmError(
                "ControllerNotTrusted",
                f"The server at {self.address} is not this credential's controller: its certificate "
                f"{exc.verify_message} (credential {self.credential_path}).").body())
        except ssl.SSLError as exc:
            refused = str(exc.reason)
        except ConnectionError:
            refused = "it reset the connection"
        except OSError:
            pass
        finally:
            sock.close()
        if refused:
            return CliError(ArmError(
                "Unauthenticated",
                f"The fabric controller at {self.address} refused the certificate of {self.credential_path} "
                f"({refused}): it is not from this cluster's CA, or has expired.").body())
        return unreachable

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


def pages(c: Client, method: Any, request: Callable[[int, str], Any], a: argparse.Namespace) -> list[Any]:
    """Every item of a paged list, page after page (`request(page size, token)`); with --max-items at most that
    many, and then the token to go on from on stderr, as `--next-token TOKEN`."""
    if a.max_items is not None and a.max_items < 1:
        raise bad_option("max-items", "--max-items: 1 or more")
    items: list[Any] = []
    token = a.next_token or ""
    while True:
        want = 0 if a.max_items is None else min(a.max_items - len(items), MAX_PAGE)
        res = c.call(method, request(want, token))
        items += res.value
        token = res.next_link
        if not token or (a.max_items is not None and len(items) >= a.max_items):
            break
    if token and a.max_items is not None:
        print(f"more: --next-token {token}", file=sys.stderr)
    return items


def paged(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-items", type=int, metavar="N", help="at most N items (then the token to go on from)")
    p.add_argument("--next-token", metavar="TOKEN", help="go on from where an earlier --max-items list stopped")
