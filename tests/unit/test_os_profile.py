"""A VM's osProfile as the reference checks it: the admin user's name and SSH public keys, each bad value refused
by the field it is in."""
from __future__ import annotations

import base64

import pytest

from fabric.compute.os_profile import (MAX_CUSTOM_DATA_CHARS, MIN_RSA_BITS, check_admin_password, check_custom_data,
                                       check_os_profile, imds_os_profile)
from fabric.core.errors import ArmError
from fabric.model import OsProfile, SshKey

RSA_3072 = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDAwdfmc0N+hFRAxtJKZNDkORlalVdFESabufLQkkyvj+xgETI/8YK5K0RU"
            "WX+2e9KzmZu+TsD91Q2c4wbFDkuAvovG1XZzAaao0+AIw2dsmZReTwGB2I1V9g0MDQlb75gBF+aKDUJO2KEPSSiFOkLMugAq"
            "zfFHZOJJX3h6J5cmDX8CrHP2fFo5+2h6W0ev59pUvfp49Fq0NlooTzOn7iTw4zrFs79eq0U4k2tp5Wm19hPfTW9B/6dDGy+M"
            "L6qlBW5BHetgj2pNfy/smqHh7aQ5ENnoX6MiOV97F+aOD7kMtiforYaAE4K+d6yBuPfHH2AkYflR5SV7rNd5rKmvjgFlHG2L"
            "4R7GlVY/LrkZXil9o+U5ir8J4N0z3ugn6ztXCUgh4JTsoei4UxFoJrV5LgXEBS47ea9THCWbv2AZ/5jwqifTZSdYbtCcuWO9"
            "sJKO14/9h502t7eJUFnMbz5R8QCP5Er5+W4g+J3fnDhv9UaTWu4y3zaBbRg+3sbTZvKpjR8= lab@k3072")
RSA_1024 = ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDaWZOTKisv45jQBBb2ymQiDKmrd8stBY83rJRlvcX+3uFFceY7ISifvhKm"
            "hCJDC9VE2cLioPKQ7t45I9w8PQ+O5JJ6tDwzOgNlHBP3ekQEYS7nVJ2TEFLGmbI5hBvsMhyh3iZ6Pxrsw+iuzXpktUFC2uBB"
            "CJ61kIk09cqVXykwCQ== lab@k1024")
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICtb7ksKXVaAnyFwGc6IDR+m50FNlUEOmv6jm8YvAQ3x lab@ked"


def refused(admin: str, keys: list[SshKey], computer: str = "") -> ArmError:
    with pytest.raises(ArmError) as e:
        check_os_profile("vm1", admin, keys, computer)
    assert e.value.code == "InvalidParameter"
    return e.value


def test_a_user_with_keys_is_kept_and_served_to_the_guest_as_imds_does() -> None:
    p = check_os_profile("vm1", "azureuser", [SshKey("", RSA_3072 + "\n"), SshKey("", ED25519)])
    assert p == OsProfile(computer_name="vm1", admin_username="azureuser", ssh_keys=[
        SshKey("/home/azureuser/.ssh/authorized_keys", RSA_3072),
        SshKey("/home/azureuser/.ssh/authorized_keys", ED25519)])
    doc = imds_os_profile(p)
    assert doc["osProfile"] == {"adminUsername": "azureuser", "computerName": "vm1",
                                "disablePasswordAuthentication": "true"}
    assert doc["publicKeys"] == [{"keyData": RSA_3072, "path": "/home/azureuser/.ssh/authorized_keys"},
                                 {"keyData": ED25519, "path": "/home/azureuser/.ssh/authorized_keys"}]
    assert check_os_profile("vm.1", "", []) == OsProfile(computer_name="vm.1")     # no user: nothing made


def test_admin_names_the_reference_refuses() -> None:
    key = [SshKey("", RSA_3072)]
    assert "reserved" in refused("admin", key).message and refused("root", key).target == "osProfile.adminUsername"
    for bad in ("Azure", "user name", "a" * 65, "-x", "x.", "x@y", ""):
        if bad:
            assert refused(bad, key).target == "osProfile.adminUsername", bad
    assert refused("", key).target == "osProfile.adminUsername"          # keys for nobody


