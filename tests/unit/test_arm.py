import grpc
import pytest

from fabric.core import ids
from fabric.arm.errors import grpc_code
from fabric.core.errors import ArmError
from fabric.compute.sizes import find_size, sizes_for


def test_vm_id_grammar_round_trips() -> None:
    rid = ids.vm_id("sub-1", "BlogRG", "BlogVM")
    assert rid == "/subscriptions/sub-1/resourceGroups/BlogRG/providers/Microsoft.Compute/virtualMachines/BlogVM"
    assert ids.parse_vm_id(rid) == ("sub-1", "BlogRG", "BlogVM")
    assert ids.parse_vm_id("/subscriptions/x/resourceGroups/y") is None


@pytest.mark.parametrize("name", ["", "-vm", "vm-", "vm.", "a" * 65, "vm_1", "vm 1", "vm/1"])
def test_bad_vm_names_name_the_field_and_the_rule(name: str) -> None:
    with pytest.raises(ArmError) as e:
        ids.check_vm_name(name)
    assert e.value.code == "InvalidParameter" and e.value.target == "name"
    assert "1-64" in e.value.message
    assert grpc_code(e.value) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("name", ["BlogVM", "a", "vm-1.web", "a" * 64])
def test_good_vm_names(name: str) -> None:
    ids.check_vm_name(name)


def test_resource_group_names() -> None:
    ids.check_resource_group_name("Blog_RG(1).x")
    for bad in ["", "rg.", "a" * 91, "rg/1"]:
        with pytest.raises(ArmError):
            ids.check_resource_group_name(bad)


def test_reference_size_has_the_reference_numbers() -> None:
    ds1 = find_size("local", "standard_ds1_v2")
    assert (ds1.name, ds1.number_of_cores, ds1.memory_in_mb, ds1.os_disk_size_in_mb,
            ds1.resource_disk_size_in_mb, ds1.max_data_disk_count) == ("Standard_DS1_v2", 1, 3584, 1047552, 7168, 2)
    assert any(s.memory_in_mb <= 512 for s in sizes_for("local"))


def test_unknown_size_lists_the_sizes_that_exist() -> None:
    with pytest.raises(ArmError) as e:
        find_size("local", "Standard_Huge")
    assert e.value.code == "SkuNotAvailable"
    assert "Standard_DS1_v2" in e.value.message and "Lab_A0" in e.value.message


def test_error_body_round_trips_through_metadata() -> None:
    err = ArmError("Conflict", "exists", "name", [{"code": "X", "message": "y"}])
    (key, value), = err.to_metadata()
    import json
    assert ArmError.from_body(json.loads(value)).body() == err.body()
    assert grpc_code(err) == grpc.StatusCode.ALREADY_EXISTS
