"""gRPC servicers of the network provider (Microsoft.Network shapes)."""
from __future__ import annotations

import grpc

from fabric.core import ids
from fabric.arm import paging
from fabric.arm.server import _unary
from fabric.model import NodeRecord, VmRecord
from fabric.network import naming
from fabric.network.model import NicRecord, VnetRecord
from fabric.network.provider import NetworkProvider
from fabric.store import keys
from fabric.store.informer import informed
from fabric.v1 import network_pb2 as pb
from fabric.v1 import network_pb2_grpc as rpc


def vnet_msg(p: NetworkProvider, v: VnetRecord) -> pb.VirtualNetwork:
    vid = p.vnet_id(v)
    return pb.VirtualNetwork(
        id=vid, name=v.name, type="Microsoft.Network/virtualNetworks", location=v.location,
        properties=pb.VirtualNetworkProperties(
            address_space=pb.AddressSpace(address_prefixes=v.address_prefixes), provisioning_state="Succeeded",
            vni=v.vni, dns_suffix=v.dns_suffix,
            subnets=[pb.Subnet(id=f"{vid}/subnets/{s['name']}", name=s["name"],
                               properties=pb.SubnetProperties(address_prefix=s["prefix"],
                                                              provisioning_state="Succeeded"))
                     for s in v.subnets]))


def vms_by_id(p: NetworkProvider) -> dict[str, VmRecord]:
    """Every VM by its id, from the watch-fed view (once per list, not once per NIC)."""
    return {v.value.vm_id: v.value for v in informed(p.store, keys.VMS, VmRecord).list()}


def nic_msg(p: NetworkProvider, n: NicRecord, vms: dict[str, VmRecord] | None = None) -> pb.NetworkInterface:
    """A NIC as ARM shows it, with the VM it is attached to and the names the node gives its port (`vms`: the
    VMs by id, when many NICs are shown)."""
    vrg, vname = n.vnet.split("/", 1)
    vnet = informed(p.store, keys.VNETS, VnetRecord).lookup(keys.vnet(vrg, vname))
    suffix = vnet.value.dns_suffix if vnet else ""
    vnet_id = p.vnet_id(vnet.value) if vnet else ""
    vm_ref, node, bridge, port, service_ns = None, "", "", "", ""
    if n.vm_id:
        vm = (vms if vms is not None else vms_by_id(p)).get(n.vm_id)
        if vm is not None:
            vm_ref = pb.SubResource(id=ids.vm_id(p.config.subscription, vm.resource_group, vm.name))
            node = vm.node
            rec = informed(p.store, keys.NODES, NodeRecord).get(keys.node(vm.node)) if vm.node else None
            if vnet and rec and rec.value.net_tag:       # the names the node agent gives them (fabric.network.naming)
                bridge, port = naming.bridge(rec.value.net_tag, vnet.value.vni), naming.tap(rec.value.net_tag, n.mac)
                service_ns = naming.service_ns(rec.value.net_tag, vnet.value.vni)
    return pb.NetworkInterface(
        id=p.nic_id(n), name=n.name, type="Microsoft.Network/networkInterfaces", location=n.location,
        properties=pb.NetworkInterfaceProperties(
            mac_address=n.mac.replace(":", "-").upper(), provisioning_state="Succeeded", virtual_machine=vm_ref,
            node=node, bridge=bridge, port=port, service_namespace=service_ns,
            ip_configurations=[pb.IpConfiguration(name="ipconfig1", properties=pb.IpConfigurationProperties(
                private_ip_address=n.private_ip, private_ip_allocation_method=n.allocation,
                subnet=pb.Subnet(id=f"{vnet_id}/subnets/{n.subnet}")))],
            dns_settings=pb.DnsSettings(
                internal_domain_name_suffix=suffix,
                internal_fqdn=f"{n.vm_name.lower()}.{suffix}" if n.vm_name and suffix else "")))


class VirtualNetworks(rpc.VirtualNetworksServicer):
    def __init__(self, provider: NetworkProvider) -> None:
        self.p = provider

    @_unary
    def Create(self, req: pb.CreateVirtualNetworkRequest, ctx: grpc.ServicerContext) -> pb.VirtualNetwork:
        return vnet_msg(self.p, self.p.create_vnet(req.resource_group, req.name, list(req.address_prefixes),
                                                   req.subnet_name, req.subnet_prefix))

    @_unary
    def Get(self, req: pb.VirtualNetworkRef, ctx: grpc.ServicerContext) -> pb.VirtualNetwork:
        return vnet_msg(self.p, self.p.vnet(req.resource_group, req.name).value)

    @_unary
    def List(self, req: pb.ListVirtualNetworksRequest, ctx: grpc.ServicerContext) -> pb.ListVirtualNetworksResponse:
        vnets, next_link = paging.page(self.p.list_vnets(req.resource_group), lambda v: v.key, req.max_items,
                                       req.next_token, keys.vnets_in(req.resource_group))
        return pb.ListVirtualNetworksResponse(value=[vnet_msg(self.p, v.value) for v in vnets], next_link=next_link)

    @_unary
    def Delete(self, req: pb.VirtualNetworkRef, ctx: grpc.ServicerContext) -> pb.DeleteResponse:
        self.p.delete_vnet(req.resource_group, req.name)
        return pb.DeleteResponse()

    @_unary
    def CreateSubnet(self, req: pb.CreateSubnetRequest, ctx: grpc.ServicerContext) -> pb.Subnet:
        v = self.p.add_subnet(req.resource_group, req.vnet_name, req.name, req.address_prefix)
        subnet: pb.Subnet = next(s for s in vnet_msg(self.p, v).properties.subnets if s.name == req.name)
        return subnet


class NetworkInterfaces(rpc.NetworkInterfacesServicer):
    def __init__(self, provider: NetworkProvider) -> None:
        self.p = provider

    @_unary
    def Create(self, req: pb.CreateNetworkInterfaceRequest, ctx: grpc.ServicerContext) -> pb.NetworkInterface:
        return nic_msg(self.p, self.p.create_nic(req.resource_group, req.name, req.vnet_name, req.subnet,
                                                 req.private_ip_address))

    @_unary
    def Get(self, req: pb.NetworkInterfaceRef, ctx: grpc.ServicerContext) -> pb.NetworkInterface:
        return nic_msg(self.p, self.p.nic(req.resource_group, req.name).value)

    @_unary
    def List(self, req: pb.ListNetworkInterfacesRequest,
             ctx: grpc.ServicerContext) -> pb.ListNetworkInterfacesResponse:
        nics, next_link = paging.page(self.p.list_nics(req.resource_group), lambda n: n.key, req.max_items,
                                      req.next_token, keys.nics_in(req.resource_group))
        vms = vms_by_id(self.p)
        return pb.ListNetworkInterfacesResponse(value=[nic_msg(self.p, n.value, vms) for n in nics],
                                                next_link=next_link)

    @_unary
    def Delete(self, req: pb.NetworkInterfaceRef, ctx: grpc.ServicerContext) -> pb.DeleteResponse:
        self.p.delete_nic(req.resource_group, req.name)
        return pb.DeleteResponse()


def add_network_servicers(srv: grpc.Server, provider: NetworkProvider) -> None:
    rpc.add_VirtualNetworksServicer_to_server(VirtualNetworks(provider), srv)
    rpc.add_NetworkInterfacesServicer_to_server(NetworkInterfaces(provider), srv)
