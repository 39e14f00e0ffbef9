from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeEmpty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FabricInfo(_message.Message):
    __slots__ = ("fabric_id", "blob_endpoint", "gallery_endpoint")
    FABRIC_ID_FIELD_NUMBER: _ClassVar[int]
    BLOB_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    GALLERY_ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    fabric_id: str
    blob_endpoint: str
    gallery_endpoint: str
    def __init__(self, fabric_id: _Optional[str] = ..., blob_endpoint: _Optional[str] = ..., gallery_endpoint: _Optional[str] = ...) -> None: ...

class RegisterNodeRequest(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    def __init__(self, record: _Optional[bytes] = ...) -> None: ...

class NodeLease(_message.Message):
    __slots__ = ("lease_id", "ttl_s")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    ttl_s: int
    def __init__(self, lease_id: _Optional[int] = ..., ttl_s: _Optional[int] = ...) -> None: ...

class LeaseRef(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: int
    def __init__(self, lease_id: _Optional[int] = ...) -> None: ...

class WatchAssignmentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AssignmentsSnapshot(_message.Message):
    __slots__ = ("assignments",)
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    assignments: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, assignments: _Optional[_Iterable[bytes]] = ...) -> None: ...

class NetworkViewRequest(_message.Message):
    __slots__ = ("vnis",)
    VNIS_FIELD_NUMBER: _ClassVar[int]
    vnis: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, vnis: _Optional[_Iterable[int]] = ...) -> None: ...

class DnsHost(_message.Message):
    __slots__ = ("mac", "ip", "name")
    MAC_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    mac: str
    ip: str
    name: str
    def __init__(self, mac: _Optional[str] = ..., ip: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class NetworkPeers(_message.Message):
    __slots__ = ("vni", "dns_hosts", "peers")
    VNI_FIELD_NUMBER: _ClassVar[int]
    DNS_HOSTS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    vni: int
    dns_hosts: _containers.RepeatedCompositeFieldContainer[DnsHost]
    peers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, vni: _Optional[int] = ..., dns_hosts: _Optional[_Iterable[_Union[DnsHost, _Mapping]]] = ..., peers: _Optional[_Iterable[str]] = ...) -> None: ...

class NetworkView(_message.Message):
    __slots__ = ("networks", "blob_names", "blob_stamp")
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    BLOB_NAMES_FIELD_NUMBER: _ClassVar[int]
    BLOB_STAMP_FIELD_NUMBER: _ClassVar[int]
    networks: _containers.RepeatedCompositeFieldContainer[NetworkPeers]
    blob_names: _containers.RepeatedScalarFieldContainer[str]
    blob_stamp: str
    def __init__(self, networks: _Optional[_Iterable[_Union[NetworkPeers, _Mapping]]] = ..., blob_names: _Optional[_Iterable[str]] = ..., blob_stamp: _Optional[str] = ...) -> None: ...

class ReportRequest(_message.Message):
    __slots__ = ("observed",)
    OBSERVED_FIELD_NUMBER: _ClassVar[int]
    observed: bytes
    def __init__(self, observed: _Optional[bytes] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("operation_id", "name", "message", "detail")
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    operation_id: str
    name: str
    message: str
    detail: str
    def __init__(self, operation_id: _Optional[str] = ..., name: _Optional[str] = ..., message: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class OperationRef(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DiskRequest(_message.Message):
    __slots__ = ("vm_id", "uri")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    uri: str
    def __init__(self, vm_id: _Optional[str] = ..., uri: _Optional[str] = ...) -> None: ...

class CertificateRequest(_message.Message):
    __slots__ = ("csr",)
    CSR_FIELD_NUMBER: _ClassVar[int]
    csr: str
    def __init__(self, csr: _Optional[str] = ...) -> None: ...

class IssuedCertificate(_message.Message):
    __slots__ = ("certificate", "ca")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CA_FIELD_NUMBER: _ClassVar[int]
    certificate: str
    ca: str
    def __init__(self, certificate: _Optional[str] = ..., ca: _Optional[str] = ...) -> None: ...

class DiskExport(_message.Message):
    __slots__ = ("host", "port", "name")
    HOST_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    host: str
    port: int
    name: str
    def __init__(self, host: _Optional[str] = ..., port: _Optional[int] = ..., name: _Optional[str] = ...) -> None: ...

class OperationState(_message.Message):
    __slots__ = ("running",)
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    running: bool
    def __init__(self, running: _Optional[bool] = ...) -> None: ...
