"""fabric: the command line of fabriclab, in the conventions of az.

    fabric group create -n RG -l LOCATION
    fabric vm create -g RG -n NAME --image PUBLISHER:OFFER:SKU:VERSION --size SIZE [--no-wait]
    fabric vm show -g RG -n NAME [--instance-view]
    fabric vm start|stop|restart|deallocate|redeploy|delete -g RG -n NAME [--no-wait] [--yes]
    fabric vm list [-g RG] | fabric vm list-sizes -l LOCATION | fabric vm get-serial-output -g RG -n NAME
    fabric vm create ... --custom-script FILE [--command CMD]
    fabric vm extension set|show|list|delete -g RG --vm-name NAME ... | fabric vm extension image list
    fabric deployment create -g RG --template-file T.json [--parameters ...] | deployment show|list
    fabric deployment operation list -g RG -n NAME
    fabric node list | fabric node remove NAME | fabric node join-token create [--ttl 1h] | fabric node join-token list
    fabric operation show ID [--trace] | fabric operation wait ID
    fabric lab up [--nodes N] | fabric lab down [--purge] | fabric lab status
    fabric cluster init --address ADDRESS | fabric cluster stop | fabric cluster status

Output is ARM JSON unless `-o table`. Errors are ARM error bodies on stderr, exit 1.
A reader that stops early (`fabric vm list | head`) ends the CLI quietly with 141.
"""
from __future__ import annotations

import argparse
import base64
import getpass
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

# gRPC's own log lines (a refused TLS handshake is one) would break the JSON error the CLI prints on stderr
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

from fabric.core import ids  # noqa: E402 - after the setting above, before gRPC loads
from fabric.compute.os_profile import KEY_TYPES
from fabric.cli import output
from fabric.cli.client import CliError, Client, bad_option, duration, pages, paged
from fabric.cli import extensions as ext
from fabric.cli.deployment import add_deployment_commands
from fabric.cli.extensions import add_extension_commands, script_file
from fabric.cli.images import add_image_commands
from fabric.cli.network import add_network_commands
from fabric.cli.operations import finish_op, follow
from fabric.cli.storage import add_storage_commands
from fabric.lab.cli import add_lab_commands
from fabric.lab.cluster import add_cluster_commands
from fabric.v1 import fabric_pb2 as pb
from fabric.v1 import network_pb2 as npb

# What the shell reports for a program killed by SIGPIPE (`git log | head` under pipefail): the CLI ends with
# the same status, without a message, when its reader has gone.
EXIT_READER_GONE = 128 + signal.SIGPIPE


def _vm_ref(args: argparse.Namespace, instance_view: bool = False) -> pb.VirtualMachineRef:
    """-g/-n, or --ids with a full resource id."""
    if getattr(args, "ids", None):
        parsed = ids.parse_vm_id(args.ids)
        if parsed is None:
            raise bad_option("ids", "--ids: expected /subscriptions/SUB/resourceGroups/RG/providers/"
                             "Microsoft.Compute/virtualMachines/NAME")
        _, args.resource_group, args.name = parsed
    if not args.resource_group or not args.name:
        raise bad_option("name", "give --resource-group/-g and --name/-n, or --ids")
    return pb.VirtualMachineRef(resource_group=args.resource_group, name=args.name, instance_view=instance_view)


def _finish(client: Client, op: pb.Operation, args: argparse.Namespace, then_show: bool) -> int:
    finish_op(client, op, args)
    if then_show and not args.no_wait:
        vm = client.call(client.vms.Get, _vm_ref(args, instance_view=True))
        _print_vm(vm, args.output)
    return 0


def _print_vm(vm: pb.VirtualMachine, fmt: str | None) -> None:
    if fmt == "table":
        d = output.as_dict(vm)
        print(output.table([_vm_row(d)], VM_HEADERS))
    else:
        output.print_json(vm)


VM_HEADERS = ["Name", "ResourceGroup", "Location", "Size", "ProvisioningState", "PowerState", "Node"]


