"""Names the fabric derives for the user (the group's default network, a VM's NIC, the group's disk account) are
valid for every group and VM name the API accepts: `Blog_RG(1).x` once made `vm create` fail before it began."""
from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from fabric.core.ids import check_resource_group_name, check_vm_name
from fabric.network.provider import check_name, default_vnet_name, vm_nic_name
from fabric.storage.disk_blobs import default_account_name

GROUP_NAMES = st.from_regex(r"\A[-\w._()]{1,90}\Z").filter(lambda n: not n.endswith("."))
VM_NAMES = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9.-]{0,63}\Z").filter(lambda n: n[-1] not in ".-")


def test_the_reported_group() -> None:
    check_resource_group_name("Blog_RG(1).x")
    assert default_vnet_name("Blog_RG(1).x") == "Blog_RG-1-.x-vnet"
    check_name(default_vnet_name("Blog_RG(1).x"))
    assert default_vnet_name("BlogRG") == "BlogRG-vnet"          # the reference's name where it is valid


@given(GROUP_NAMES)
def test_every_valid_group_gets_a_valid_default_network_and_disk_account(rg: str) -> None:
    check_resource_group_name(rg)
    check_name(default_vnet_name(rg), "vnetName")
    assert re.fullmatch(r"[a-z0-9]{3,24}", default_account_name("sub", rg))


@given(VM_NAMES, st.uuids())
def test_every_valid_vm_gets_a_valid_nic_name(vm: str, vm_id: uuid.UUID) -> None:
    check_vm_name(vm)
    check_name(vm_nic_name(vm, str(vm_id)))
