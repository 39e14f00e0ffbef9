from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorDetail(_message.Message):
    __slots__ = ("code", "message", "target", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    target: str
    details: _containers.RepeatedCompositeFieldContainer[ErrorDetail]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., target: _Optional[str] = ..., details: _Optional[_Iterable[_Union[ErrorDetail, _Mapping]]] = ...) -> None: ...

class InstanceViewStatus(_message.Message):
    __slots__ = ("code", "level", "display_status", "message", "time")
    CODE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    code: str
    level: str
    display_status: str
    message: str
    time: str
    def __init__(self, code: _Optional[str] = ..., level: _Optional[str] = ..., display_status: _Optional[str] = ..., message: _Optional[str] = ..., time: _Optional[str] = ...) -> None: ...

class ResourceGroupProperties(_message.Message):
    __slots__ = ("provisioning_state",)
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    provisioning_state: str
    def __init__(self, provisioning_state: _Optional[str] = ...) -> None: ...

class ResourceGroup(_message.Message):
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
    properties: ResourceGroupProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[ResourceGroupProperties, _Mapping]] = ...) -> None: ...

class CreateResourceGroupRequest(_message.Message):
    __slots__ = ("name", "location")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    location: str
    def __init__(self, name: _Optional[str] = ..., location: _Optional[str] = ...) -> None: ...

class GetResourceGroupRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListResourceGroupsRequest(_message.Message):
    __slots__ = ("max_items", "next_token")
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    max_items: int
    next_token: str
    def __init__(self, max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListResourceGroupsResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[ResourceGroup]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[ResourceGroup, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class VirtualMachineSize(_message.Message):
    __slots__ = ("name", "number_of_cores", "os_disk_size_in_mb", "resource_disk_size_in_mb", "memory_in_mb", "max_data_disk_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NUMBER_OF_CORES_FIELD_NUMBER: _ClassVar[int]
    OS_DISK_SIZE_IN_MB_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_DISK_SIZE_IN_MB_FIELD_NUMBER: _ClassVar[int]
    MEMORY_IN_MB_FIELD_NUMBER: _ClassVar[int]
    MAX_DATA_DISK_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    number_of_cores: int
    os_disk_size_in_mb: int
    resource_disk_size_in_mb: int
    memory_in_mb: int
    max_data_disk_count: int
    def __init__(self, name: _Optional[str] = ..., number_of_cores: _Optional[int] = ..., os_disk_size_in_mb: _Optional[int] = ..., resource_disk_size_in_mb: _Optional[int] = ..., memory_in_mb: _Optional[int] = ..., max_data_disk_count: _Optional[int] = ...) -> None: ...

class HardwareProfile(_message.Message):
    __slots__ = ("vm_size",)
    VM_SIZE_FIELD_NUMBER: _ClassVar[int]
    vm_size: str
    def __init__(self, vm_size: _Optional[str] = ...) -> None: ...

class ImageReference(_message.Message):
    __slots__ = ("publisher", "offer", "sku", "version", "exact_version")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXACT_VERSION_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    offer: str
    sku: str
    version: str
    exact_version: str
    def __init__(self, publisher: _Optional[str] = ..., offer: _Optional[str] = ..., sku: _Optional[str] = ..., version: _Optional[str] = ..., exact_version: _Optional[str] = ...) -> None: ...

class VirtualHardDisk(_message.Message):
    __slots__ = ("uri",)
    URI_FIELD_NUMBER: _ClassVar[int]
    uri: str
    def __init__(self, uri: _Optional[str] = ...) -> None: ...

class OsDisk(_message.Message):
    __slots__ = ("os_type", "name", "create_option", "caching", "disk_size_gb", "vhd", "delete_option")
    OS_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREATE_OPTION_FIELD_NUMBER: _ClassVar[int]
    CACHING_FIELD_NUMBER: _ClassVar[int]
    DISK_SIZE_GB_FIELD_NUMBER: _ClassVar[int]
    VHD_FIELD_NUMBER: _ClassVar[int]
    DELETE_OPTION_FIELD_NUMBER: _ClassVar[int]
    os_type: str
    name: str
    create_option: str
    caching: str
    disk_size_gb: int
    vhd: VirtualHardDisk
    delete_option: str
    def __init__(self, os_type: _Optional[str] = ..., name: _Optional[str] = ..., create_option: _Optional[str] = ..., caching: _Optional[str] = ..., disk_size_gb: _Optional[int] = ..., vhd: _Optional[_Union[VirtualHardDisk, _Mapping]] = ..., delete_option: _Optional[str] = ...) -> None: ...

class DataDisk(_message.Message):
    __slots__ = ("lun", "name", "vhd", "create_option", "disk_size_gb", "caching")
    LUN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VHD_FIELD_NUMBER: _ClassVar[int]
    CREATE_OPTION_FIELD_NUMBER: _ClassVar[int]
    DISK_SIZE_GB_FIELD_NUMBER: _ClassVar[int]
    CACHING_FIELD_NUMBER: _ClassVar[int]
    lun: int
    name: str
    vhd: VirtualHardDisk
    create_option: str
    disk_size_gb: int
    caching: str
    def __init__(self, lun: _Optional[int] = ..., name: _Optional[str] = ..., vhd: _Optional[_Union[VirtualHardDisk, _Mapping]] = ..., create_option: _Optional[str] = ..., disk_size_gb: _Optional[int] = ..., caching: _Optional[str] = ...) -> None: ...

class StorageProfile(_message.Message):
    __slots__ = ("image_reference", "os_disk", "data_disks")
    IMAGE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    OS_DISK_FIELD_NUMBER: _ClassVar[int]
    DATA_DISKS_FIELD_NUMBER: _ClassVar[int]
    image_reference: ImageReference
    os_disk: OsDisk
    data_disks: _containers.RepeatedCompositeFieldContainer[DataDisk]
    def __init__(self, image_reference: _Optional[_Union[ImageReference, _Mapping]] = ..., os_disk: _Optional[_Union[OsDisk, _Mapping]] = ..., data_disks: _Optional[_Iterable[_Union[DataDisk, _Mapping]]] = ...) -> None: ...

class SshPublicKey(_message.Message):
    __slots__ = ("path", "key_data")
    PATH_FIELD_NUMBER: _ClassVar[int]
    KEY_DATA_FIELD_NUMBER: _ClassVar[int]
    path: str
    key_data: str
    def __init__(self, path: _Optional[str] = ..., key_data: _Optional[str] = ...) -> None: ...

class SshConfiguration(_message.Message):
    __slots__ = ("public_keys",)
    PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    public_keys: _containers.RepeatedCompositeFieldContainer[SshPublicKey]
    def __init__(self, public_keys: _Optional[_Iterable[_Union[SshPublicKey, _Mapping]]] = ...) -> None: ...

class LinuxConfiguration(_message.Message):
    __slots__ = ("provision_vm_agent", "disable_password_authentication", "ssh")
    PROVISION_VM_AGENT_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PASSWORD_AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    SSH_FIELD_NUMBER: _ClassVar[int]
    provision_vm_agent: bool
    disable_password_authentication: bool
    ssh: SshConfiguration
    def __init__(self, provision_vm_agent: _Optional[bool] = ..., disable_password_authentication: _Optional[bool] = ..., ssh: _Optional[_Union[SshConfiguration, _Mapping]] = ...) -> None: ...

class OsProfile(_message.Message):
    __slots__ = ("computer_name", "linux_configuration", "admin_username")
    COMPUTER_NAME_FIELD_NUMBER: _ClassVar[int]
    LINUX_CONFIGURATION_FIELD_NUMBER: _ClassVar[int]
    ADMIN_USERNAME_FIELD_NUMBER: _ClassVar[int]
    computer_name: str
    linux_configuration: LinuxConfiguration
    admin_username: str
    def __init__(self, computer_name: _Optional[str] = ..., linux_configuration: _Optional[_Union[LinuxConfiguration, _Mapping]] = ..., admin_username: _Optional[str] = ...) -> None: ...

class NetworkInterfaceReference(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class NetworkProfile(_message.Message):
    __slots__ = ("network_interfaces",)
    NETWORK_INTERFACES_FIELD_NUMBER: _ClassVar[int]
    network_interfaces: _containers.RepeatedCompositeFieldContainer[NetworkInterfaceReference]
    def __init__(self, network_interfaces: _Optional[_Iterable[_Union[NetworkInterfaceReference, _Mapping]]] = ...) -> None: ...

class VirtualMachineAgentInstanceView(_message.Message):
    __slots__ = ("vm_agent_version", "statuses")
    VM_AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    vm_agent_version: str
    statuses: _containers.RepeatedCompositeFieldContainer[InstanceViewStatus]
    def __init__(self, vm_agent_version: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[InstanceViewStatus, _Mapping]]] = ...) -> None: ...

class VirtualMachineExtensionInstanceView(_message.Message):
    __slots__ = ("name", "type", "type_handler_version", "substatuses", "statuses")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_HANDLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBSTATUSES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    type_handler_version: str
    substatuses: _containers.RepeatedCompositeFieldContainer[InstanceViewStatus]
    statuses: _containers.RepeatedCompositeFieldContainer[InstanceViewStatus]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., type_handler_version: _Optional[str] = ..., substatuses: _Optional[_Iterable[_Union[InstanceViewStatus, _Mapping]]] = ..., statuses: _Optional[_Iterable[_Union[InstanceViewStatus, _Mapping]]] = ...) -> None: ...

class ResourceDiskInstanceView(_message.Message):
    __slots__ = ("state", "message", "mount_point")
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MOUNT_POINT_FIELD_NUMBER: _ClassVar[int]
    state: str
    message: str
    mount_point: str
    def __init__(self, state: _Optional[str] = ..., message: _Optional[str] = ..., mount_point: _Optional[str] = ...) -> None: ...

class VirtualMachineInstanceView(_message.Message):
    __slots__ = ("computer_name", "platform_fault_domain", "node_name", "hypervisor", "domain_name", "statuses", "vm_agent", "extensions", "resource_disk")
    COMPUTER_NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FAULT_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    VM_AGENT_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_DISK_FIELD_NUMBER: _ClassVar[int]
    computer_name: str
    platform_fault_domain: int
    node_name: str
    hypervisor: str
    domain_name: str
    statuses: _containers.RepeatedCompositeFieldContainer[InstanceViewStatus]
    vm_agent: VirtualMachineAgentInstanceView
    extensions: _containers.RepeatedCompositeFieldContainer[VirtualMachineExtensionInstanceView]
    resource_disk: ResourceDiskInstanceView
    def __init__(self, computer_name: _Optional[str] = ..., platform_fault_domain: _Optional[int] = ..., node_name: _Optional[str] = ..., hypervisor: _Optional[str] = ..., domain_name: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[InstanceViewStatus, _Mapping]]] = ..., vm_agent: _Optional[_Union[VirtualMachineAgentInstanceView, _Mapping]] = ..., extensions: _Optional[_Iterable[_Union[VirtualMachineExtensionInstanceView, _Mapping]]] = ..., resource_disk: _Optional[_Union[ResourceDiskInstanceView, _Mapping]] = ...) -> None: ...

