import xml.etree.ElementTree as ET

from nodeagent.hypervisor.domain_xml import METADATA_NS, DomainSpec, domain_xml
from nodeagent.storage_backends import LocalPathBackend


def spec(domain_type: str = "qemu") -> DomainSpec:
    return DomainSpec(name="fl-vm-1234", uuid="12345678-1234-1234-1234-123456789abc", node="node-1", fabric_id="f-1",
                      resource_group="RG", vm_name="vm<&>", domain_type=domain_type, cores=2, memory_mb=512,
                      kernel="/g/vmlinuz", initrd="/g/initrd.img", cmdline="console=ttyS0 fabric.hostname=vm",
                      os_disk=LocalPathBackend().source({"path": "/d/os.qcow2"}), resource_disk="/n/r.raw", console_log="/n/c.log")


def at(el: ET.Element, path: str) -> ET.Element:
    found = el.find(path)
    assert found is not None, path
    return found


def test_domain_boots_the_overlay_with_console_to_a_file() -> None:
    root = ET.fromstring(domain_xml(spec()))
    assert root.get("type") == "qemu"
    assert root.findtext("memory") == "512" and root.findtext("vcpu") == "2"
    assert root.findtext("os/kernel") == "/g/vmlinuz"
    disks = root.findall("devices/disk")
    assert [(at(d, "driver").get("type"), at(d, "source").get("file"), at(d, "target").get("dev"))
            for d in disks] == [("qcow2", "/d/os.qcow2", "vda"), ("raw", "/n/r.raw", "vdb")]
    assert at(root, "devices/serial").get("type") == "file"
    assert at(root, "devices/serial/source").get("path") == "/n/c.log"
    assert root.find("cpu") is None      # TCG: no host CPU passthrough


def test_metadata_names_the_owner_node_and_escapes_names() -> None:
    root = ET.fromstring(domain_xml(spec("kvm")))
    inst = root.find(f"metadata/{{{METADATA_NS}}}instance")
    assert inst is not None
    assert inst.findtext(f"{{{METADATA_NS}}}node") == "node-1"
    assert inst.findtext(f"{{{METADATA_NS}}}name") == "vm<&>"
    assert at(root, "cpu").get("mode") == "host-passthrough"
