"""`fabric network ...`: virtual networks, subnets and network interfaces, in az's conventions."""
from __future__ import annotations

import argparse

from fabric.cli import output
from fabric.cli.client import Client, pages, paged
from fabric.v1 import network_pb2 as pb


def _show(a: argparse.Namespace, msg: object, rows: list[list[object]], headers: list[str]) -> int:
    if a.output == "table":
        print(output.table(rows, headers))
    else:
        output.print_json(msg)
    return 0


def _vnet_rows(vnets: list[pb.VirtualNetwork]) -> list[list[object]]:
    return [[v.name, v.id.split("/")[4], ", ".join(v.properties.address_space.address_prefixes),
             ", ".join(f"{s.name} {s.properties.address_prefix}" for s in v.properties.subnets),
             v.properties.vni, v.properties.dns_suffix] for v in vnets]


VNET_HEADERS = ["Name", "ResourceGroup", "AddressSpace", "Subnets", "VNI", "DnsSuffix"]


def _nic_rows(nics: list[pb.NetworkInterface]) -> list[list[object]]:
    rows: list[list[object]] = []
    for n in nics:
        p = n.properties
        ipc = p.ip_configurations[0].properties
        rows.append([n.name, p.mac_address, ipc.private_ip_address, ipc.private_ip_allocation_method,
                     p.dns_settings.internal_fqdn or "-", p.virtual_machine.id.rsplit("/", 1)[-1] or "-",
                     p.node or "-", p.bridge or "-", p.port or "-"])
    return rows


NIC_HEADERS = ["Name", "MAC", "PrivateIP", "Allocation", "InternalFqdn", "VM", "Node", "Bridge", "Port"]


def vnet_create(c: Client, a: argparse.Namespace) -> int:
    v = c.call(c.vnets.Create, pb.CreateVirtualNetworkRequest(
        resource_group=a.resource_group, name=a.name, address_prefixes=a.address_prefix,
        subnet_name=a.subnet_name or "", subnet_prefix=a.subnet_prefix or ""))
    return _show(a, v, _vnet_rows([v]), VNET_HEADERS)


def vnet_show(c: Client, a: argparse.Namespace) -> int:
    v = c.call(c.vnets.Get, pb.VirtualNetworkRef(resource_group=a.resource_group, name=a.name))
    return _show(a, v, _vnet_rows([v]), VNET_HEADERS)


def vnet_list(c: Client, a: argparse.Namespace) -> int:
    found = pages(c, c.vnets.List, lambda n, token: pb.ListVirtualNetworksRequest(
        resource_group=a.resource_group or "", max_items=n, next_token=token), a)
    return _show(a, [output.as_dict(v) for v in found], _vnet_rows(found), VNET_HEADERS)


def vnet_delete(c: Client, a: argparse.Namespace) -> int:
    c.call(c.vnets.Delete, pb.VirtualNetworkRef(resource_group=a.resource_group, name=a.name))
    return 0


def subnet_create(c: Client, a: argparse.Namespace) -> int:
    s = c.call(c.vnets.CreateSubnet, pb.CreateSubnetRequest(resource_group=a.resource_group, vnet_name=a.vnet_name,
                                                            name=a.name, address_prefix=a.address_prefix))
    return _show(a, s, [[s.name, s.properties.address_prefix]], ["Name", "AddressPrefix"])


def nic_create(c: Client, a: argparse.Namespace) -> int:
    n = c.call(c.nics.Create, pb.CreateNetworkInterfaceRequest(
        resource_group=a.resource_group, name=a.name, vnet_name=a.vnet_name, subnet=a.subnet,
        private_ip_address=a.private_ip_address or ""))
    return _show(a, n, _nic_rows([n]), NIC_HEADERS)


def nic_show(c: Client, a: argparse.Namespace) -> int:
    n = c.call(c.nics.Get, pb.NetworkInterfaceRef(resource_group=a.resource_group, name=a.name))
    return _show(a, n, _nic_rows([n]), NIC_HEADERS)


def nic_list(c: Client, a: argparse.Namespace) -> int:
    nics = pages(c, c.nics.List, lambda n, token: pb.ListNetworkInterfacesRequest(
        resource_group=a.resource_group or "", max_items=n, next_token=token), a)
    return _show(a, [output.as_dict(n) for n in nics], _nic_rows(nics), NIC_HEADERS)


def nic_delete(c: Client, a: argparse.Namespace) -> int:
    c.call(c.nics.Delete, pb.NetworkInterfaceRef(resource_group=a.resource_group, name=a.name))
    return 0


def add_network_commands(groups: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    net = groups.add_parser("network", help="virtual networks and network interfaces").add_subparsers(
        dest="area", required=True)
    vnet = net.add_parser("vnet").add_subparsers(dest="cmd", required=True)
    p = vnet.add_parser("create", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--address-prefix", "--address-prefixes", nargs="+", required=True, dest="address_prefix")
    p.add_argument("--subnet-name")
    p.add_argument("--subnet-prefix")
    p.set_defaults(fn=vnet_create)
    for verb, fn in (("show", vnet_show), ("delete", vnet_delete)):
        p = vnet.add_parser(verb, parents=[common])
        p.add_argument("--resource-group", "-g", required=True)
        p.add_argument("--name", "-n", required=True)
        p.set_defaults(fn=fn)
    p = vnet.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g")
    paged(p)
    p.set_defaults(fn=vnet_list)
    subnet = vnet.add_parser("subnet").add_subparsers(dest="sub", required=True)
    p = subnet.add_parser("create", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--vnet-name", required=True)
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--address-prefix", "--address-prefixes", required=True, dest="address_prefix")
    p.set_defaults(fn=subnet_create)

    nic = net.add_parser("nic").add_subparsers(dest="cmd", required=True)
    p = nic.add_parser("create", parents=[common])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--vnet-name", required=True)
    p.add_argument("--subnet", required=True)
    p.add_argument("--private-ip-address")
    p.set_defaults(fn=nic_create)
    for verb, fn in (("show", nic_show), ("delete", nic_delete)):
        p = nic.add_parser(verb, parents=[common])
        p.add_argument("--resource-group", "-g", required=True)
        p.add_argument("--name", "-n", required=True)
        p.set_defaults(fn=fn)
    p = nic.add_parser("list", parents=[common])
    p.add_argument("--resource-group", "-g")
    paged(p)
    p.set_defaults(fn=nic_list)