class VirtualMachineProperties(_message.Message):
    __slots__ = ("vm_id", "hardware_profile", "storage_profile", "os_profile", "provisioning_state", "instance_view", "last_operation_id", "error", "network_profile", "guest_agent")
    VM_ID_FIELD_NUMBER: _ClassVar[int]
    HARDWARE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_PROFILE_FIELD_NUMBER: _ClassVar[int]
    OS_PROFILE_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_VIEW_FIELD_NUMBER: _ClassVar[int]
    LAST_OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NETWORK_PROFILE_FIELD_NUMBER: _ClassVar[int]
    GUEST_AGENT_FIELD_NUMBER: _ClassVar[int]
    vm_id: str
    hardware_profile: HardwareProfile
    storage_profile: StorageProfile
    os_profile: OsProfile
    provisioning_state: str
    instance_view: VirtualMachineInstanceView
    last_operation_id: str
    error: ErrorDetail
    network_profile: NetworkProfile
    guest_agent: str
    def __init__(self, vm_id: _Optional[str] = ..., hardware_profile: _Optional[_Union[HardwareProfile, _Mapping]] = ..., storage_profile: _Optional[_Union[StorageProfile, _Mapping]] = ..., os_profile: _Optional[_Union[OsProfile, _Mapping]] = ..., provisioning_state: _Optional[str] = ..., instance_view: _Optional[_Union[VirtualMachineInstanceView, _Mapping]] = ..., last_operation_id: _Optional[str] = ..., error: _Optional[_Union[ErrorDetail, _Mapping]] = ..., network_profile: _Optional[_Union[NetworkProfile, _Mapping]] = ..., guest_agent: _Optional[str] = ...) -> None: ...