def _vm_row(d: dict[str, Any]) -> list[Any]:
    p = d.get("properties", {})
    rg = d["id"].split("/")[4]
    return [d["name"], rg, d["location"], p.get("hardwareProfile", {}).get("vmSize"),
            p.get("provisioningState"), output.power_state(d), p.get("instanceView", {}).get("nodeName", "")]


# ---------- commands ----------

def cmd_group_create(c: Client, a: argparse.Namespace) -> int:
    rg = c.call(c.groups.Create, pb.CreateResourceGroupRequest(name=a.name, location=a.location))
    if a.output == "table":
        print(output.table([[rg.name, rg.location, rg.properties.provisioning_state]],
                           ["Name", "Location", "ProvisioningState"]))
    else:
        output.print_json(rg)
    return 0


def cmd_group_list(c: Client, a: argparse.Namespace) -> int:
    found = pages(c, c.groups.List, lambda n, token: pb.ListResourceGroupsRequest(max_items=n, next_token=token), a)
    if a.output == "table":
        print(output.table([[g.name, g.location, g.properties.provisioning_state] for g in found],
                           ["Name", "Location", "ProvisioningState"]))
    else:
        output.print_json([output.as_dict(g) for g in found])
    return 0


def cmd_vm_create(c: Client, a: argparse.Namespace) -> int:
    if a.command and not a.custom_script:
        raise bad_option("command", "--command goes with --custom-script")
    if a.custom_script and a.no_wait:
        raise bad_option("no-wait", "--custom-script adds the extension once the VM runs; drop --no-wait")
    if a.custom_script:
        script_file(a.custom_script)
    password, keys = _authentication(a)
    op = c.call(c.vms.Create, pb.CreateVirtualMachineRequest(resource_group=a.resource_group, name=a.name,
                                                             location=a.location or "", image=a.image, size=a.size,
                                                             storage_account=a.storage_account or "",
                                                             os_disk_delete_option=a.os_disk_delete_option,
                                                             vnet_name=a.vnet_name or "", subnet=a.subnet or "",
                                                             nics=a.nics or [],
                                                             private_ip_address=a.private_ip_address or "",
                                                             user_data=_file_base64(a.user_data, "user-data"),
                                                             provision_vm_agent=not a.no_provision_vm_agent,
                                                             admin_username=a.admin_username or "",
                                                             ssh_public_keys=keys, admin_password=password,
                                                             disable_password_authentication=not password,
                                                             custom_data=_file_base64(a.custom_data, "custom-data"),
                                                             computer_name=a.computer_name or ""))
    if not a.custom_script:
        return _finish(c, op, a, then_show=True)
    finish_op(c, op, a)
    publisher, name = ext.custom_script_handler(c, a.resource_group, a.name)
    req = ext.set_request(c, a.resource_group, a.name, name, publisher, None,
                          ext.custom_script_settings(c, a.custom_script, a.command), None)
    try:
        finish_op(c, c.call(c.extensions.Set, req), a)
    finally:
        _print_vm(c.call(c.vms.Get, _vm_ref(a, instance_view=True)), a.output)
    return 0


DEFAULT_SSH_KEY = Path.home() / ".ssh" / "id_rsa"


def _authentication(a: argparse.Namespace) -> tuple[str, list[pb.SshPublicKey]]:
    """(the admin password, the SSH keys) as --authentication-type says, as the reference's CLI reads them:
    ssh, password, or all (both); when not given, all with a password and keys, password with a password
    only, ssh otherwise. Without --admin-password, a terminal is asked for it twice."""
    keys_given = bool(a.ssh_key_values or a.generate_ssh_keys)
    kind = a.authentication_type or ("ssh" if a.admin_password is None else "all" if keys_given else "password")
    if kind == "ssh":
        if a.admin_password is not None:
            raise bad_option("admin-password", "a password goes with --authentication-type password or all")
        return "", _ssh_keys(a)
    if not a.admin_username:
        raise bad_option("admin-username", f"--authentication-type {kind} is for an admin user: give "
                                           f"--admin-username")
    if kind == "password" and keys_given:
        raise bad_option("ssh-key-values", "SSH keys go with --authentication-type ssh or all")
    password = a.admin_password
    if not password:
        if not sys.stdin.isatty():
            raise bad_option("admin-password", f"--authentication-type {kind} needs --admin-password")
        password = getpass.getpass("Admin Password: ")
        if getpass.getpass("Confirm Admin Password: ") != password:
            raise bad_option("admin-password", "the two passwords differ")
        if not password:
            raise bad_option("admin-password", f"--authentication-type {kind} needs a password")
    return password, (_ssh_keys(a) if kind == "all" else [])


