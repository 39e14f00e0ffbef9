"""ARM paging of list APIs: pages of at most max_items, a nextLink token to the rest, absurd sizes clamped,
foreign tokens refused; the CLI follows the pages, or stops at --max-items and says how to go on."""
from __future__ import annotations

import json

from fabric.arm.paging import MAX_PAGE
from fabric.v1 import deployment_pb2 as dpb
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import network_pb2 as npb
from fabric.v1 import storage_pb2 as spb
from tests.integration.conftest import Api, register_node
from tests.integration.test_api_errors import arm_error
from tests.integration.test_cli import fabric


def setup_vms(api: Api, n: int) -> None:
    api.groups.Create(pb.CreateResourceGroupRequest(name="RG", location="local"))
    register_node(api.store, "node-1", cores=8, memory_mb=65536)
    for i in range(n):
        api.vms.Create(pb.CreateVirtualMachineRequest(resource_group="RG", name=f"vm{i}",
                                                      image="fabriclab:busybox:lab:latest", size="Lab_A0"))


def test_a_list_comes_in_pages_each_record_once(api: Api) -> None:
    setup_vms(api, 7)
    seen, token, sizes = [], "", []
    while True:
        res = api.vms.List(pb.ListVirtualMachinesRequest(resource_group="RG", max_items=3, next_token=token))
        sizes.append(len(res.value))
        seen += [v.name for v in res.value]
        token = res.next_link
        if not token:
            break
        if len(seen) == 3:                                 # a VM deleted between pages: the list goes on
            api.vms.Delete(pb.VirtualMachineRef(resource_group="RG", name="vm0"))
    assert sizes == [3, 3, 1] and seen == [f"vm{i}" for i in range(7)]
    everything = api.vms.List(pb.ListVirtualMachinesRequest(resource_group="RG", max_items=10 * MAX_PAGE))
    assert len(everything.value) == 7 and everything.next_link == ""      # clamped, not refused


def test_bad_page_sizes_and_tokens_are_refused_by_name(api: Api) -> None:
    setup_vms(api, 2)
    _, body = arm_error(lambda: api.vms.List(pb.ListVirtualMachinesRequest(max_items=-1)))
    assert (body["code"], body["target"]) == ("InvalidParameter", "maxItems")
    _, body = arm_error(lambda: api.vms.List(pb.ListVirtualMachinesRequest(next_token="not a token!")))
    assert (body["code"], body["target"]) == ("InvalidParameter", "nextToken")
    register_node(api.store, "node-2")
    node_token = api.nodes.List(pb.ListNodesRequest(max_items=1)).next_link
    assert node_token
    _, body = arm_error(lambda: api.vms.List(pb.ListVirtualMachinesRequest(next_token=node_token)))
    assert body["target"] == "nextToken"                  # another list's token


def test_nodes_are_paged_too(api: Api) -> None:
    for i in range(5):
        register_node(api.store, f"node-{i}")
    first = api.nodes.List(pb.ListNodesRequest(max_items=2))
    rest = api.nodes.List(pb.ListNodesRequest(max_items=10, next_token=first.next_link))
    assert [n.name for n in first.value] + [n.name for n in rest.value] == [f"node-{i}" for i in range(5)]
    assert rest.next_link == ""


def test_the_cli_follows_pages_or_stops_at_max_items(api: Api) -> None:
    setup_vms(api, 5)
    all_of = fabric(api.address, "vm", "list", "-g", "RG")
    assert [v["name"] for v in json.loads(all_of.stdout)] == [f"vm{i}" for i in range(5)]
    some = fabric(api.address, "vm", "list", "-g", "RG", "--max-items", "2")
    assert [v["name"] for v in json.loads(some.stdout)] == ["vm0", "vm1"]
    token = some.stderr.strip().removeprefix("more: --next-token ")
    rest = fabric(api.address, "vm", "list", "-g", "RG", "--next-token", token)
    assert [v["name"] for v in json.loads(rest.stdout)] == ["vm2", "vm3", "vm4"] and rest.stderr == ""
    bad = fabric(api.address, "vm", "list", "--max-items", "0")
    assert bad.returncode != 0 and "max-items" in bad.stderr


def test_nics_are_paged_and_show_their_vm(api: Api) -> None:
    setup_vms(api, 3)
    first = api.nics.List(npb.ListNetworkInterfacesRequest(resource_group="RG", max_items=2))
    rest = api.nics.List(npb.ListNetworkInterfacesRequest(resource_group="RG", next_token=first.next_link))
    nics = list(first.value) + list(rest.value)
    assert len(first.value) == 2 and len(nics) == 3 and rest.next_link == ""
    assert sorted(n.properties.virtual_machine.id.rsplit("/", 1)[1] for n in nics) == ["vm0", "vm1", "vm2"]
    r = fabric(api.address, "network", "nic", "list", "-g", "RG", "--max-items", "1")
    assert len(json.loads(r.stdout)) == 1 and r.stderr.startswith("more: --next-token ")


TEMPLATE = json.dumps({"$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
                       "contentVersion": "1.0.0.0",
                       "resources": [{"type": "Microsoft.Storage/storageAccounts", "name": "deployed1"}]})


def test_groups_vnets_accounts_containers_and_deployments_are_paged_in_the_cli(api: Api) -> None:
    for i in range(3):
        api.groups.Create(pb.CreateResourceGroupRequest(name=f"RG{i}", location="local"))
        api.vnets.Create(npb.CreateVirtualNetworkRequest(resource_group="RG0", name=f"net{i}",
                                                         address_prefixes=[f"10.{i}.0.0/16"], subnet_name="default",
                                                         subnet_prefix=f"10.{i}.0.0/24"))
        api.accounts.Create(spb.CreateStorageAccountRequest(resource_group="RG0", name=f"acct{i}"))
        api.containers.Create(spb.CreateContainerRequest(account_name="acct0", name=f"box{i}"))
        api.deployments.Create(dpb.CreateDeploymentRequest(resource_group="RG0", name=f"d{i}",
                                                           template_json=TEMPLATE))
    for family in (["group", "list"], ["network", "vnet", "list", "-g", "RG0"],
                   ["storage", "account", "list", "-g", "RG0"], ["storage", "container", "list", "--account-name", "acct0"],
                   ["deployment", "list", "-g", "RG0"]):
        first = fabric(api.address, *family, "--max-items", "2")
        assert first.returncode == 0, first.stderr
        token = first.stderr.strip().removeprefix("more: --next-token ")
        rest = fabric(api.address, *family, "--next-token", token)
        names = [x["name"] for x in json.loads(first.stdout) + json.loads(rest.stdout)]
        assert len(json.loads(first.stdout)) == 2 and rest.stderr == "", family
        assert len(names) == len(set(names)) and len(names) >= 3, (family, names)   # groups: also the system one
