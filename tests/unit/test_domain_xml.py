import dataclasses
import xml.etree.ElementTree as ET

from nodeagent.hypervisor import DirectBoot, FirmwareBoot, Nic, VmSpec
from nodeagent.hypervisor.domain_xml import METADATA_NS, domain_xml, fingerprint
from nodeagent.storage_backends import Disk


SPEC = VmSpec(uuid="12345678-1234-1234-1234-123456789abc", name="fl-vm-1234", resource_group="RG", vm_name="vm<&>",
              cores=2, memory_mb=512, boot=DirectBoot("/g/vmlinuz", "/g/initrd.img", "console=ttyS0 fabric.hostname=vm"),
              os_disk=Disk("file", "/d/os.qcow2"), resource_disk=Disk("file", "/n/r.raw", "raw"),
              console_log="/n/c.log", nics=(Nic("52:54:00:00:00:01", "flbr1", "flt1"),))


def at(el: ET.Element, path: str) -> ET.Element:
    found = el.find(path)
    assert found is not None, path
    return found


def test_domain_boots_the_overlay_with_console_to_a_file() -> None:
    root = ET.fromstring(domain_xml(SPEC, "qemu", "f-1", "node-1"))
    assert root.get("type") == "qemu"
    assert root.findtext("memory") == "512" and root.findtext("vcpu") == "2"
    assert root.findtext("os/kernel") == "/g/vmlinuz"
    disks = root.findall("devices/disk")
    assert [(at(d, "driver").get("type"), at(d, "source").get("file"), at(d, "target").get("dev"))
            for d in disks] == [("qcow2", "/d/os.qcow2", "vda"), ("raw", "/n/r.raw", "vdb")]
    assert at(root, "devices/serial").get("type") == "file"
    assert at(root, "devices/serial/source").get("path") == "/n/c.log"
    assert at(root, "devices/interface/target").get("dev") == "flt1"
    assert root.find("cpu") is None      # TCG: no host CPU passthrough


def test_metadata_names_the_owner_node_and_escapes_names() -> None:
    root = ET.fromstring(domain_xml(SPEC, "kvm", "f-1", "node-1", fingerprint="abc"))
    inst = root.find(f"metadata/{{{METADATA_NS}}}instance")
    assert inst is not None
    assert inst.findtext(f"{{{METADATA_NS}}}node") == "node-1"
    assert inst.findtext(f"{{{METADATA_NS}}}name") == "vm<&>"
    assert inst.findtext(f"{{{METADATA_NS}}}spec") == "abc"
    assert at(root, "cpu").get("mode") == "host-passthrough"


def test_a_network_volume_becomes_a_network_disk_with_its_hosts() -> None:
    rbd = Disk("network", "pool/vm-os", "raw", protocol="rbd", hosts=("10.0.0.5:6789",))
    root = ET.fromstring(domain_xml(dataclasses.replace(SPEC, os_disk=rbd), "qemu", "f-1", "node-1"))
    disk = root.findall("devices/disk")[0]
    assert disk.get("type") == "network"
    assert (at(disk, "source").get("protocol"), at(disk, "source").get("name")) == ("rbd", "pool/vm-os")
    assert (at(disk, "source/host").get("name"), at(disk, "source/host").get("port")) == ("10.0.0.5", "6789")


def test_the_fingerprint_changes_with_the_definition_not_with_data_disks() -> None:
    def fp(spec: VmSpec = SPEC, domain_type: str = "qemu") -> str:
        return fingerprint(spec, domain_type, "f-1", "node-1")
    base = fp()
    assert fp(dataclasses.replace(SPEC, data_disks=((0, Disk("file", "/d/data.vhd", "raw")),))) == base
    assert fp(dataclasses.replace(SPEC, nics=(Nic("52:54:00:00:00:01", "flbr1", "flt2"),))) != base
    assert fp(dataclasses.replace(SPEC, memory_mb=1024)) != base
    assert fp(domain_type="kvm") != base


def test_the_guest_sees_the_reference_platforms_chassis_asset_tag() -> None:
    """What guest software (cloud-init's datasource detection) reads from SMBIOS to know which cloud it runs on."""
    root = ET.fromstring(domain_xml(SPEC, "qemu", "f-1", "node-1"))
    assert at(root, "os/smbios").get("mode") == "sysinfo"
    chassis = {e.get("name"): e.text for e in root.findall("sysinfo[@type='smbios']/chassis/entry")}
    assert chassis["asset"] == "7783-7084-3265-9085-8269-3286-77"


def test_the_resource_disk_carries_the_serial_images_link_and_kvm_offers_the_hyperv_interface() -> None:
    """An image's udev rule links the disk with serial "resource" to /dev/disk/cloud/azure_resource, where the
    reference's guest software formats it. On KVM the guest gets the Hyper-V interface (and sees the vendor its
    agent's unit asks for); under TCG, which has none of it, nothing is asked for."""
    qemu = ET.fromstring(domain_xml(SPEC, "qemu", "f-1", "node-1"))
    serials = [d.findtext("serial") for d in qemu.findall("devices/disk")]
    assert serials == [None, "resource"]
    assert qemu.find("features/hyperv") is None
    kvm = ET.fromstring(domain_xml(SPEC, "kvm", "f-1", "node-1"))
    assert at(kvm, "features/hyperv/vendor_id").get("value") == "Microsoft Hv"
    assert at(kvm, "features/hyperv/relaxed").get("state") == "on"
    assert at(kvm, "clock/timer[@name='hypervclock']").get("present") == "yes"


def test_an_image_with_its_own_bootloader_boots_through_the_firmware() -> None:
    root = ET.fromstring(domain_xml(dataclasses.replace(SPEC, boot=FirmwareBoot()), "qemu", "f-1", "node-1"))
    assert at(root, "os/boot").get("dev") == "hd"
    assert root.find("os/kernel") is None and root.find("os/cmdline") is None and root.find("os/loader") is None
