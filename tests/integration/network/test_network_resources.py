"""Virtual networks, subnets and NICs: addresses from .4, bad input refused with nothing written."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from fabric.v1 import fabric_pb2 as fpb
from fabric.v1 import network_pb2 as pb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import snapshot


def arm(call: Callable[[], object]) -> tuple[grpc.StatusCode, dict[str, Any]]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code(), json.loads(dict(e.value.trailing_metadata())["fabric-error"])


@pytest.fixture
def rg(api: Api) -> Api:
    api.groups.Create(fpb.CreateResourceGroupRequest(name="BlogRG", location="local"))
    return api


def vnet(api: Api, name: str = "blog-vnet", prefixes: tuple[str, ...] = ("10.1.0.0/16",),
         subnet: str = "default", subnet_prefix: str = "10.1.0.0/24") -> pb.VirtualNetwork:
    v: pb.VirtualNetwork = api.vnets.Create(pb.CreateVirtualNetworkRequest(resource_group="BlogRG", name=name,
                                                                           address_prefixes=list(prefixes),
                                                                           subnet_name=subnet,
                                                                           subnet_prefix=subnet_prefix))
    return v


def nic(api: Api, name: str, ip: str = "", subnet: str = "default") -> pb.NetworkInterface:
    n: pb.NetworkInterface = api.nics.Create(pb.CreateNetworkInterfaceRequest(resource_group="BlogRG", name=name,
                                                                              vnet_name="blog-vnet", subnet=subnet,
                                                                              private_ip_address=ip))
    return n


def ip(n: pb.NetworkInterface) -> str:
    address: str = n.properties.ip_configurations[0].properties.private_ip_address
    return address


def test_addresses_start_at_4_and_are_freed_on_delete(rg: Api) -> None:
    v = vnet(rg)
    assert v.type == "Microsoft.Network/virtualNetworks" and v.properties.vni >= 4096
    assert v.properties.dns_suffix.endswith(".internal.fabriclab.test") and len(v.properties.dns_suffix.split(".")[0]) == 26
    a, b = nic(rg, "nic-a"), nic(rg, "nic-b")
    assert (ip(a), ip(b)) == ("10.1.0.4", "10.1.0.5")
    assert a.properties.mac_address.startswith("52-54-00-")
    assert a.properties.ip_configurations[0].properties.private_ip_allocation_method == "Dynamic"
    rg.nics.Delete(pb.NetworkInterfaceRef(resource_group="BlogRG", name="nic-a"))
    assert ip(nic(rg, "nic-c")) == "10.1.0.4"


def test_static_addresses(rg: Api) -> None:
    vnet(rg)
    s = nic(rg, "static", ip="10.1.0.10")
    assert s.properties.ip_configurations[0].properties.private_ip_allocation_method == "Static"
    for addr, code in [("10.1.0.10", "PrivateIPAddressInUse"), ("10.1.1.10", "PrivateIPAddressNotInSubnet"),
                       ("10.1.0.1", "PrivateIPAddressIsReserved"), ("10.1.0.255", "PrivateIPAddressIsReserved"),
                       ("10.1.0.300", "InvalidParameter")]:
        before = snapshot(rg)
        assert arm(lambda: nic(rg, "other", ip=addr))[1]["code"] == code
        assert snapshot(rg) == before


def test_a_full_subnet_says_so(rg: Api) -> None:
    vnet(rg, subnet_prefix="10.1.0.0/29")          # .4, .5, .6 usable
    for i in range(3):
        nic(rg, f"n{i}")
    status, body = arm(lambda: nic(rg, "n3"))
    assert body["code"] == "SubnetIsFull" and "10.1.0.0/29" in body["message"]


@pytest.mark.parametrize("prefixes,subnet_prefix,code,target", [
    (("10.1.0.0/16", "10.1.128.0/17"), "10.1.0.0/24", "NetcfgInvalidAddressSpace", "addressSpace.addressPrefixes"),
    (("10.1.0.0/16",), "10.2.0.0/24", "NetcfgSubnetRangeOutsideVnet", "subnets.addressPrefix"),
    (("10.1.0.1/16",), "10.1.0.0/24", "InvalidParameter", "addressSpace.addressPrefixes"),
    (("8.8.0.0/16",), "8.8.0.0/24", "InvalidParameter", "addressSpace.addressPrefixes"),
    (("10.1.0.0/16",), "10.1.0.0/30", "InvalidParameter", "subnets.addressPrefix"),
    (("not-a-cidr",), "10.1.0.0/24", "InvalidParameter", "addressSpace.addressPrefixes"),
])
def test_bad_vnets_are_refused_and_change_nothing(rg: Api, prefixes: tuple[str, ...], subnet_prefix: str,
                                                  code: str, target: str) -> None:
    before = snapshot(rg)
    status, body = arm(lambda: vnet(rg, prefixes=prefixes, subnet_prefix=subnet_prefix))
    assert (body["code"], body["target"]) == (code, target)
    assert snapshot(rg) == before


def test_subnets_do_not_overlap(rg: Api) -> None:
    vnet(rg)
    rg.vnets.CreateSubnet(pb.CreateSubnetRequest(resource_group="BlogRG", vnet_name="blog-vnet", name="back",
                                                 address_prefix="10.1.1.0/24"))
    status, body = arm(lambda: rg.vnets.CreateSubnet(pb.CreateSubnetRequest(
        resource_group="BlogRG", vnet_name="blog-vnet", name="clash", address_prefix="10.1.1.128/25")))
    assert body["code"] == "NetcfgOverlappingSubnets"
    assert ip(nic(rg, "in-back", subnet="back")) == "10.1.1.4"


def test_vm_create_makes_the_default_network_and_a_nic_in_use(rg: Api) -> None:
    register_node(rg.store, "node-1")
    rg.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name="BlogVM",
                                                  image="fabriclab:busybox:lab:latest", size="Lab_A0"))
    vm = rg.vms.Get(fpb.VirtualMachineRef(resource_group="BlogRG", name="BlogVM"))
    [ref] = vm.properties.network_profile.network_interfaces
    assert "/providers/Microsoft.Network/networkInterfaces/blogvm" in ref.id
    v = rg.vnets.Get(pb.VirtualNetworkRef(resource_group="BlogRG", name="BlogRG-vnet"))
    assert list(v.properties.address_space.address_prefixes) == ["10.0.0.0/16"]
    n = rg.nics.Get(pb.NetworkInterfaceRef(resource_group="BlogRG", name=ref.id.rsplit("/", 1)[1]))
    assert ip(n) == "10.0.0.4" and n.properties.virtual_machine.id == vm.id
    assert n.properties.dns_settings.internal_fqdn == f"blogvm.{v.properties.dns_suffix}"
    status, body = arm(lambda: rg.nics.Delete(pb.NetworkInterfaceRef(resource_group="BlogRG",
                                                                     name=ref.id.rsplit("/", 1)[1])))
    assert body["code"] == "NicInUse"
    status, body = arm(lambda: rg.vnets.Delete(pb.VirtualNetworkRef(resource_group="BlogRG", name="BlogRG-vnet")))
    assert body["code"] == "InUseSubnetCannotBeDeleted"


def test_vm_create_with_a_named_nic_and_a_static_address(rg: Api) -> None:
    register_node(rg.store, "node-1")
    vnet(rg)
    free = nic(rg, "my-nic")
    rg.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name="vm1", nics=[free.id],
                                                  image="fabriclab:busybox:lab:latest", size="Lab_A0"))
    status, body = arm(lambda: rg.vms.Create(fpb.CreateVirtualMachineRequest(
        resource_group="BlogRG", name="vm2", nics=["my-nic"], image="fabriclab:busybox:lab:latest", size="Lab_A0")))
    assert body["code"] == "NicInUse"
    rg.vms.Create(fpb.CreateVirtualMachineRequest(resource_group="BlogRG", name="vm3", vnet_name="blog-vnet",
                                                  subnet="default", private_ip_address="10.1.0.50",
                                                  image="fabriclab:busybox:lab:latest", size="Lab_A0"))
    ips = sorted(ip(n) for n in rg.nics.List(pb.ListNetworkInterfacesRequest(resource_group="BlogRG")).value)
    assert ips == ["10.1.0.4", "10.1.0.50"]


def test_network_cli(rg: Api) -> None:
    from tests.integration.test_cli import fabric
    r = fabric(rg.address, "network", "vnet", "create", "-g", "BlogRG", "-n", "blog-vnet", "--address-prefix",
               "10.1.0.0/16", "--subnet-name", "default", "--subnet-prefix", "10.1.0.0/24", "-o", "table")
    assert r.returncode == 0, r.stderr
    assert "10.1.0.0/16" in r.stdout and ".internal.fabriclab.test" in r.stdout
    r = fabric(rg.address, "network", "nic", "create", "-g", "BlogRG", "-n", "nic1", "--vnet-name", "blog-vnet",
               "--subnet", "default", "--private-ip-address", "10.1.0.9")
    assert json.loads(r.stdout)["properties"]["ipConfigurations"][0]["properties"]["privateIpAddress"] == "10.1.0.9"
    r = fabric(rg.address, "network", "nic", "show", "-g", "BlogRG", "-n", "nic1", "-o", "table")
    assert "10.1.0.9" in r.stdout and "Static" in r.stdout and "Bridge" in r.stdout
    r = fabric(rg.address, "network", "vnet", "create", "-g", "BlogRG", "-n", "bad", "--address-prefix", "10.1.0.1/16")
    err = json.loads(r.stderr)["error"]
    assert r.returncode == 1 and err["target"] == "addressSpace.addressPrefixes" and "10.1.0.1/16" in err["message"]
    assert fabric(rg.address, "network", "nic", "delete", "-g", "BlogRG", "-n", "nic1").returncode == 0


def test_no_two_nics_ever_share_a_mac(rg: Api) -> None:
    """A node names each VM's tap after its MAC (port security): a MAC drawn twice is drawn again."""
    vnet(rg)
    drawn = iter(["52:54:00:aa:aa:01", "52:54:00:aa:aa:01", "52:54:00:aa:aa:02"])
    rg.compute.network.draw_mac = lambda: next(drawn)
    first, second = nic(rg, "first"), nic(rg, "second")
    assert (first.properties.mac_address, second.properties.mac_address) == ("52-54-00-AA-AA-01",
                                                                              "52-54-00-AA-AA-02")
    rg.nics.Delete(pb.NetworkInterfaceRef(resource_group="BlogRG", name="first"))
    drawn = iter(["52:54:00:aa:aa:01"])                       # freed with its NIC
    assert nic(rg, "third").properties.mac_address == "52-54-00-AA-AA-01"
