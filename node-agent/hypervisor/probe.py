"""Decide the libvirt domain type: KVM when a guest really boots under it, else TCG ("qemu").

`/dev/kvm` existing is not enough: under broken nested virtualisation a KVM
guest hangs in firmware. The probe boots a kernel in a transient KVM domain
and waits for its first console line; no line within KVM_PROBE_TIMEOUT_S
means TCG. The probe domain is destroyed whatever happens.
"""
from __future__ import annotations

import glob
import os
import tempfile
import time
import uuid

import libvirt

from nodeagent.hypervisor.host import Host

KVM_PROBE_TIMEOUT_S = 8.0
KVM_PROBE_MEMORY_MB = 128
PROBE_MARKER = "Linux version"


def _probe_kernel() -> str | None:
    found = sorted(glob.glob("/boot/vmlinuz-*"))
    return found[-1] if found else None


def probe_kvm(host: Host, node: str) -> tuple[bool, str]:
    if "kvm" not in host.domain_types():
        return False, "libvirt offers no kvm domain type"
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm is missing"
    kernel = _probe_kernel()
    if kernel is None:
        return False, "no kernel in /boot to probe with"
    with tempfile.TemporaryDirectory(prefix="fabriclab-kvm-probe-") as tmp:
        os.chmod(tmp, 0o755)
        log = os.path.join(tmp, "console.log")
        xml = f"""<domain type='kvm'><name>fabriclab-kvm-probe-{node}-{uuid.uuid4().hex[:8]}</name>
<memory unit='MiB'>{KVM_PROBE_MEMORY_MB}</memory><vcpu>1</vcpu><cpu mode='host-passthrough'/>
<os><type arch='x86_64' machine='q35'>hvm</type><kernel>{kernel}</kernel>
<cmdline>console=ttyS0 panic=-1</cmdline></os><on_reboot>destroy</on_reboot>
<devices><serial type='file'><source path='{log}'/><target port='0'/></serial></devices></domain>"""
        conn = host._conn  # the probe is part of the hypervisor package
        try:
            dom = conn.createXML(xml, 0)
        except libvirt.libvirtError as exc:
            return False, f"a KVM domain does not start: {exc.get_error_message()}"
        try:
            deadline = time.monotonic() + KVM_PROBE_TIMEOUT_S
            while time.monotonic() < deadline:
                try:
                    with open(log, errors="replace") as f:
                        if PROBE_MARKER in f.read():
                            return True, f"a KVM guest printed '{PROBE_MARKER}'"
                except FileNotFoundError:
                    pass
                time.sleep(0.1)
            return False, f"a KVM guest printed nothing in {KVM_PROBE_TIMEOUT_S:g} s (hangs in firmware)"
        finally:
            try:
                dom.destroy()
            except libvirt.libvirtError:
                pass


def choose_domain_type(host: Host, node: str, setting: str) -> tuple[str, str]:
    """(domain type, why). setting: "kvm" or "qemu" forces it; "auto" probes."""
    if setting in ("kvm", "qemu"):
        return setting, "set explicitly"
    if host.uri.startswith("test:"):
        return "test", "libvirt test driver"
    ok, why = probe_kvm(host, node)
    return ("kvm" if ok else "qemu"), why