def _ssh_keys(a: argparse.Namespace) -> list[pb.SshPublicKey]:
    """--ssh-key-values: each a public key or a file holding one; with an admin user and none given, the
    caller's ~/.ssh/id_rsa.pub, made first with --generate-ssh-keys (as the reference's CLI does)."""
    if not a.admin_username:
        if a.ssh_key_values or a.generate_ssh_keys:
            raise bad_option("admin-username", "SSH keys are for an admin user: give --admin-username")
        return []
    values = list(a.ssh_key_values or [])
    if not values:
        public = DEFAULT_SSH_KEY.with_suffix(".pub")
        if not public.exists():
            if not a.generate_ssh_keys:
                raise bad_option("ssh-key-values", f"no SSH key given and {public} does not exist: give "
                                                   f"--ssh-key-values, or --generate-ssh-keys to make one")
            DEFAULT_SSH_KEY.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            made = subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "3072", "-N", "", "-f",
                                   str(DEFAULT_SSH_KEY)], capture_output=True, text=True)
            if made.returncode != 0:
                raise bad_option("generate-ssh-keys", f"ssh-keygen failed: {made.stderr.strip()}")
            print(f"SSH key files '{DEFAULT_SSH_KEY}' and '{public}' have been generated under ~/.ssh",
                  file=sys.stderr)
        values = [str(public)]
    keys = []
    for v in values:
        if v.split(" ", 1)[0] in KEY_TYPES:
            keys.append(pb.SshPublicKey(key_data=v))
            continue
        try:
            keys.append(pb.SshPublicKey(key_data=Path(v).read_text().strip()))
        except (OSError, UnicodeDecodeError) as e:
            raise bad_option("ssh-key-values", f"--ssh-key-values: {v} is neither a public key nor a readable "
                                               f"file ({getattr(e, 'strerror', None) or e})") from None
    return keys


def _file_base64(path: str | None, option: str) -> str:
    """A file's bytes in base64, as the API takes user data and custom data."""
    if not path:
        return ""
    try:
        return base64.b64encode(Path(path).read_bytes()).decode()
    except OSError as e:
        raise bad_option(option, f"--{option}: cannot read {path}: {e.strerror}") from None


def cmd_vm_ssh(c: Client, a: argparse.Namespace) -> int:
    """An SSH session to the VM's admin user, or one command, from the host that runs it: through its network's
    service namespace (no route to the VM is needed). Host keys are known by the VM's id, not its address."""
    vm = c.call(c.vms.Get, _vm_ref(a))
    user = vm.properties.os_profile.admin_username
    if not user:
        raise bad_option("name", f"VM '{a.name}' has no admin user (osProfile.adminUsername): it was created "
                                 f"without --admin-username")
    refs = vm.properties.network_profile.network_interfaces
    if not refs:
        raise bad_option("name", f"VM '{a.name}' has no network interface")
    parts = refs[0].id.split("/")
    nic = c.call(c.nics.Get, npb.NetworkInterfaceRef(resource_group=parts[4], name=parts[-1]))
    ns, ip = nic.properties.service_namespace, nic.properties.ip_configurations[0].properties.private_ip_address
    if not ns:
        raise bad_option("name", f"VM '{a.name}' does not run on a node (power state: deallocated or not placed)")
    if not Path("/run/netns", ns).exists():
        raise bad_option("name", f"VM '{a.name}' runs on node '{nic.properties.node}': its network's services "
                                 f"(namespace {ns}) are not on this host; run `fabric vm ssh` there")
    known = Path.home() / ".ssh" / "fabriclab_known_hosts"
    argv = ["ip", "netns", "exec", ns, "ssh", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"UserKnownHostsFile={known}", "-o", f"HostKeyAlias={vm.properties.vm_id}",
            "-o", "ConnectTimeout=10", *(["-i", a.private_key] if a.private_key else []), f"{user}@{ip}",
            *(a.ssh_command[1:] if a.ssh_command[:1] == ["--"] else a.ssh_command)]
    known.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return subprocess.run(argv).returncode


