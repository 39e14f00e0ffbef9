"""A VM's osProfile, checked as the reference checks it: the admin user name (allowed characters, length, not a
reserved name), its SSH public keys (a key the guest's sshd takes, at the one path the reference allows), its
password (length, three kinds of character) and the custom data (base64, a size limit).

The guest's own provisioning agent (cloud-init, WALinuxAgent) makes the user from IMDS: compute.osProfile and
compute.publicKeys (instance_metadata). A password and the custom data reach the guest as they do in the
reference: once, on the provisioning media (ovf-env.xml on a CD the node makes), never through IMDS.
"""
from __future__ import annotations

import base64
import binascii
import re
import struct

from fabric.core.errors import ArmError, invalid
from fabric.model import OsProfile, SshKey

MAX_ADMIN_USERNAME = 64          # the reference's limit for Linux
MAX_COMPUTER_NAME = 64
MAX_SSH_KEYS = 10
MIN_RSA_BITS = 2048
MAX_KEY_CHARS = 8192
# names the reference refuses for a Linux admin user
RESERVED_USERNAMES = frozenset({
    "administrator", "admin", "user", "user1", "test", "user2", "test1", "user3", "admin1", "1", "123", "a",
    "actuser", "adm", "admin2", "aspnet", "backup", "console", "guest", "owner", "root", "server", "sql",
    "support", "support_388945a0", "sys", "test2", "test3", "user4", "user5"})
_USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]*$")
_COMPUTER_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
KEY_TYPES = ("ssh-rsa", "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")
KEYS_FIELD = "osProfile.linuxConfiguration.ssh.publicKeys"
PASSWORD_FIELD = "osProfile.adminPassword"
# the reference's rules for a Linux admin password (its CLI's): 12 to 123 characters, three of four kinds, the
# special characters being ASCII punctuation and the space
MIN_PASSWORD, MAX_PASSWORD = 12, 123
PASSWORD_KINDS = (("a lower-case letter", re.compile(r"[a-z]")), ("an upper-case letter", re.compile(r"[A-Z]")),
                  ("a digit", re.compile(r"[0-9]")),
                  ("a special character (ASCII punctuation or a space)", re.compile(r"[ !-/:-@\[-`{-~]")))
MAX_CUSTOM_DATA_CHARS = 87380     # base64 of 64 KiB


def default_key_path(user: str) -> str:
    return f"/home/{user}/.ssh/authorized_keys"


def check_admin_username(name: str) -> None:
    target = "osProfile.adminUsername"
    if not 1 <= len(name) <= MAX_ADMIN_USERNAME:
        raise invalid(target, f"1 to {MAX_ADMIN_USERNAME} characters")
    if name.lower() in RESERVED_USERNAMES:
        raise ArmError("InvalidParameter", f"The Admin Username specified is not allowed: '{name}' is reserved "
                                           f"(reserved: {', '.join(sorted(RESERVED_USERNAMES))}).", target)
    if not _USERNAME.match(name) or name.endswith("."):
        raise invalid(target, "lower-case letters, digits, '_', '-' and '.', starting with a letter or '_', not "
                              "ending with '.'")


def _ssh_strings(blob: bytes) -> list[bytes]:
    """The length-prefixed strings of an OpenSSH public key blob (RFC 4253 section 6.6)."""
    out, at = [], 0
    while at < len(blob):
        if at + 4 > len(blob):
            raise ValueError("truncated")
        (n,) = struct.unpack(">I", blob[at:at + 4])
        if at + 4 + n > len(blob):
            raise ValueError("truncated")
        out.append(blob[at + 4:at + 4 + n])
        at += 4 + n
    return out


def check_key_data(key: str, i: int) -> str:
    """One OpenSSH public key line, trimmed; the rule it breaks otherwise."""
    target = f"{KEYS_FIELD}[{i}].keyData"
    key = key.strip()
    if not key or len(key) > MAX_KEY_CHARS or "\n" in key or "\r" in key:
        raise invalid(target, f"one OpenSSH public key line of at most {MAX_KEY_CHARS} characters")
    parts = key.split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise invalid(target, f"an OpenSSH public key: '{' | '.join(KEY_TYPES)} BASE64 [comment]' (a private key, "
                              f"or a key in another format, is refused)")
    try:
        fields = _ssh_strings(base64.b64decode(parts[1], validate=True))
    except (binascii.Error, ValueError):
        raise invalid(target, "the key's base64 body does not decode to an OpenSSH key") from None
    if not fields or fields[0] != parts[0].encode():
        raise invalid(target, f"the key's body is not a {parts[0]} key")
    if parts[0] == "ssh-rsa":
        if len(fields) != 3:
            raise invalid(target, "the ssh-rsa key's body is not an exponent and a modulus")
        bits = int.from_bytes(fields[2], "big").bit_length()
        if bits < MIN_RSA_BITS:
            raise invalid(target, f"an ssh-rsa key of at least {MIN_RSA_BITS} bits (this one has {bits})")
    return key


