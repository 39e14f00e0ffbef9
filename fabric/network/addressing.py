"""Address rules of virtual networks, as the reference cloud applies them.

In every subnet .0 is the network, .1 the gateway, .2-.3 are the platform's,
and the last address is broadcast: the first address a NIC gets is .4.
Address spaces are private (RFC 1918): lab guests never hold public addresses.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from fabric.core.errors import ArmError, invalid

FIRST_HOST_OFFSET = 4
SMALLEST_SUBNET_PREFIXLEN = 29
PRIVATE = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


def parse_prefix(value: str, target: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError as e:
        raise invalid(target, f"'{value}' is not a network in CIDR notation ({e})") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise invalid(target, "IPv4 only")
    if not any(net.subnet_of(p) for p in PRIVATE):
        raise invalid(target, f"'{value}' must lie in a private range (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16)")
    return net


def check_no_overlap(nets: Iterable[tuple[str, ipaddress.IPv4Network]], target: str, code: str) -> None:
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for name, net in nets:
        for other_name, other in seen:
            if net.overlaps(other):
                raise ArmError(code, f"{name} {net} overlaps {other_name} {other}.", target)
        seen.append((name, net))


def check_subnet(prefix: ipaddress.IPv4Network, spaces: list[ipaddress.IPv4Network], target: str) -> None:
    if prefix.prefixlen > SMALLEST_SUBNET_PREFIXLEN:
        raise invalid(target, f"a subnet is /{SMALLEST_SUBNET_PREFIXLEN} or larger")
    if not any(prefix.subnet_of(s) for s in spaces):
        raise ArmError("NetcfgSubnetRangeOutsideVnet",
                       f"Subnet {prefix} is not within the virtual network's address space "
                       f"{', '.join(map(str, spaces))}.", target)


def usable(prefix: ipaddress.IPv4Network) -> Iterator[ipaddress.IPv4Address]:
    """The addresses NICs may hold, lowest first (.4 up to the one before broadcast)."""
    first = int(prefix.network_address) + FIRST_HOST_OFFSET
    last = int(prefix.broadcast_address) - 1
    for n in range(first, last + 1):
        yield ipaddress.IPv4Address(n)


def gateway(prefix: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    return prefix.network_address + 1