def cmd_vm_show(c: Client, a: argparse.Namespace) -> int:
    _print_vm(c.call(c.vms.Get, _vm_ref(a, a.instance_view)), a.output)
    return 0


def cmd_vm_list(c: Client, a: argparse.Namespace) -> int:
    vms = pages(c, c.vms.List, lambda n, token: pb.ListVirtualMachinesRequest(
        resource_group=a.resource_group or "", max_items=n, next_token=token), a)
    output.print_list(vms, a.output, _vm_row, VM_HEADERS)
    return 0


def cmd_vm_list_sizes(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.vms.ListSizes, pb.ListSizesRequest(location=a.location))
    if a.output == "table":
        print(output.table([[s.name, s.number_of_cores, s.memory_in_mb, s.os_disk_size_in_mb,
                             s.resource_disk_size_in_mb, s.max_data_disk_count] for s in res.value],
                           ["Name", "NumberOfCores", "MemoryInMb", "OsDiskSizeInMb", "ResourceDiskSizeInMb",
                            "MaxDataDiskCount"]))
    else:
        output.print_json([output.as_dict(s) for s in res.value])
    return 0


def _action(method_name: str, then_show: bool = False):  # type: ignore[no-untyped-def]
    def run(c: Client, a: argparse.Namespace) -> int:
        ref = _vm_ref(a)
        op = c.call(getattr(c.vms, method_name), ref)
        return _finish(c, op, a, then_show=then_show)
    return run


