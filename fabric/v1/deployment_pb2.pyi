from google.protobuf import struct_pb2 as _struct_pb2
from fabric.v1 import fabric_pb2 as _fabric_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResourceReference(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class BasicDependency(_message.Message):
    __slots__ = ("id", "resource_type", "resource_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource_type: str
    resource_name: str
    def __init__(self, id: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_name: _Optional[str] = ...) -> None: ...

class Dependency(_message.Message):
    __slots__ = ("depends_on", "id", "resource_type", "resource_name")
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    depends_on: _containers.RepeatedCompositeFieldContainer[BasicDependency]
    id: str
    resource_type: str
    resource_name: str
    def __init__(self, depends_on: _Optional[_Iterable[_Union[BasicDependency, _Mapping]]] = ..., id: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_name: _Optional[str] = ...) -> None: ...

class DeploymentProperties(_message.Message):
    __slots__ = ("provisioning_state", "timestamp", "duration", "correlation_id", "parameters", "output_resources", "error", "template_hash", "dependencies", "mode", "last_operation_id")
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_RESOURCES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_HASH_FIELD_NUMBER: _ClassVar[int]
    DEPENDENCIES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    LAST_OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    provisioning_state: str
    timestamp: str
    duration: str
    correlation_id: str
    parameters: _struct_pb2.Struct
    output_resources: _containers.RepeatedCompositeFieldContainer[ResourceReference]
    error: _fabric_pb2.ErrorDetail
    template_hash: str
    dependencies: _containers.RepeatedCompositeFieldContainer[Dependency]
    mode: str
    last_operation_id: str
    def __init__(self, provisioning_state: _Optional[str] = ..., timestamp: _Optional[str] = ..., duration: _Optional[str] = ..., correlation_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., output_resources: _Optional[_Iterable[_Union[ResourceReference, _Mapping]]] = ..., error: _Optional[_Union[_fabric_pb2.ErrorDetail, _Mapping]] = ..., template_hash: _Optional[str] = ..., dependencies: _Optional[_Iterable[_Union[Dependency, _Mapping]]] = ..., mode: _Optional[str] = ..., last_operation_id: _Optional[str] = ...) -> None: ...

class Deployment(_message.Message):
    __slots__ = ("id", "name", "type", "properties")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: str
    properties: DeploymentProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., properties: _Optional[_Union[DeploymentProperties, _Mapping]] = ...) -> None: ...

class TargetResource(_message.Message):
    __slots__ = ("id", "resource_type", "resource_name")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource_type: str
    resource_name: str
    def __init__(self, id: _Optional[str] = ..., resource_type: _Optional[str] = ..., resource_name: _Optional[str] = ...) -> None: ...

class DeploymentOperationProperties(_message.Message):
    __slots__ = ("provisioning_operation", "provisioning_state", "timestamp", "duration", "tracking_id", "status_code", "status_message", "target_resource", "resource_operation_id")
    PROVISIONING_OPERATION_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    TRACKING_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_RESOURCE_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    provisioning_operation: str
    provisioning_state: str
    timestamp: str
    duration: str
    tracking_id: str
    status_code: str
    status_message: _struct_pb2.Value
    target_resource: TargetResource
    resource_operation_id: str
    def __init__(self, provisioning_operation: _Optional[str] = ..., provisioning_state: _Optional[str] = ..., timestamp: _Optional[str] = ..., duration: _Optional[str] = ..., tracking_id: _Optional[str] = ..., status_code: _Optional[str] = ..., status_message: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., target_resource: _Optional[_Union[TargetResource, _Mapping]] = ..., resource_operation_id: _Optional[str] = ...) -> None: ...

class DeploymentOperation(_message.Message):
    __slots__ = ("id", "operation_id", "properties")
    ID_FIELD_NUMBER: _ClassVar[int]
    OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    operation_id: str
    properties: DeploymentOperationProperties
    def __init__(self, id: _Optional[str] = ..., operation_id: _Optional[str] = ..., properties: _Optional[_Union[DeploymentOperationProperties, _Mapping]] = ...) -> None: ...

class CreateDeploymentRequest(_message.Message):
    __slots__ = ("resource_group", "name", "template_json", "parameters")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_JSON_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    template_json: str
    parameters: _struct_pb2.Struct
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., template_json: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class DeploymentRef(_message.Message):
    __slots__ = ("resource_group", "name")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListDeploymentsRequest(_message.Message):
    __slots__ = ("resource_group", "max_items", "next_token")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    max_items: int
    next_token: str
    def __init__(self, resource_group: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListDeploymentsResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[Deployment]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[Deployment, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class ListDeploymentOperationsResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[DeploymentOperation]
    def __init__(self, value: _Optional[_Iterable[_Union[DeploymentOperation, _Mapping]]] = ...) -> None: ...
