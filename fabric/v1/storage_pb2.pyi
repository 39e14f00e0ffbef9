from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PrimaryEndpoints(_message.Message):
    __slots__ = ("blob",)
    BLOB_FIELD_NUMBER: _ClassVar[int]
    blob: str
    def __init__(self, blob: _Optional[str] = ...) -> None: ...

class StorageAccountProperties(_message.Message):
    __slots__ = ("provisioning_state", "primary_endpoints", "creation_time")
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    CREATION_TIME_FIELD_NUMBER: _ClassVar[int]
    provisioning_state: str
    primary_endpoints: PrimaryEndpoints
    creation_time: str
    def __init__(self, provisioning_state: _Optional[str] = ..., primary_endpoints: _Optional[_Union[PrimaryEndpoints, _Mapping]] = ..., creation_time: _Optional[str] = ...) -> None: ...

class StorageAccount(_message.Message):
    __slots__ = ("id", "name", "type", "location", "properties")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: str
    location: str
    properties: StorageAccountProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[StorageAccountProperties, _Mapping]] = ...) -> None: ...

class StorageAccountKey(_message.Message):
    __slots__ = ("key_name", "value", "permissions")
    KEY_NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    key_name: str
    value: str
    permissions: str
    def __init__(self, key_name: _Optional[str] = ..., value: _Optional[str] = ..., permissions: _Optional[str] = ...) -> None: ...

