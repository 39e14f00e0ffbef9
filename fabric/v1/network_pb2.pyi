from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddressSpace(_message.Message):
    __slots__ = ("address_prefixes",)
    ADDRESS_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    address_prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, address_prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class SubnetProperties(_message.Message):
    __slots__ = ("address_prefix", "provisioning_state")
    ADDRESS_PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    address_prefix: str
    provisioning_state: str
    def __init__(self, address_prefix: _Optional[str] = ..., provisioning_state: _Optional[str] = ...) -> None: ...

class Subnet(_message.Message):
    __slots__ = ("id", "name", "properties")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    properties: SubnetProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., properties: _Optional[_Union[SubnetProperties, _Mapping]] = ...) -> None: ...

class VirtualNetworkProperties(_message.Message):
    __slots__ = ("address_space", "subnets", "provisioning_state", "vni", "dns_suffix")
    ADDRESS_SPACE_FIELD_NUMBER: _ClassVar[int]
    SUBNETS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    VNI_FIELD_NUMBER: _ClassVar[int]
    DNS_SUFFIX_FIELD_NUMBER: _ClassVar[int]
    address_space: AddressSpace
    subnets: _containers.RepeatedCompositeFieldContainer[Subnet]
    provisioning_state: str
    vni: int
    dns_suffix: str
    def __init__(self, address_space: _Optional[_Union[AddressSpace, _Mapping]] = ..., subnets: _Optional[_Iterable[_Union[Subnet, _Mapping]]] = ..., provisioning_state: _Optional[str] = ..., vni: _Optional[int] = ..., dns_suffix: _Optional[str] = ...) -> None: ...

class VirtualNetwork(_message.Message):
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
    properties: VirtualNetworkProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[VirtualNetworkProperties, _Mapping]] = ...) -> None: ...

class CreateVirtualNetworkRequest(_message.Message):
    __slots__ = ("resource_group", "name", "address_prefixes", "subnet_name", "subnet_prefix")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_PREFIXES_FIELD_NUMBER: _ClassVar[int]
    SUBNET_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_PREFIX_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    address_prefixes: _containers.RepeatedScalarFieldContainer[str]
    subnet_name: str
    subnet_prefix: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., address_prefixes: _Optional[_Iterable[str]] = ..., subnet_name: _Optional[str] = ..., subnet_prefix: _Optional[str] = ...) -> None: ...

class VirtualNetworkRef(_message.Message):
    __slots__ = ("resource_group", "name")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListVirtualNetworksRequest(_message.Message):
    __slots__ = ("resource_group", "max_items", "next_token")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    max_items: int
    next_token: str
    def __init__(self, resource_group: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListVirtualNetworksResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[VirtualNetwork]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[VirtualNetwork, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...

class CreateSubnetRequest(_message.Message):
    __slots__ = ("resource_group", "vnet_name", "name", "address_prefix")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    VNET_NAME_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_PREFIX_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    vnet_name: str
    name: str
    address_prefix: str
    def __init__(self, resource_group: _Optional[str] = ..., vnet_name: _Optional[str] = ..., name: _Optional[str] = ..., address_prefix: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class IpConfigurationProperties(_message.Message):
    __slots__ = ("private_ip_address", "private_ip_allocation_method", "subnet")
    PRIVATE_IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_IP_ALLOCATION_METHOD_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    private_ip_address: str
    private_ip_allocation_method: str
    subnet: Subnet
    def __init__(self, private_ip_address: _Optional[str] = ..., private_ip_allocation_method: _Optional[str] = ..., subnet: _Optional[_Union[Subnet, _Mapping]] = ...) -> None: ...

class IpConfiguration(_message.Message):
    __slots__ = ("name", "properties")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    properties: IpConfigurationProperties
    def __init__(self, name: _Optional[str] = ..., properties: _Optional[_Union[IpConfigurationProperties, _Mapping]] = ...) -> None: ...

class DnsSettings(_message.Message):
    __slots__ = ("internal_fqdn", "internal_domain_name_suffix")
    INTERNAL_FQDN_FIELD_NUMBER: _ClassVar[int]
    INTERNAL_DOMAIN_NAME_SUFFIX_FIELD_NUMBER: _ClassVar[int]
    internal_fqdn: str
    internal_domain_name_suffix: str
    def __init__(self, internal_fqdn: _Optional[str] = ..., internal_domain_name_suffix: _Optional[str] = ...) -> None: ...

class SubResource(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class NetworkInterfaceProperties(_message.Message):
    __slots__ = ("mac_address", "ip_configurations", "dns_settings", "virtual_machine", "provisioning_state", "bridge", "node", "port", "service_namespace")
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IP_CONFIGURATIONS_FIELD_NUMBER: _ClassVar[int]
    DNS_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    VIRTUAL_MACHINE_FIELD_NUMBER: _ClassVar[int]
    PROVISIONING_STATE_FIELD_NUMBER: _ClassVar[int]
    BRIDGE_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SERVICE_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    mac_address: str
    ip_configurations: _containers.RepeatedCompositeFieldContainer[IpConfiguration]
    dns_settings: DnsSettings
    virtual_machine: SubResource
    provisioning_state: str
    bridge: str
    node: str
    port: str
    service_namespace: str
    def __init__(self, mac_address: _Optional[str] = ..., ip_configurations: _Optional[_Iterable[_Union[IpConfiguration, _Mapping]]] = ..., dns_settings: _Optional[_Union[DnsSettings, _Mapping]] = ..., virtual_machine: _Optional[_Union[SubResource, _Mapping]] = ..., provisioning_state: _Optional[str] = ..., bridge: _Optional[str] = ..., node: _Optional[str] = ..., port: _Optional[str] = ..., service_namespace: _Optional[str] = ...) -> None: ...

class NetworkInterface(_message.Message):
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
    properties: NetworkInterfaceProperties
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., location: _Optional[str] = ..., properties: _Optional[_Union[NetworkInterfaceProperties, _Mapping]] = ...) -> None: ...

class CreateNetworkInterfaceRequest(_message.Message):
    __slots__ = ("resource_group", "name", "vnet_name", "subnet", "private_ip_address")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VNET_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBNET_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_IP_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    vnet_name: str
    subnet: str
    private_ip_address: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ..., vnet_name: _Optional[str] = ..., subnet: _Optional[str] = ..., private_ip_address: _Optional[str] = ...) -> None: ...

class NetworkInterfaceRef(_message.Message):
    __slots__ = ("resource_group", "name")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    name: str
    def __init__(self, resource_group: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ListNetworkInterfacesRequest(_message.Message):
    __slots__ = ("resource_group", "max_items", "next_token")
    RESOURCE_GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    resource_group: str
    max_items: int
    next_token: str
    def __init__(self, resource_group: _Optional[str] = ..., max_items: _Optional[int] = ..., next_token: _Optional[str] = ...) -> None: ...

class ListNetworkInterfacesResponse(_message.Message):
    __slots__ = ("value", "next_link")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_LINK_FIELD_NUMBER: _ClassVar[int]
    value: _containers.RepeatedCompositeFieldContainer[NetworkInterface]
    next_link: str
    def __init__(self, value: _Optional[_Iterable[_Union[NetworkInterface, _Mapping]]] = ..., next_link: _Optional[str] = ...) -> None: ...