class VirtualMachine(_message.Message):
    __slots__ = ("id", "name", "type", "location", "properties", "resources")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    type: str
    location: str
    properties: VirtualMachineProperties
    resources: _containers.RepeatedCompositeFieldContainer[VirtualMachineExtension]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[VirtualMachineProperties, _Mapping]] = ..., resources: _Optional[_Iterable[_Union[VirtualMachineExtension, _Mapping]]] = ...) -> None: ...

class CreateVirtualMachineRequest(_message.Message):
    __slots__ = ("resource_group", "name", "location", "image", "size", "storage_account", "os_disk_delete_option", "vnet_name", "subnet", "nics", "private_ip_address", "user_data", "provision_vm_agent", "admin_username", "ssh_public_keys", "computer_name", "admin_password", "custom_data", "disable_password_authentication")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    STORAGE_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    OS_DISK_DELETE_OPTION_FIELD_NUMBER: _ClassVar[int]
    VNET_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    NICS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    USER_DATA_FIELD_NUMBER: _ClassVar[int]
    PROVISION_VM_AGENT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_USERNAME_FIELD_NUMBER: _ClassVar[int]
    SSH_PUBLIC_KEYS_FIELD_NUMBER: _ClassVar[int]
    COMPUTER_NAME_FIELD_NUMBER: _ClassVar[int]
    ADMIN_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_DATA_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PASSWORD_AUTHENTICATION_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    location: str
    image: str
    size: str
    storage_account: str
    os_disk_delete_option: str
    vnet_name: str
    subnet: str
    nics: _containers.RepeatedScalarFieldContainer[str]
    private_ip_address: str
    user_data: str
    provision_vm_agent: bool
    admin_username: str
    ssh_public_keys: _containers.RepeatedCompositeFieldContainer[SshPublicKey]
    computer_name: str
    admin_password: str
    custom_data: str
    disable_password_authentication: bool
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., location: _Optional[str] = ..., image: _Optional[str] = ..., size: _Optional[str] = ..., storage_account: _Optional[str] = ..., os_disk_delete_option: _Optional[str] = ..., vnet_name: _Optional[str] = ..., subnet: _Optional[str] = ..., nics: _Optional[_Iterable[str]] = ..., private_ip_address: _Optional[str] = ..., user_data: _Optional[str] = ..., provision_vm_agent: _Optional[bool] = ..., admin_username: _Optional[str] = ..., ssh_public_keys: _Optional[_Iterable[_Union[SshPublicKey, _Mapping]]] = ..., computer_name: _Optional[str] = ..., admin_password: _Optional[str] = ..., custom_data: _Optional[str] = ..., disable_password_authentication: _Optional[bool] = ...) -> None: ...

class VirtualMachineRef(_message.Message):
    __slots__ = ("resource_group", "name", "instance_view")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_VIEW_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    instance_view: bool
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., instance_view: _Optional[bool] = ...) -> None: ...

class AttachDiskRequest(_message.Message):
    __slots__ = ("resource_group", "vm_name", "name", "size_gb", "new")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_GB_FIELD_NUMBER: _ClassVar[int]
    NEW_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vm_name: str
    name: str
    size_gb: int
    new: bool
    def __init__(self, resource_group: _Optional[str] = ..., vm_name: _Optional[str] = ..., name: _Optional[str] = ..., size_gb: _Optional[int] = ..., new: _Optional[bool] = ...) -> None: ...