class CreateStorageAccountRequest(_message.Message):
    __slots__ = ("resource_group", "name", "location")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    location: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class StorageAccountRef(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListStorageAccountsRequest(_message.Message):
    __slots__ = ("resource_group", "max_items", "next_token")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    max_items: int
    next_token: str
    def __init__(self, resource_group: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListStorageAccountsResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[StorageAccount]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[StorageAccount, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class ListStorageAccountKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[StorageAccountKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[StorageAccountKey, _Mapping]]] = ...) -> None: ...

class ContainerProperties(_message.Message):
    __slots__ = ("public_access", "last_modified")
    PUBLIC_ACCESS_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    public_access: str
    last_modified: str
    def __init__(self, public_access: _Optional[str] = ..., last_modified: _Optional[str] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("name", "properties")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    properties: ContainerProperties
    def __init__(self, name: _Optional[str] = ..., properties: _Optional[_Union[ContainerProperties, _Mapping]] = ...) -> None: ...

class CreateContainerRequest(_message.Message):
    __slots__ = ("account_name", "name", "public_access")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ACCESS_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    name: str
    public_access: str
    def __init__(self, account_name: _Optional[str] = ..., name: _Optional[str] = ..., public_access: _Optional[str] = ...) -> None: ...

class SetContainerPermissionRequest(_message.Message):
    __slots__ = ("account_name", "name", "public_access")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_ACCESS_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    name: str
    public_access: str
    def __init__(self, account_name: _Optional[str] = ..., name: _Optional[str] = ..., public_access: _Optional[str] = ...) -> None: ...

class ListContainersRequest(_message.Message):
    __slots__ = ("account_name", "max_items", "next_token")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    max_items: int
    next_token: str
    def __init__(self, account_name: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListContainersResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[Container]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[Container, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class ContentSettings(_message.Message):
    __slots__ = ("content_type", "content_md5")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_MD5_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    content_md5: str
    def __init__(self, content_type: _Optional[str] = ..., content_md5: _Optional[str] = ...) -> None: ...

class LeaseProperties(_message.Message):
    __slots__ = ("state", "status", "duration")
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    state: str
    status: str
    duration: str
    def __init__(self, state: _Optional[str] = ..., status: _Optional[str] = ..., duration: _Optional[str] = ...) -> None: ...

class BlobProperties(_message.Message):
    __slots__ = ("blob_type", "content_length", "content_settings", "etag", "last_modified", "lease")
    BLOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    LAST_MODIFIED_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    blob_type: str
    content_length: int
    content_settings: ContentSettings
    etag: str
    last_modified: str
    lease: LeaseProperties
    def __init__(self, blob_type: _Optional[str] = ..., content_length: _Optional[int] = ..., content_settings: _Optional[_Union[ContentSettings, _Mapping]] = ..., etag: _Optional[str] = ..., last_modified: _Optional[str] = ..., lease: _Optional[_Union[LeaseProperties, _Mapping]] = ...) -> None: ...

class Blob(_message.Message):
    __slots__ = ("name", "container", "properties", "metadata", "url", "sas_url", "guest_sas_url")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    SAS_URL_FIELD_NUMBER: _ClassVar[int]
    GUEST_SAS_URL_FIELD_NUMBER: _ClassVar[int]
    name: str
    container: str
    properties: BlobProperties
    metadata: _containers.ScalarMap[str, str]
    url: str
    sas_url: str
    guest_sas_url: str
    def __init__(self, name: _Optional[str] = ..., container: _Optional[str] = ..., properties: _Optional[_Union[BlobProperties, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., url: _Optional[str] = ..., sas_url: _Optional[str] = ..., guest_sas_url: _Optional[str] = ...) -> None: ...

class BlobUploadHeader(_message.Message):
    __slots__ = ("account_name", "container", "name", "content_type", "lease_id", "sas_hours", "content_length")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    SAS_HOURS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    container: str
    name: str
    content_type: str
    lease_id: str
    sas_hours: int
    content_length: int
    def __init__(self, account_name: _Optional[str] = ..., container: _Optional[str] = ..., name: _Optional[str] = ..., content_type: _Optional[str] = ..., lease_id: _Optional[str] = ..., sas_hours: _Optional[int] = ..., content_length: _Optional[int] = ...) -> None: ...

class UploadBlobChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: BlobUploadHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[BlobUploadHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class BlobRef(_message.Message):
    __slots__ = ("account_name", "container", "name", "lease_id")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    container: str
    name: str
    lease_id: str
    def __init__(self, account_name: _Optional[str] = ..., container: _Optional[str] = ..., name: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...

class BlobChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ListBlobsRequest(_message.Message):
    __slots__ = ("account_name", "container", "prefix", "max_results", "marker")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    MARKER_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    container: str
    prefix: str
    max_results: int
    marker: str
    def __init__(self, account_name: _Optional[str] = ..., container: _Optional[str] = ..., prefix: _Optional[str] = ..., max_results: _Optional[int] = ..., marker: _Optional[str] = ...) -> None: ...

class ListBlobsResponse(_message.Message):
    __slots__ = ("value", "next_marker")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_MARKER_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[Blob]
    next_marker: str
    def __init__(self, value: _Optional[_Iterable[_Union[Blob, _Mapping]]] = ..., next_marker: _Optional[str] = ...) -> None: ...

class DeleteBlobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("account_name", "container", "name", "action", "duration", "lease_id", "proposed_lease_id", "break_period")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    PROPOSED_LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    BREAK_PERIOD_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    container: str
    name: str
    action: str
    duration: int
    lease_id: str
    proposed_lease_id: str
    break_period: int
    def __init__(self, account_name: _Optional[str] = ..., container: _Optional[str] = ..., name: _Optional[str] = ..., action: _Optional[str] = ..., duration: _Optional[int] = ..., lease_id: _Optional[str] = ..., proposed_lease_id: _Optional[str] = ..., break_period: _Optional[int] = ...) -> None: ...

class LeaseResponse(_message.Message):
    __slots__ = ("lease_id", "lease_time", "blob")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_TIME_FIELD_NUMBER: _ClassVar[int]
    BLOB_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    lease_time: int
    blob: Blob
    def __init__(self, lease_id: _Optional[str] = ..., lease_time: _Optional[int] = ..., blob: _Optional[_Union[Blob, _Mapping]] = ...) -> None: ...

class GenerateSasRequest(_message.Message):
    __slots__ = ("account_name", "container", "name", "permissions", "expiry")
    ACCOUNT_NAME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    account_name: str
    container: str
    name: str
    permissions: str
    expiry: str
    def __init__(self, account_name: _Optional[str] = ..., container: _Optional[str] = ..., name: _Optional[str] = ..., permissions: _Optional[str] = ..., expiry: _Optional[str] = ...) -> None: ...

class SasResponse(_message.Message):
    __slots__ = ("token", "url", "guest_url")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    GUEST_URL_FIELD_NUMBER: _ClassVar[int]
    token: str
    url: str
    guest_url: str
    def __init__(self, token: _Optional[str] = ..., url: _Optional[str] = ..., guest_url: _Optional[str] = ...) -> None: ...

class CheckRequest(_message.Message):
    __slots__ = ("repair",)
    REPAIR_FIELD_NUMBER: _ClassVar[int]
    repair: bool
    def __init__(self, repair: _Optional[bool] = ...) -> None: ...

class CheckFinding(_message.Message):
    __slots__ = ("kind", "subject", "message", "repairable", "repaired")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REPAIRABLE_FIELD_NUMBER: _ClassVar[int]
    REPAIRED_FIELD_NUMBER: _ClassVar[int]
    kind: str
    subject: str
    message: str
    repairable: bool
    repaired: bool
    def __init__(self, kind: _Optional[str] = ..., subject: _Optional[str] = ..., message: _Optional[str] = ..., repairable: _Optional[bool] = ..., repaired: _Optional[bool] = ...) -> None: ...

class CheckReport(_message.Message):
    __slots__ = ("findings",)
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    findings: _containers.RepeatedCompositeFieldContainer[CheckFinding]
    def __init__(self, findings: _Optional[_Iterable[_Union[CheckFinding, _Mapping]]] = ...) -> None: ...
