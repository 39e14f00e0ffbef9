"""The network provider: virtual networks with subnets, NICs with a MAC and a private address.

Every change is one compare-and-swap transaction: an address is claimed by a
key of its own (`keys.ip_claim`), so two NICs can never hold one address, and
a VNI likewise. `prepare_nic` returns the ops of a NIC without committing
them, so that `vm create` commits its NIC in the VM's own transaction.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import ipaddress
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence

from fabric.core import ids
from fabric.core.errors import ArmError, invalid
from fabric.groups import require_group
from fabric.model import ResourceGroupRecord, now
from fabric.network import addressing
from fabric.network.model import IpClaim, MacClaim, NicRecord, VnetRecord, VniClaim
from fabric.store import Absent, Delete, Put, Store, Unchanged, Versioned, keys
from fabric.store.client import Compare
from fabric.store.informer import Informer, informed, refresh_compared
from fabric.store.retry import CAS

VNI_FIRST = 4096
DEFAULT_FABRIC_DOMAIN = "fabriclab.test"
VNET_TYPE = "Microsoft.Network/virtualNetworks"
NIC_TYPE = "Microsoft.Network/networkInterfaces"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_NAME = 64
VNET_SUFFIX = "-vnet"
CLAIMING_S = 2.0          # how long an address picked for a NIC is passed over for others, until its commit


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    subscription: str
    location: str
    domain: str = DEFAULT_FABRIC_DOMAIN


@dataclasses.dataclass(frozen=True)
class PreparedNic:
    record: NicRecord
    key: str
    compares: list[Compare]
    ops: list[Put | Delete]


def check_name(name: str, target: str = "name") -> None:
    if not _NAME.match(name or "") or name.endswith((".", "-")):
        raise invalid(target, "a network resource name is 1-64 letters, digits, '_', '-' or '.', starts with a "
                              "letter or digit and does not end with '.' or '-'")


def vnet_key_of(rg: str, name: str) -> str:
    return f"{rg.lower()}/{name.lower()}"


class NetworkProvider:
    """`draw_mac` makes a NIC's MAC (random; a test injects the draws it needs)."""

    def __init__(self, store: Store, config: NetworkConfig, draw_mac: Callable[[], str] | None = None) -> None:
        self.store = store
        self.config = config
        self.draw_mac = draw_mac or random_mac
        self._claiming: dict[str, tuple[float, str]] = {}   # address claim key -> (until when, for which NIC)
        self._claiming_lock = threading.Lock()

    # ----- ids -----

    def vnet_id(self, v: VnetRecord) -> str:
        return f"{ids.resource_group_id(self.config.subscription, v.resource_group)}/providers/{VNET_TYPE}/{v.name}"

    def nic_id(self, n: NicRecord) -> str:
        return f"{ids.resource_group_id(self.config.subscription, n.resource_group)}/providers/{NIC_TYPE}/{n.name}"

    def dns_suffix(self, rg: str, name: str) -> str:
        digest = hashlib.sha256(f"{self.config.subscription}/{rg.lower()}/{name.lower()}".encode()).digest()
        return f"{base64.b32encode(digest).decode().lower()[:26]}.internal.{self.config.domain}"

    def _vnets(self) -> Informer[VnetRecord]:
        return informed(self.store, keys.VNETS, VnetRecord)

    def _group(self, rg: str) -> ResourceGroupRecord:
        return require_group(self.store, rg)

    # ----- virtual networks -----

    def create_vnet(self, rg: str, name: str, prefixes: list[str], subnet_name: str = "",
                    subnet_prefix: str = "") -> VnetRecord:
        check_name(name)
        group = self._group(rg)
        if not prefixes:
            raise invalid("addressSpace.addressPrefixes", "at least one address prefix")
        spaces = [addressing.parse_prefix(p, "addressSpace.addressPrefixes") for p in prefixes]
        addressing.check_no_overlap([("address prefix", s) for s in spaces], "addressSpace.addressPrefixes",
                                    "NetcfgInvalidAddressSpace")
        subnets = []
        if subnet_name or subnet_prefix:
            check_name(subnet_name, "subnets.name")
            sub = addressing.parse_prefix(subnet_prefix, "subnets.addressPrefix")
            addressing.check_subnet(sub, spaces, "subnets.addressPrefix")
            subnets.append({"name": subnet_name, "prefix": str(sub)})
        key = keys.vnet(rg, name)
        for _ in CAS.attempts():
            vni = self._free_vni()
            rec = VnetRecord(name=name, resource_group=group.name, location=self.config.location,
                             address_prefixes=[str(s) for s in spaces], subnets=subnets, vni=vni,
                             dns_suffix=self.dns_suffix(rg, name), created=now())
            if self.store.commit([Absent(key), Absent(keys.vni(vni))],
                                 [Put(key, rec), Put(keys.vni(vni), VniClaim(vnet=vnet_key_of(rg, name)))]):
                return rec
            if self.store.get(key, VnetRecord) is not None:
                raise ArmError("Conflict", f"A virtual network named '{name}' already exists in '{group.name}'.",
                               "name")
        raise ArmError("Conflict", "Too many concurrent network changes; try again.")

    def _free_vni(self) -> int:
        used = {int(v.key.rsplit("/", 1)[1]) for v in self.store.list(keys.VNIS, VniClaim)}
        n = VNI_FIRST
        while n in used:
            n += 1
        return n

    def vnet(self, rg: str, name: str) -> Versioned[VnetRecord]:
        self._group(rg)
        check_name(name, "vnetName")
        found = self._vnets().lookup(keys.vnet(rg, name))
        if found is None:
            raise ArmError("ResourceNotFound", f"The virtual network '{name}' under resource group '{rg}' "
                                               f"was not found.", "vnetName")
        return found

    def list_vnets(self, rg: str = "") -> list[Versioned[VnetRecord]]:
        """A group's virtual networks (every one for ""), in key order, from the watch-fed view."""
        return self._vnets().under(keys.vnets_in(rg))

    def add_subnet(self, rg: str, vnet: str, name: str, prefix: str) -> VnetRecord:
        check_name(name)
        sub = addressing.parse_prefix(prefix, "addressPrefix")
        for _ in CAS.attempts():
            cur = self.vnet(rg, vnet)
            v = cur.value
            if any(s["name"].lower() == name.lower() for s in v.subnets):
                raise ArmError("Conflict", f"Subnet '{name}' already exists in virtual network '{v.name}'.", "name")
            spaces = [ipaddress.IPv4Network(p) for p in v.address_prefixes]
            addressing.check_subnet(sub, spaces, "addressPrefix")
            addressing.check_no_overlap([*((f"subnet {s['name']}", ipaddress.IPv4Network(s["prefix"]))
                                           for s in v.subnets), (f"subnet {name}", sub)],
                                        "addressPrefix", "NetcfgOverlappingSubnets")
            new = v.replace(subnets=[*v.subnets, {"name": name, "prefix": str(sub)}])
            if self.store.commit([Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, new)]):
                return new
        raise ArmError("Conflict", "The virtual network is changing too often; try again.", "name")

    def delete_vnet(self, rg: str, name: str) -> None:
        cur = self.vnet(rg, name)
        vkey = vnet_key_of(rg, name)
        users = [n.value.name for n in self.store.list(keys.NICS, NicRecord) if n.value.vnet == vkey]
        if users:
            raise ArmError("InUseSubnetCannotBeDeleted",
                           f"Virtual network '{name}' is in use by network interfaces {', '.join(users)}.", "name")
        if not self.store.commit([Unchanged(cur.key, cur.mod_revision)],
                                 [Delete(cur.key), Delete(keys.vni(cur.value.vni)),
                                  Delete(f"{keys.IPS}{vkey}/", prefix=True)]):
            raise ArmError("Conflict", "The virtual network changed during the request; try again.", "name")

    # ----- network interfaces -----

    def prepare_nic(self, rg: str, name: str, vnet_rg: str, vnet: str, subnet: str, private_ip: str = "",
                    vm_id: str = "", vm_name: str = "") -> PreparedNic:
        """A new NIC with its address claimed: ops to commit (alone, or inside a VM's transaction)."""
        check_name(name)
        group = self._group(rg)
        key = keys.nic(rg, name)
        if informed(self.store, keys.NICS, NicRecord).get(key) is not None:   # else the commit's Absent decides
            raise ArmError("Conflict", f"A network interface named '{name}' already exists in '{group.name}'.", "name")
        cur = self.vnet(vnet_rg, vnet)
        sub = next((s for s in cur.value.subnets if s["name"].lower() == subnet.lower()), None)
        if sub is None:
            raise ArmError("NotFound", f"Subnet '{subnet}' was not found in virtual network '{vnet}'.", "subnet")
        prefix = ipaddress.IPv4Network(sub["prefix"])
        vkey = vnet_key_of(vnet_rg, vnet)
        claims = informed(self.store, keys.IPS, IpClaim)     # a stale view fails the commit's Absent(claim)
        taken = {c.key.rsplit("/", 1)[1] for c in claims.under(keys.ips_of(vkey, sub["name"]))}
        if private_ip:
            try:
                ip = ipaddress.IPv4Address(private_ip)
            except ValueError:
                raise invalid("privateIPAddress", f"'{private_ip}' is not an IPv4 address") from None
            if ip not in prefix:
                raise ArmError("PrivateIPAddressNotInSubnet",
                               f"Private address {ip} is not in subnet {sub['name']} ({prefix}).", "privateIPAddress")
            if ip not in set(addressing.usable(prefix)):
                raise ArmError("PrivateIPAddressIsReserved",
                               f"{ip} is reserved in {prefix}: .0-.3 and the last address are the platform's.",
                               "privateIPAddress")
            if str(ip) in taken:
                raise ArmError("PrivateIPAddressInUse", f"Private address {ip} is already in use.", "privateIPAddress")
            allocation = "Static"
        else:
            ip = self._next_free(vkey, sub["name"], prefix, taken, key)
            allocation = "Dynamic"
        rec = NicRecord(name=name, resource_group=group.name, location=self.config.location, vnet=vkey,
                        subnet=sub["name"], mac=self.draw_mac(), private_ip=str(ip), allocation=allocation, vm_id=vm_id,
                        vm_name=vm_name, created=now())
        claim, mac_claim, owner = keys.ip_claim(vkey, sub["name"], str(ip)), keys.mac_claim(rec.mac), vnet_key_of(rg,
                                                                                                               name)
        # a MAC drawn twice (one in 16 million) fails the commit: the caller's next attempt draws another
        return PreparedNic(rec, key,
                           [Absent(key), Absent(claim), Absent(mac_claim), Unchanged(cur.key, cur.mod_revision)],
                           [Put(key, rec), Put(claim, IpClaim(nic=owner)), Put(mac_claim, MacClaim(nic=owner))])

    def _next_free(self, vkey: str, subnet: str, prefix: ipaddress.IPv4Network, taken: set[str],
                   nic: str) -> ipaddress.IPv4Address:
        """The lowest free address, passing over those this process is claiming right now for other NICs (each
        held CLAIMING_S): concurrent creates in one subnet would otherwise all try the same address, and all but
        one fail their commit and try again."""
        now_s = time.monotonic()
        with self._claiming_lock:
            self._claiming = {k: v for k, v in self._claiming.items() if v[0] > now_s}
            for a in addressing.usable(prefix):
                key = keys.ip_claim(vkey, subnet, str(a))
                if str(a) not in taken and self._claiming.get(key, (0.0, nic))[1] == nic:
                    self._claiming[key] = (now_s + CLAIMING_S, nic)
                    return a
        raise ArmError("SubnetIsFull", f"Subnet {subnet} ({prefix}) has no free address.", "subnet")

    def settled(self, ops: Sequence[Put | Delete]) -> None:
        """The addresses these ops claimed are committed (then the store says they are taken) or not (then
        they are free again): no longer passed over for other NICs."""
        with self._claiming_lock:
            for op in ops:
                self._claiming.pop(op.key, None)

    def create_nic(self, rg: str, name: str, vnet: str, subnet: str, private_ip: str = "") -> NicRecord:
        for _ in CAS.attempts():
            p = self.prepare_nic(rg, name, rg, vnet, subnet, private_ip)
            ok = self.store.commit(p.compares, p.ops)
            self.settled(p.ops)
            if ok:
                return p.record
            refresh_compared(self.store, p.compares)
        raise ArmError("Conflict", "Too many concurrent network changes; try again.")

    def nic(self, rg: str, name: str) -> Versioned[NicRecord]:
        self._group(rg)
        check_name(name)
        found = self.store.get(keys.nic(rg, name), NicRecord)
        if found is None:
            raise ArmError("ResourceNotFound", f"The network interface '{name}' under resource group '{rg}' "
                                               f"was not found.", "name")
        return found

    def list_nics(self, rg: str = "") -> list[Versioned[NicRecord]]:
        """Every NIC (of a group), in key order, from the watch-fed view."""
        if rg:
            self._group(rg)
        return informed(self.store, keys.NICS, NicRecord).under(keys.nics_in(rg))

    def delete_nic(self, rg: str, name: str) -> None:
        cur = self.nic(rg, name)
        if cur.value.vm_id:
            raise ArmError("NicInUse", f"Network interface {name} is used by virtual machine {cur.value.vm_name}.",
                           "name")
        compares, ops = self.release_ops(cur)
        if not self.store.commit(compares, ops):
            raise ArmError("Conflict", "The network interface changed during the request; try again.", "name")

    def vm_nics(self, rg: str, vm_name: str, vm_id: str, vnet: str, subnet: str, nic_names: list[str],
                private_ip: str) -> tuple[list[NicRecord], list[Compare], list[Put | Delete]]:
        """The NICs of a VM being created, with the compares and ops that claim them in its transaction.

        Named NICs must be free; otherwise one NIC is made in the named vnet/subnet, or in the group's
        default vnet (`<group>-vnet`, 10.0.0.0/16, subnet default 10.0.0.0/24, created on first use)."""
        if nic_names:
            if vnet or subnet or private_ip:
                raise invalid("networkProfile", "give either --nics or --vnet-name/--subnet/--private-ip-address")
            recs: list[NicRecord] = []
            compares: list[Compare] = []
            ops: list[Put | Delete] = []
            for ref in nic_names:
                nrg, nname = _nic_ref(ref, rg)
                cur = self.nic(nrg, nname)
                if cur.value.vm_id:
                    raise ArmError("NicInUse", f"Network interface {nname} is used by virtual machine "
                                               f"{cur.value.vm_name}.", "networkProfile.networkInterfaces")
                attached = cur.value.replace(vm_id=vm_id, vm_name=vm_name)
                recs.append(attached)
                compares.append(Unchanged(cur.key, cur.mod_revision))
                ops.append(Put(cur.key, attached))
            return recs, compares, ops
        if not vnet:
            vnet = default_vnet_name(rg)
            if self._vnets().lookup(keys.vnet(rg, vnet)) is None:
                try:
                    self.create_vnet(rg, vnet, [DEFAULT_VNET_PREFIX], *DEFAULT_SUBNET)
                except ArmError as e:
                    if e.code != "Conflict":
                        raise
        v = self.vnet(rg, vnet).value
        if not subnet:
            if len(v.subnets) != 1:
                raise invalid("subnet", f"virtual network '{vnet}' has {len(v.subnets)} subnets: name one")
            subnet = v.subnets[0]["name"]
        p = self.prepare_nic(rg, vm_nic_name(vm_name, vm_id), rg, vnet, subnet, private_ip, vm_id, vm_name)
        return [p.record], p.compares, p.ops

    def vm_release_ops(self, vm_id: str, nic_keys: list[str],
                       made_with_vm: list[str]) -> tuple[list[Compare], list[Put | Delete]]:
        """On VM delete: of the VM's NICs (read by key: no list of every NIC), those made by `vm create` go (their
        addresses are freed); named ones are detached."""
        compares: list[Compare] = []
        ops: list[Put | Delete] = []
        for key in nic_keys:
            cur = self.store.get(key, NicRecord)
            if cur is None or cur.value.vm_id != vm_id:
                continue
            if cur.key in made_with_vm:
                c, o = self.release_ops(cur)
            else:
                c, o = [Unchanged(cur.key, cur.mod_revision)], [Put(cur.key, cur.value.replace(vm_id="", vm_name=""))]
            compares += c
            ops += o
        return compares, ops

    def release_ops(self, cur: Versioned[NicRecord]) -> tuple[list[Compare], list[Put | Delete]]:
        """Delete a NIC and free its address and its MAC."""
        n = cur.value
        return ([Unchanged(cur.key, cur.mod_revision)],
                [Delete(cur.key), Delete(keys.ip_claim(n.vnet, n.subnet, n.private_ip)), Delete(keys.mac_claim(n.mac))])