def test_keys_the_reference_refuses() -> None:
    target = "osProfile.linuxConfiguration.ssh.publicKeys[0].keyData"
    small = refused("azureuser", [SshKey("", RSA_1024)])
    assert small.target == target and f"at least {MIN_RSA_BITS} bits (this one has 1024)" in small.message
    for bad in ("not a key", "ssh-rsa !!!", "ssh-rsa " + ED25519.split()[1], "-----BEGIN OPENSSH PRIVATE KEY-----",
                RSA_3072 + "\n" + ED25519, "ssh-dss AAAAB3NzaC1kc3MAAACBAP"):
        assert refused("azureuser", [SshKey("", bad)]).target == target, bad
    path = refused("azureuser", [SshKey("/root/.ssh/authorized_keys", RSA_3072)])
    assert path.target.endswith("publicKeys[0].path") and "/home/azureuser/.ssh/authorized_keys" in path.message
    none = refused("azureuser", [])
    assert none.target == "osProfile.linuxConfiguration.ssh.publicKeys" and "SSH" in none.message
    assert refused("azureuser", [SshKey("", RSA_3072)], computer="-bad").target == "osProfile.computerName"


GOOD_PASSWORD = "Lab-Passw0rd-2026"


def test_a_password_turns_password_authentication_on_and_imds_says_so() -> None:
    p = check_os_profile("vm1", "azureuser", [], admin_password=GOOD_PASSWORD)
    assert p.password_authentication and p.ssh_keys == []
    assert imds_os_profile(p)["osProfile"] == {"adminUsername": "azureuser", "computerName": "vm1",
                                               "disablePasswordAuthentication": "false"}
    both = check_os_profile("vm1", "azureuser", [SshKey("", ED25519)], admin_password=GOOD_PASSWORD,
                            disable_password_authentication=False)
    assert both.password_authentication and len(both.ssh_keys) == 1
    for good in ("abcdefghijK1", "ABCDEFGHIJ1!", "abcdefghij!K", "x" * 110 + "Y1!"):     # three kinds, 12 to 123
        check_admin_password(good)


@pytest.mark.parametrize("password,rule", [
    ("Short1!", "12 to 123 characters"), ("A1!" + "a" * 121, "12 to 123 characters"),
    ("alllowercaseletters", "at least three of"), ("lowercase-and-symbols", "at least three of"),
    ("ABCDEFGHIJ12", "at least three of"), ("Tab\there-Passw0rd", "no control characters"),
    ("ábcdefghijkL", "at least three of")])          # a letter outside ASCII is not a special character
def test_passwords_the_reference_refuses_name_the_rule_not_the_value(password: str, rule: str) -> None:
    with pytest.raises(ArmError) as e:
        check_os_profile("vm1", "azureuser", [], admin_password=password)
    assert e.value.target == "osProfile.adminPassword" and rule in e.value.message
    assert password not in e.value.message


def test_password_authentication_and_the_password_go_together() -> None:
    with pytest.raises(ArmError) as e:
        check_os_profile("vm1", "azureuser", [SshKey("", ED25519)], admin_password=GOOD_PASSWORD,
                         disable_password_authentication=True)
    assert e.value.target == "osProfile.adminPassword" and "disablePasswordAuthentication is true" in e.value.message
    with pytest.raises(ArmError) as e:
        check_os_profile("vm1", "azureuser", [SshKey("", ED25519)], disable_password_authentication=False)
    assert e.value.target == "osProfile.adminPassword" and "give the admin user's password" in e.value.message
    with pytest.raises(ArmError) as e:
        check_os_profile("vm1", "", [], admin_password=GOOD_PASSWORD)
    assert e.value.target == "osProfile.adminUsername"


def test_custom_data_is_base64_within_the_references_limit() -> None:
    check_custom_data(base64.b64encode(b"#cloud-config\n").decode())
    check_custom_data("A" * MAX_CUSTOM_DATA_CHARS)
    for bad in ("not base64!", "A" * (MAX_CUSTOM_DATA_CHARS + 4)):
        with pytest.raises(ArmError) as e:
            check_custom_data(bad)
        assert e.value.target == "osProfile.customData" and "Base64" in e.value.message
