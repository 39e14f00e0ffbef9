"""The fixtures of the network-service tests: a node's Networks in a state folder of its own, and a client
namespace on a network's bridge standing in for VM A."""
from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fabric.network import naming
from nodeagent.netsvc import iproute
from nodeagent.netsvc.networks import Networks
from tests.conftest import require
from tests.integration.netsvc.test_networks import A, B, spec


@pytest.fixture
def networks() -> Iterator[Networks]:
    require(os.geteuid() == 0, "root (network namespaces)")
    require(all(shutil.which(t) for t in ("ip", "dnsmasq", "dig")), "iproute2, dnsmasq-base and dnsutils")
    # a state folder dnsmasq can read after it drops root (as a node's is, under /var/lib)
    state = Path("/var/lib/fabriclab") / f"test-net-{uuid.uuid4().hex[:8]}"
    state.mkdir(parents=True, mode=0o755)
    n = Networks(state, uuid.uuid4().hex[:4])
    yield n
    n.teardown()            # tears down everything it made
    shutil.rmtree(state)


@pytest.fixture
def guest(networks: Networks) -> Iterator[str]:
    """A client namespace on the network's bridge holding VM A's address, as the guest would."""
    require(shutil.which("curl") is not None, "curl")
    doc = {"incarnation": 3, "compute": {"vmId": "vm-a-id", "name": "vm-a", "userData": "ZWNobyBoaQ==",
                                         "publicKeys": [{"keyData": "ssh-rsa " + "A" * 540, "path": "/home/u/k"}] * 4},
           "network": {"interface": [{"macAddress": "52540000000A"}]},
           "extensions": [{"name": "CustomScriptExtension", "handler": "Microsoft.Compute.CustomScriptExtension",
                           "version": "1.8", "seq": 2, "timeoutSeconds": 300,
                           "settings": {"fileUris": ["http://a.blob.x/c/s.sh?sig=1"]},
                           "protectedSettings": {"commandToExecute": "sh s.sh a-secret"}}]}
    other = {"incarnation": 1, "compute": {"vmId": "vm-b-id", "name": "vm-b"}, "network": {},
             "extensions": [{"name": "Other", "handler": "Microsoft.Compute.CustomScriptExtension", "version": "1.7",
                             "seq": 0, "timeoutSeconds": 300, "settings": {},
                             "protectedSettings": {"commandToExecute": "b-secret"}}]}
    networks.converge({9004: dataclasses.replace(spec(9004, (A, B), (A, B)),
                                                 metadata={A.ip: doc, B.ip: other})})
    ns, veth = f"fabriclab-test-guest-{networks.tag}", f"flt{networks.tag}"
    iproute.ensure_netns(ns)
    iproute.ensure_veth(networks.bridge(9004), veth, ns, "eth0", [f"{A.ip}/24"])
    # the bridge end as a VM's tap is (the network's MTU); the guest's own end keeps 1500, as a guest that does
    # not apply DHCP's MTU option (cloud-init's first, ephemeral DHCP) has it
    subprocess.run(["ip", "link", "set", veth, "mtu", str(naming.VXLAN_MTU)], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", "10.77.0.1"], check=True)
    yield ns
    iproute.delete_link(veth)
    iproute.delete_netns(ns)