class DetachDiskRequest(_message.Message):
    __slots__ = ("resource_group", "vm_name", "name")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vm_name: str
    name: str
    def __init__(self, resource_group: _Optional[str] = ..., vm_name: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListVirtualMachinesRequest(_message.Message):
    __slots__ = ("resource_group", "max_items", "next_token")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    max_items: int
    next_token: str
    def __init__(self, resource_group: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListVirtualMachinesResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[VirtualMachine]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[VirtualMachine, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class ListSizesRequest(_message.Message):
    __slots__ = ("location",)
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    location: str
    def __init__(self, location: _Optional[str] = ...) -> None: ...

class ListSizesResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[VirtualMachineSize]
    def __init__(self, value: _Optional[_Iterable[_Union[VirtualMachineSize, _Mapping]]] = ...) -> None: ...

class SerialOutputRequest(_message.Message):
    __slots__ = ("resource_group", "name", "tail_lines")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAIL_LINES_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    tail_lines: int
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., tail_lines: _Optional[int] = ...) -> None: ...

class SerialOutput(_message.Message):
    __slots__ = ("node_name", "path", "output")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    path: str
    output: str
    def __init__(self, node_name: _Optional[str] = ..., path: _Optional[str] = ..., output: _Optional[str] = ...) -> None: ...

class VirtualMachineImage(_message.Message):
    __slots__ = ("architecture", "publisher", "offer", "sku", "version", "urn", "os_type", "hyper_v_generation", "exclude_from_latest", "boot", "disk_format", "sha256")
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URN_FIELD_NUMBER: _ClassVar[int]
    OS_TYPE_FIELD_NUMBER: _ClassVar[int]
    HYPER_V_GENERATION_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FROM_LATEST_FIELD_NUMBER: _ClassVar[int]
    BOOT_FIELD_NUMBER: _ClassVar[int]
    DISK_FORMAT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    architecture: str
    publisher: str
    offer: str
    sku: str
    version: str
    urn: str
    os_type: str
    hyper_v_generation: str
    exclude_from_latest: bool
    boot: str
    disk_format: str
    sha256: str
    def __init__(self, architecture: _Optional[str] = ..., publisher: _Optional[str] = ..., offer: _Optional[str] = ..., sku: _Optional[str] = ..., version: _Optional[str] = ..., urn: _Optional[str] = ..., os_type: _Optional[str] = ..., hyper_v_generation: _Optional[str] = ..., exclude_from_latest: _Optional[bool] = ..., boot: _Optional[str] = ..., disk_format: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class ImageImportHeader(_message.Message):
    __slots__ = ("publisher", "offer", "sku", "version", "os_type", "hyper_v_generation", "exclude_from_latest", "content_length", "source_blob_url")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    OS_TYPE_FIELD_NUMBER: _ClassVar[int]
    HYPER_V_GENERATION_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FROM_LATEST_FIELD_NUMBER: _ClassVar[int]
    CONTENT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BLOB_URL_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    offer: str
    sku: str
    version: str
    os_type: str
    hyper_v_generation: str
    exclude_from_latest: bool
    content_length: int
    source_blob_url: str
    def __init__(self, publisher: _Optional[str] = ..., offer: _Optional[str] = ..., sku: _Optional[str] = ..., version: _Optional[str] = ..., os_type: _Optional[str] = ..., hyper_v_generation: _Optional[str] = ..., exclude_from_latest: _Optional[bool] = ..., content_length: _Optional[int] = ..., source_blob_url: _Optional[str] = ...) -> None: ...

class ImportImageChunk(_message.Message):
    __slots__ = ("header", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ImageImportHeader
    data: bytes
    def __init__(self, header: _Optional[_Union[ImageImportHeader, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ListImagesRequest(_message.Message):
    __slots__ = ("publisher", "offer", "sku", "all")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    offer: str
    sku: str
    all: bool
    def __init__(self, publisher: _Optional[str] = ..., offer: _Optional[str] = ..., sku: _Optional[str] = ..., all: _Optional[bool] = ...) -> None: ...

class ListImagesResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[VirtualMachineImage]
    def __init__(self, value: _Optional[_Iterable[_Union[VirtualMachineImage, _Mapping]]] = ...) -> None: ...

class ImageVersionRef(_message.Message):
    __slots__ = ("publisher", "offer", "sku", "version")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    OFFER_FIELD_NUMBER: _ClassVar[int]
    SKU_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    offer: str
    sku: str
    version: str
    def __init__(self, publisher: _Optional[str] = ..., offer: _Optional[str] = ..., sku: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class UpdateImageVersionRequest(_message.Message):
    __slots__ = ("image", "exclude_from_latest")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_FROM_LATEST_FIELD_NUMBER: _ClassVar[int]
    image: ImageVersionRef
    exclude_from_latest: bool
    def __init__(self, image: _Optional[_Union[ImageVersionRef, _Mapping]] = ..., exclude_from_latest: _Optional[bool] = ...) -> None: ...

class DeleteImageVersionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VirtualMachineExtensionProperties(_message.Message):
    __slots__ = ("publisher", "type", "type_handler_version", "auto_upgrade_minor_version", "settings", "provisioning_state", "instance_view", "force_update_tag", "error", "last_operation_id", "sequence_number", "handler_log")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_HANDLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUTO_UPGRADE_MINOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_VIEW_FIELD_NUMBER: _ClassVar[int]
    FORCE_UPDATE_TAG_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LAST_OPERATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    HANDLER_LOG_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    type: str
    type_handler_version: str
    auto_upgrade_minor_version: bool
    settings: _struct_pb2.Struct
    provisioning_state: str
    instance_view: VirtualMachineExtensionInstanceView
    force_update_tag: str
    error: ErrorDetail
    last_operation_id: str
    sequence_number: int
    handler_log: str
    def __init__(self, publisher: _Optional[str] = ..., type: _Optional[str] = ..., type_handler_version: _Optional[str] = ..., auto_upgrade_minor_version: _Optional[bool] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., provisioning_state: _Optional[str] = ..., instance_view: _Optional[_Union[VirtualMachineExtensionInstanceView, _Mapping]] = ..., force_update_tag: _Optional[str] = ..., error: _Optional[_Union[ErrorDetail, _Mapping]] = ..., last_operation_id: _Optional[str] = ..., sequence_number: _Optional[int] = ..., handler_log: _Optional[str] = ...) -> None: ...

class VirtualMachineExtension(_message.Message):
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
    properties: VirtualMachineExtensionProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[VirtualMachineExtensionProperties, _Mapping]] = ...) -> None: ...

class SetExtensionRequest(_message.Message):
    __slots__ = ("resource_group", "vm_name", "name", "publisher", "type", "type_handler_version", "auto_upgrade_minor_version", "settings", "protected_settings", "force_update_tag")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_HANDLER_VERSION_FIELD_NUMBER: _ClassVar[int]
    AUTO_UPGRADE_MINOR_VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    PROTECTED_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    FORCE_UPDATE_TAG_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vm_name: str
    name: str
    publisher: str
    type: str
    type_handler_version: str
    auto_upgrade_minor_version: bool
    settings: _struct_pb2.Struct
    protected_settings: _struct_pb2.Struct
    force_update_tag: str
    def __init__(self, resource_group: _Optional[str] = ..., vm_name: _Optional[str] = ..., name: _Optional[str] = ..., publisher: _Optional[str] = ..., type: _Optional[str] = ..., type_handler_version: _Optional[str] = ..., auto_upgrade_minor_version: _Optional[bool] = ..., settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., protected_settings: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., force_update_tag: _Optional[str] = ...) -> None: ...

class ExtensionRef(_message.Message):
    __slots__ = ("resource_group", "vm_name", "name", "instance_view", "logs")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_VIEW_FIELD_NUMBER: _ClassVar[int]
    LOGS_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vm_name: str
    name: str
    instance_view: bool
    logs: bool
    def __init__(self, resource_group: _Optional[str] = ..., vm_name: _Optional[str] = ..., name: _Optional[str] = ..., instance_view: _Optional[bool] = ..., logs: _Optional[bool] = ...) -> None: ...

class ListExtensionsRequest(_message.Message):
    __slots__ = ("resource_group", "vm_name")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VM_NAME_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vm_name: str
    def __init__(self, resource_group: _Optional[str] = ..., vm_name: _Optional[str] = ...) -> None: ...

class ListExtensionsResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[VirtualMachineExtension]
    def __init__(self, value: _Optional[_Iterable[_Union[VirtualMachineExtension, _Mapping]]] = ...) -> None: ...

class ExtensionImage(_message.Message):
    __slots__ = ("publisher", "type", "version", "description")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    type: str
    version: str
    description: str
    def __init__(self, publisher: _Optional[str] = ..., type: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListExtensionImagesRequest(_message.Message):
    __slots__ = ("publisher", "type")
    PUBLISHER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    publisher: str
    type: str
    def __init__(self, publisher: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class ListExtensionImagesResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[ExtensionImage]
    def __init__(self, value: _Optional[_Iterable[_Union[ExtensionImage, _Mapping]]] = ...) -> None: ...

class FilterVerdict(_message.Message):
    __slots__ = ("filter", "passed", "reason")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    PASSED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    filter: str
    passed: bool
    reason: str
    def __init__(self, filter: _Optional[str] = ..., passed: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class PlacementCandidate(_message.Message):
    __slots__ = ("node", "fault_domain", "filters", "weight", "chosen")
    NODE_FIELD_NUMBER: _ClassVar[int]
    FAULT_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    node: str
    fault_domain: int
    filters: _containers.RepeatedCompositeFieldContainer[FilterVerdict]
    weight: float
    chosen: bool
    def __init__(self, node: _Optional[str] = ..., fault_domain: _Optional[int] = ..., filters: _Optional[_Iterable[_Union[FilterVerdict, _Mapping]]] = ..., weight: _Optional[float] = ..., chosen: _Optional[bool] = ...) -> None: ...

class TraceStep(_message.Message):
    __slots__ = ("time", "source", "step", "message", "detail", "placement", "placement_summary")
    TIME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    time: str
    source: str
    step: str
    message: str
    detail: str
    placement: _containers.RepeatedCompositeFieldContainer[PlacementCandidate]
    placement_summary: PlacementSummary
    def __init__(self, time: _Optional[str] = ..., source: _Optional[str] = ..., step: _Optional[str] = ..., message: _Optional[str] = ..., detail: _Optional[str] = ..., placement: _Optional[_Iterable[_Union[PlacementCandidate, _Mapping]]] = ..., placement_summary: _Optional[_Union[PlacementSummary, _Mapping]] = ...) -> None: ...

class FilterCount(_message.Message):
    __slots__ = ("filter", "nodes")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    filter: str
    nodes: int
    def __init__(self, filter: _Optional[str] = ..., nodes: _Optional[int] = ...) -> None: ...

class PlacementSummary(_message.Message):
    __slots__ = ("nodes", "considered", "feasible", "rejected", "cores", "memory_mb", "resource_disk_mb")
    NODES_FIELD_NUMBER: _ClassVar[int]
    CONSIDERED_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_DISK_MB_FIELD_NUMBER: _ClassVar[int]
    nodes: int
    considered: int
    feasible: int
    rejected: _containers.RepeatedCompositeFieldContainer[FilterCount]
    cores: int
    memory_mb: int
    resource_disk_mb: int
    def __init__(self, nodes: _Optional[int] = ..., considered: _Optional[int] = ..., feasible: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[FilterCount, _Mapping]]] = ..., cores: _Optional[int] = ..., memory_mb: _Optional[int] = ..., resource_disk_mb: _Optional[int] = ...) -> None: ...

class PlacementExplanation(_message.Message):
    __slots__ = ("node", "now", "registered", "in_trace", "note")
    NODE_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    IN_TRACE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    node: str
    now: PlacementCandidate
    registered: bool
    in_trace: bool
    note: str
    def __init__(self, node: _Optional[str] = ..., now: _Optional[_Union[PlacementCandidate, _Mapping]] = ..., registered: _Optional[bool] = ..., in_trace: _Optional[bool] = ..., note: _Optional[str] = ...) -> None: ...

class Operation(_message.Message):
    __slots__ = ("id", "name", "status", "start_time", "end_time", "target", "error", "trace", "why_not")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    WHY_NOT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    status: str
    start_time: str
    end_time: str
    target: str
    error: ErrorDetail
    trace: _containers.RepeatedCompositeFieldContainer[TraceStep]
    why_not: PlacementExplanation
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., status: _Optional[str] = ..., start_time: _Optional[str] = ..., end_time: _Optional[str] = ..., target: _Optional[str] = ..., error: _Optional[_Union[ErrorDetail, _Mapping]] = ..., trace: _Optional[_Iterable[_Union[TraceStep, _Mapping]]] = ..., why_not: _Optional[_Union[PlacementExplanation, _Mapping]] = ...) -> None: ...

class GetOperationRequest(_message.Message):
    __slots__ = ("id", "trace", "why_not")
    ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_FIELD_NUMBER: _ClassVar[int]
    WHY_NOT_FIELD_NUMBER: _ClassVar[int]
    id: str
    trace: bool
    why_not: str
    def __init__(self, id: _Optional[str] = ..., trace: _Optional[bool] = ..., why_not: _Optional[str] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("name", "state", "fault_domain", "hypervisor", "cores", "memory_mb", "local_disk_mb", "allocated_cores", "allocated_memory_mb", "allocated_local_disk_mb", "vm_count", "registered_time", "address", "certificate_serial")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FAULT_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    HYPERVISOR_FIELD_NUMBER: _ClassVar[int]
    CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DISK_MB_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_CORES_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_MEMORY_MB_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_LOCAL_DISK_MB_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_TIME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    name: str
    state: str
    fault_domain: int
    hypervisor: str
    cores: int
    memory_mb: int
    local_disk_mb: int
    allocated_cores: int
    allocated_memory_mb: int
    allocated_local_disk_mb: int
    vm_count: int
    registered_time: str
    address: str
    certificate_serial: str
    def __init__(self, name: _Optional[str] = ..., state: _Optional[str] = ..., fault_domain: _Optional[int] = ..., hypervisor: _Optional[str] = ..., cores: _Optional[int] = ..., memory_mb: _Optional[int] = ..., local_disk_mb: _Optional[int] = ..., allocated_cores: _Optional[int] = ..., allocated_memory_mb: _Optional[int] = ..., allocated_local_disk_mb: _Optional[int] = ..., vm_count: _Optional[int] = ..., registered_time: _Optional[str] = ..., address: _Optional[str] = ..., certificate_serial: _Optional[str] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("max_items", "next_token")
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    max_items: int
    next_token: str
    def __init__(self, max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[Node]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class CreateJoinTokenRequest(_message.Message):
    __slots__ = ("ttl_s", "description")
    TTL_S_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ttl_s: int
    description: str
    def __init__(self, ttl_s: _Optional[int] = ..., description: _Optional[str] = ...) -> None: ...

class JoinToken(_message.Message):
    __slots__ = ("token", "id", "expires_time", "ca_fingerprint", "join_address", "description", "used_by")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_TIME_FIELD_NUMBER: _ClassVar[int]
    CA_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    JOIN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    USED_BY_FIELD_NUMBER: _ClassVar[int]
    token: str
    id: str
    expires_time: str
    ca_fingerprint: str
    join_address: str
    description: str
    used_by: str
    def __init__(self, token: _Optional[str] = ..., id: _Optional[str] = ..., expires_time: _Optional[str] = ..., ca_fingerprint: _Optional[str] = ..., join_address: _Optional[str] = ..., description: _Optional[str] = ..., used_by: _Optional[str] = ...) -> None: ...

class ListJoinTokensRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListJoinTokensResponse(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[JoinToken]
    def __init__(self, value: _Optional[_Iterable[_Union[JoinToken, _Mapping]]] = ...) -> None: ...

class RemoveNodeRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class RemoveNodeResponse(_message.Message):
    __slots__ = ("name", "certificate_serial", "vm_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SERIAL_FIELD_NUMBER: _ClassVar[int]
    VM_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    certificate_serial: str
    vm_count: int
    def __init__(self, name: _Optional[str] = ..., certificate_serial: _Optional[str] = ..., vm_count: _Optional[int] = ...) -> None: ...