DEFAULT_VNET_PREFIX = "10.0.0.0/16"
DEFAULT_SUBNET = ("default", "10.0.0.0/24")


def default_vnet_name(rg: str) -> str:
    """The group's default network, `<group>-vnet` as the reference's portal names it, valid for every valid group
    name: a character a network name cannot hold ('(', ')', a letter outside ASCII) becomes '-', the name starts
    with a letter or digit and is cut to fit 64 characters."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", rg).lstrip("_.-")[:MAX_NAME - len(VNET_SUFFIX)].rstrip(".-")
    return f"{stem or 'default'}{VNET_SUFFIX}"


def vm_nic_name(vm_name: str, vm_id: str) -> str:
    """The NIC `vm create` makes, named like the reference's `blogwindowsvm91` (the VM's name cut to fit)."""
    digits = str(int(vm_id.replace("-", "")[:4], 16) % 1000)
    return f"{vm_name.lower()[:MAX_NAME - len(digits)].rstrip('.-')}{digits}"


def _nic_ref(ref: str, rg: str) -> tuple[str, str]:
    """A NIC given by name (in the VM's group) or by resource id."""
    parts = ref.strip("/").split("/")
    if len(parts) == 8 and parts[0] == "subscriptions" and parts[6].lower() == "networkinterfaces":
        return parts[3], parts[7]
    if "/" in ref:
        raise invalid("networkProfile.networkInterfaces", f"'{ref}' is neither a NIC name nor a NIC resource id")
    return rg, ref


def random_mac() -> str:
    """A locally administered unicast MAC in the 52:54:00 range guests on this hypervisor use."""
    return "52:54:00:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(3))