def cmd_vm_delete(c: Client, a: argparse.Namespace) -> int:
    ref = _vm_ref(a)
    if not a.yes:
        if not sys.stdin.isatty():
            raise bad_option("yes", "not a terminal: pass --yes to delete without a prompt")
        answer = input("Are you sure you want to perform this operation? (y/n): ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    op = c.call(c.vms.Delete, ref)
    return _finish(c, op, a, then_show=False)


def cmd_vm_disk_attach(c: Client, a: argparse.Namespace) -> int:
    if a.new and not a.size_gb:
        raise bad_option("size-gb", "--new needs --size-gb N")
    op = c.call(c.vms.AttachDisk, pb.AttachDiskRequest(resource_group=a.resource_group, vm_name=a.vm_name,
                                                       name=a.name, size_gb=a.size_gb or 0, new=a.new))
    return _finish(c, op, a, then_show=False)


def cmd_vm_disk_detach(c: Client, a: argparse.Namespace) -> int:
    op = c.call(c.vms.DetachDisk, pb.DetachDiskRequest(resource_group=a.resource_group, vm_name=a.vm_name,
                                                       name=a.name))
    return _finish(c, op, a, then_show=False)


def cmd_vm_serial(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.vms.GetSerialOutput, pb.SerialOutputRequest(resource_group=a.resource_group, name=a.name,
                                                              tail_lines=a.tail))
    if a.output == "json":
        output.print_json(res)
    else:
        sys.stdout.write(f"# serial console of {a.name} on node {res.node_name} ({res.path})\n{res.output}")
    return 0


def cmd_node_list(c: Client, a: argparse.Namespace) -> int:
    nodes = pages(c, c.nodes.List, lambda n, token: pb.ListNodesRequest(max_items=n, next_token=token), a)
    if a.output == "table":
        print(output.table([[n.name, n.state, n.address or "-", n.fault_domain, n.hypervisor or "-",
                             f"{n.allocated_cores}/{n.cores}", f"{n.allocated_memory_mb}/{n.memory_mb}", n.vm_count]
                            for n in nodes],
                           ["Name", "State", "Address", "FaultDomain", "Hypervisor", "Cores(alloc/phys)",
                            "MemoryMB(alloc/total)", "VMs"]))
    else:
        output.print_json([output.as_dict(n) for n in nodes])
    return 0


def cmd_join_token_create(c: Client, a: argparse.Namespace) -> int:
    tok = c.call(c.nodes.CreateJoinToken, pb.CreateJoinTokenRequest(ttl_s=a.ttl, description=a.description))
    if a.output == "json":
        output.print_json(tok)
        return 0
    print(f"join token {tok.id}, one node, until {tok.expires_time}; cluster CA {tok.ca_fingerprint}\n"
          f"on the new node (after deploy/install.sh node):\n"
          f"  sudo fabric-node-agent join {tok.join_address} --token {tok.token}")
    return 0


def cmd_join_token_list(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.nodes.ListJoinTokens, pb.ListJoinTokensRequest())
    output.print_list(res.value, a.output, lambda t: [t["id"], t["expiresTime"], t["usedBy"] or "-", t["description"]],
                      ["Id", "Expires", "UsedBy", "Description"])
    return 0


def cmd_node_remove(c: Client, a: argparse.Namespace) -> int:
    res = c.call(c.nodes.Remove, pb.RemoveNodeRequest(name=a.name))
    if a.output == "json":
        output.print_json(res)
    else:
        print(f"node {res.name} removed: certificate {res.certificate_serial} revoked"
              + (f"; its {res.vm_count} VMs are handled as a dead node's" if res.vm_count else ""))
    return 0


def cmd_operation_show(c: Client, a: argparse.Namespace) -> int:
    op = c.call(c.ops.Get, pb.GetOperationRequest(id=a.id, trace=a.trace, why_not=a.why_not or ""))
    if a.why_not and a.output != "json":
        print(output.why_not_text(output.as_dict(op)["whyNot"]))
    elif a.trace and a.output != "json":
        print(output.trace_text(output.as_dict(op)))
    else:
        output.print_json(op)
    return 0


def cmd_operation_wait(c: Client, a: argparse.Namespace) -> int:
    """Follow an operation to its end; exit 0 when it Succeeded, 1 otherwise."""
    final = follow(c, c.call(c.ops.Get, pb.GetOperationRequest(id=a.id)))
    out = output.as_dict(final)
    out.pop("trace", None)
    output.print_json(out)
    return 0 if final.status == "Succeeded" else 1


# ---------- parser ----------

def _vm_args(p: argparse.ArgumentParser, wait: bool = True) -> None:
    p.add_argument("--resource-group", "-g")
    p.add_argument("--name", "-n")
    p.add_argument("--ids", help="a VM resource id instead of -g/-n")
    if wait:
        p.add_argument("--no-wait", action="store_true", help="return the operation at once")


COMMON = argparse.ArgumentParser(add_help=False)
COMMON.add_argument("--output", "-o", choices=("json", "table"), default=None, help="json (default) or table")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="fabric", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    top.add_argument("--controller", help="controller address HOST:PORT (default: the local lab's)")
    groups = top.add_subparsers(dest="group", required=True)

    g = groups.add_parser("group", help="resource groups").add_subparsers(dest="cmd", required=True)
    p = g.add_parser("create", parents=[COMMON])
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--location", "-l", required=True)
    p.set_defaults(fn=cmd_group_create)
    p = g.add_parser("list", parents=[COMMON])
    paged(p)
    p.set_defaults(fn=cmd_group_list)

    v = groups.add_parser("vm", help="virtual machines").add_subparsers(dest="cmd", required=True)
    p = v.add_parser("create", parents=[COMMON])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--image", required=True, help="PUBLISHER:OFFER:SKU:VERSION (VERSION may be latest)")
    p.add_argument("--size", required=True)
    p.add_argument("--location", "-l")
    p.add_argument("--storage-account", help="where the OS disk blob goes (default: the group's disk account)")
    p.add_argument("--vnet-name", help="default: the group's <group>-vnet, made on first use")
    p.add_argument("--subnet")
    p.add_argument("--nics", nargs="+", help="existing free NICs (names or ids) instead of a new one")
    p.add_argument("--private-ip-address", help="a static address for the new NIC")
    p.add_argument("--user-data", help="a file the guest gets from IMDS (compute.userData) and runs at first boot")
    p.add_argument("--os-disk-delete-option", choices=("Delete", "Detach"), default="Delete",
                   help="on vm delete: delete the OS disk blob, or keep it with its lease released")
    p.add_argument("--no-provision-vm-agent", action="store_true",
                   help="no guest agent in the VM (osProfile.linuxConfiguration.provisionVMAgent false): "
                        "no extensions, no temporary disk formatting")
    p.add_argument("--admin-username", help="the user the guest's provisioning agent makes (osProfile)")
    p.add_argument("--ssh-key-values", nargs="+", metavar="KEY_OR_FILE",
                   help="the admin user's SSH public keys, or files holding them (default: ~/.ssh/id_rsa.pub)")
    p.add_argument("--generate-ssh-keys", action="store_true",
                   help="make ~/.ssh/id_rsa(.pub) when it does not exist, and use it")
    p.add_argument("--computer-name", help="the guest's host name (default: the VM's name)")
    p.add_argument("--authentication-type", choices=("ssh", "password", "all"),
                   help="ssh keys, a password, or both (default: ssh, or password when only --admin-password is "
                        "given); a password reaches the guest once, on its provisioning CD")
    p.add_argument("--admin-password", help="the admin user's password (12-123 characters, three kinds of "
                                            "character); asked for when a terminal is there and it is not given")
    p.add_argument("--custom-data", metavar="FILE",
                   help="a file the guest reads once from its provisioning CD (cloud-init takes it as user data)")
    p.add_argument("--custom-script", metavar="FILE",
                   help="then run FILE with the CustomScript extension (uploaded, read SAS valid 24 h)")
    p.add_argument("--command", help="with --custom-script: the command to run (default: sh FILE)")
    p.add_argument("--no-wait", action="store_true")
    p.set_defaults(fn=cmd_vm_create)
    p = v.add_parser("show", parents=[COMMON])
    _vm_args(p, wait=False)
    p.add_argument("--instance-view", action="store_true")
    p.set_defaults(fn=cmd_vm_show)
    p = v.add_parser("ssh", parents=[COMMON], help="SSH to the VM's admin user from the host that runs it")
    _vm_args(p, wait=False)
    p.add_argument("--private-key", "-i", help="default: ssh's own (~/.ssh/id_rsa, ...)")
    p.add_argument("ssh_command", nargs=argparse.REMAINDER, metavar="-- COMMAND",
                   help="run this command instead of a login shell")
    p.set_defaults(fn=cmd_vm_ssh)
    for name, method in (("start", "Start"), ("stop", "PowerOff"), ("restart", "Restart"),
                         ("deallocate", "Deallocate"), ("redeploy", "Redeploy")):
        p = v.add_parser(name, parents=[COMMON])
        _vm_args(p)
        p.set_defaults(fn=_action(method))
    p = v.add_parser("delete", parents=[COMMON])
    _vm_args(p)
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.set_defaults(fn=cmd_vm_delete)
    p = v.add_parser("list", parents=[COMMON])
    p.add_argument("--resource-group", "-g")
    paged(p)
    p.set_defaults(fn=cmd_vm_list)
    p = v.add_parser("list-sizes", parents=[COMMON])
    p.add_argument("--location", "-l", required=True)
    p.set_defaults(fn=cmd_vm_list_sizes)
    p = v.add_parser("get-serial-output", parents=[COMMON])
    p.add_argument("--resource-group", "-g", required=True)
    p.add_argument("--name", "-n", required=True)
    p.add_argument("--tail", type=int, default=0, help="only the last N lines")
    p.set_defaults(fn=cmd_vm_serial)

    add_extension_commands(v, COMMON)

    d = v.add_parser("disk", help="data disks").add_subparsers(dest="sub", required=True)
    for verb, fn in (("attach", cmd_vm_disk_attach), ("detach", cmd_vm_disk_detach)):
        p = d.add_parser(verb, parents=[COMMON])
        p.add_argument("--resource-group", "-g", required=True)
        p.add_argument("--vm-name", required=True)
        p.add_argument("--name", "-n", required=True, help="the disk (blob NAME.qcow2 in the VM's storage account)")
        p.add_argument("--no-wait", action="store_true")
        if verb == "attach":
            p.add_argument("--new", action="store_true", help="create an empty disk")
            p.add_argument("--size-gb", type=int, help="size of a new disk, 1-1023")
        p.set_defaults(fn=fn)

    n = groups.add_parser("node", help="node agents").add_subparsers(dest="cmd", required=True)
    p = n.add_parser("list", parents=[COMMON])
    paged(p)
    p.set_defaults(fn=cmd_node_list)
    p = n.add_parser("remove", parents=[COMMON], help="revoke a node's certificate and drop it from the cluster")
    p.add_argument("name")
    p.set_defaults(fn=cmd_node_remove)
    t = n.add_parser("join-token", help="one-time tokens that enroll new nodes").add_subparsers(dest="sub",
                                                                                               required=True)
    p = t.add_parser("create", parents=[COMMON])
    p.add_argument("--ttl", type=duration, default=3600, help="how long it may be used: 90s, 30m, 1h, 2d (default 1h)")
    p.add_argument("--description", default="")
    p.set_defaults(fn=cmd_join_token_create)
    t.add_parser("list", parents=[COMMON]).set_defaults(fn=cmd_join_token_list)

    o = groups.add_parser("operation", help="asynchronous operations").add_subparsers(dest="cmd", required=True)
    p = o.add_parser("show", parents=[COMMON])
    p.add_argument("id")
    p.add_argument("--trace", action="store_true", help="every internal step, with placement explained")
    p.add_argument("--why-not", metavar="NODE",
                   help="why the placement did not choose NODE: its filters' verdicts for the VM's size now")
    p.set_defaults(fn=cmd_operation_show)
    p = o.add_parser("wait", parents=[COMMON])
    p.add_argument("id")
    p.set_defaults(fn=cmd_operation_wait)

    add_deployment_commands(groups, COMMON)
    add_network_commands(groups, COMMON)
    add_image_commands(groups, v, COMMON)
    add_storage_commands(groups, COMMON)
    add_lab_commands(groups, COMMON)
    add_cluster_commands(groups, COMMON)
    return top


def _stdout_closed() -> bool:
    """True when nobody reads stdout any more (a pipe whose reader exited reports an error when polled)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def _reader_gone() -> int:
    """End quietly: stdout goes to /dev/null so that the interpreter's last flush has nowhere to fail
    (as Python's documentation on SIGPIPE recommends)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_READER_GONE


def _print_error(body: dict[str, Any]) -> int:
    json.dump({"error": body}, sys.stderr, indent=2)
    sys.stderr.write("\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if getattr(args, "local", False):
            code = int(args.fn(args))
        else:
            code = int(args.fn(Client(args.controller), args))
        sys.stdout.flush()            # here, so that a reader that has gone is seen as such below
        return code
    except CliError as err:
        return _print_error(err.body)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback at the CLI
        if isinstance(exc, BrokenPipeError) and _stdout_closed():
            return _reader_gone()
        if os.environ.get("FABRIC_DEBUG"):
            raise
        return _print_error({"code": "InternalError",
                             "message": f"{type(exc).__name__}: {exc} (FABRIC_DEBUG=1 shows the traceback)"})


if __name__ == "__main__":
    sys.exit(main())