def check_admin_password(password: str) -> None:
    """The reference's rules for a Linux admin password; the rule it breaks otherwise (never the password)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise invalid(PASSWORD_FIELD, f"{MIN_PASSWORD} to {MAX_PASSWORD} characters (this one has {len(password)})")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in password):
        raise invalid(PASSWORD_FIELD, "no control characters")
    if sum(1 for _, kind in PASSWORD_KINDS if kind.search(password)) < 3:
        raise invalid(PASSWORD_FIELD, f"at least three of: {', '.join(name for name, _ in PASSWORD_KINDS)}")


def check_custom_data(value: str) -> None:
    """osProfile.customData: base64 text, as the reference's own message says."""
    try:
        base64.b64decode(value, validate=True)
        ok = len(value) <= MAX_CUSTOM_DATA_CHARS
    except (binascii.Error, ValueError):
        ok = False
    if not ok:
        raise ArmError("InvalidParameter", f"Custom data in OSProfile must be in Base64 encoding and with a maximum "
                                           f"length of {MAX_CUSTOM_DATA_CHARS} characters.", "osProfile.customData")


def check_os_profile(vm_name: str, admin_username: str, keys: list[SshKey], computer_name: str = "",
                     admin_password: str = "", disable_password_authentication: bool | None = None) -> OsProfile:
    """The osProfile of a create; InvalidParameter naming the field otherwise. Password authentication is on
    when a password is given, unless disable_password_authentication says otherwise (which is then refused)."""
    computer_name = computer_name or vm_name
    if not (len(computer_name) <= MAX_COMPUTER_NAME and _COMPUTER_NAME.match(computer_name)):
        raise invalid("osProfile.computerName", f"1 to {MAX_COMPUTER_NAME} letters, digits, '-' and '.', not starting "
                                                f"or ending with '-'")
    with_password = bool(admin_password) if disable_password_authentication is None \
        else not disable_password_authentication
    if admin_password and not with_password:
        raise invalid(PASSWORD_FIELD, "a password goes with password authentication: "
                                      "linuxConfiguration.disablePasswordAuthentication is true")
    if with_password and not admin_password:
        raise invalid(PASSWORD_FIELD, "password authentication is on (linuxConfiguration."
                                      "disablePasswordAuthentication false): give the admin user's password")
    if not admin_username:
        if keys or admin_password:
            raise invalid("osProfile.adminUsername", "SSH public keys and a password need the admin user they are "
                                                     "for")
        return OsProfile(computer_name=computer_name)
    check_admin_username(admin_username)
    if admin_password:
        check_admin_password(admin_password)
    if not keys and not admin_password:
        raise ArmError("InvalidParameter", "Authentication using either SSH or by user name and password must be "
                                           "enabled in Linux profile: give at least one SSH public key or a "
                                           "password.", KEYS_FIELD)
    if len(keys) > MAX_SSH_KEYS:
        raise invalid(KEYS_FIELD, f"at most {MAX_SSH_KEYS} keys")
    want = default_key_path(admin_username)
    checked = []
    for i, k in enumerate(keys):
        path = k.path or want
        if path != want:
            raise ArmError("InvalidParameter", f"Destination path for SSH public keys is limited to its default "
                                               f"value {want}: '{path}' is not allowed.", f"{KEYS_FIELD}[{i}].path")
        checked.append(SshKey(path=path, key_data=check_key_data(k.key_data, i)))
    return OsProfile(computer_name=computer_name, admin_username=admin_username, ssh_keys=checked,
                     password_authentication=with_password)


def imds_os_profile(profile: OsProfile) -> dict[str, object]:
    """compute.osProfile and compute.publicKeys of IMDS, as cloud-init and WALinuxAgent read them."""
    return {"osProfile": {"adminUsername": profile.admin_username, "computerName": profile.computer_name,
                          "disablePasswordAuthentication": "false" if profile.password_authentication else "true"},
            "publicKeys": [{"keyData": k.key_data, "path": k.path} for k in profile.ssh_keys]}
