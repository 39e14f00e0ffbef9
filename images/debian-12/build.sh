#!/usr/bin/env bash
# Build fabriclab:debian:12:VERSION into GALLERY: a Debian 12 cloud image whose own guest software provisions
# it, unmodified, as on the reference platform: Debian's cloud-init (Azure datasource: the admin user and SSH
# keys from IMDS) and Debian's waagent (WALinuxAgent: goal state, extensions, status).
#
#   images/debian-12/build.sh GALLERY VERSION [SOURCE_HASH]
#
# Output (a build product, never committed):
#   GALLERY/fabriclab/debian/12/VERSION/{disk.vhd,image.json}
# debootstrap from the Debian mirror this host's apt uses (nothing from anywhere else), then only the
# configuration a real image for the reference platform carries (rootfs/: the datasource, the agent's
# settings, the resource disk's udev link) and what a TCG lab needs (the agent's unit runs on any hypervisor).
# The OS disk is an MBR disk whose partition holds the ext4 root filesystem (`mkfs.ext4 -d`) and extlinux,
# converted to VHD: the VM's firmware boots it, Debian's own kernel and initramfs. It has no boot marker: the
# VM is provisioned when its guest agent reports Ready to the wireserver. The version folder appears only when
# complete.
set -euo pipefail

gallery=${1:?usage: build.sh GALLERY VERSION [SOURCE_HASH]}
version=${2:?usage: build.sh GALLERY VERSION [SOURCE_HASH]}
source_hash=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
dest="$gallery/fabriclab/debian/12/$version"
[ -f "$dest/image.json" ] && { echo "image fabriclab:debian:12:$version already built"; exit 0; }
[ -e "$dest" ] && { echo "$dest exists without image.json (an interrupted build?): remove it first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "building the Debian image needs root (debootstrap)" >&2; exit 1; }
for tool in debootstrap sfdisk extlinux; do
    command -v $tool >/dev/null || { echo "no $tool: deploy/install.sh installs it (debootstrap fdisk extlinux)" >&2; exit 1; }
done
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || { echo "no /usr/lib/syslinux/mbr/mbr.bin: install syslinux-common" >&2; exit 1; }

# the mirror this host's apt takes bookworm from (deb822 sources first, then sources.list)
mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ && u {print u; exit}' /etc/apt/sources.list.d/*.sources \
         2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list \
                             /etc/apt/sources.list.d/*.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "no Debian bookworm mirror in this host's apt sources" >&2; exit 1; }

PACKAGES="linux-image-cloud-amd64 systemd-sysv udev cloud-init waagent ifupdown isc-dhcp-client openssh-server sudo
          netbase iproute2 fdisk e2fsprogs ca-certificates"

mkdir -p "$(dirname "$dest")"
work=$(mktemp -d "$(dirname "$dest")/.build-$version.XXXXXX")
root="$work/root"
trap 'rm -rf --one-file-system "$work"' EXIT

# every mount of the build (debootstrap's and the chroot's proc and sys) is made in a mount namespace of its
# own: it goes with the build, whatever stops it
echo "debootstrap bookworm from $mirror"
unshare --mount --propagation private -- debootstrap --variant=minbase bookworm "$root" "$mirror" \
    > "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
echo "installing: $(echo $PACKAGES)"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"     # no service starts in the chroot
chmod 0755 "$root/usr/sbin/policy-rc.d"
unshare --mount --propagation private -- bash -c '
    mount -t proc proc "$1/proc" && mount -t sysfs sysfs "$1/sys" &&
    chroot "$1" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $2' \
    build "$root" "$PACKAGES" >> "$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
rm -f "$root/usr/sbin/policy-rc.d"

cp -r "$here/rootfs/." "$root/"
# per-VM identity is made at first boot: no machine id, no SSH host keys shared by every VM of the image; and
# nothing of the build host (its resolver: DHCP gives the VM its own)
: > "$root/etc/machine-id"
rm -f "$root/etc/resolv.conf"
rm -f "$root"/etc/ssh/ssh_host_*
echo "localhost" > "$root/etc/hostname"
echo "fabriclab:debian:12:$version" > "$root/etc/fabriclab-image"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

# boots like any real image: an MBR partition table, the root filesystem in its first partition, and a
# bootloader (extlinux, from this host's syslinux) that the VM's firmware (SeaBIOS) starts
kernel=$(cd "$root/boot" && ls -1 vmlinuz-* | sort -V | tail -n 1)
initrd=$(cd "$root/boot" && ls -1 initrd.img-* | sort -V | tail -n 1)
mkdir -p "$root/boot/extlinux"
cat > "$root/boot/extlinux/extlinux.conf" <<CONF
DEFAULT debian
PROMPT 0
TIMEOUT 0
LABEL debian
  LINUX /boot/$kernel
  INITRD /boot/$initrd
  APPEND root=LABEL=cloudimg-rootfs rw console=ttyS0 no_timer_check
CONF
echo "LABEL=cloudimg-rootfs / ext4 defaults,discard 0 1" > "$root/etc/fstab"

DISK_BYTES=$((4 << 30))
PART_START=2048                       # sectors: the first partition at 1 MiB
part="$work/part.img"
truncate -s $((DISK_BYTES - PART_START * 512)) "$part"
# extlinux reads ext4 without the 64bit and metadata_csum features
mkfs.ext4 -q -F -L cloudimg-rootfs -O ^64bit,^metadata_csum -d "$root" "$part"
unshare --mount --propagation private -- bash -c '
    mkdir -p "$2" && mount -o loop "$1" "$2" && extlinux --install "$2/boot/extlinux" && umount "$2"' \
    build "$part" "$work/mnt" >> "$work/build.log" 2>&1 || { tail -n 20 "$work/build.log" >&2; exit 1; }
rm -rf --one-file-system "$root" "$work/mnt"
raw="$work/disk.raw"
truncate -s $DISK_BYTES "$raw"
echo "start=$PART_START, type=83, bootable" | sfdisk -q "$raw"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$raw" bs=440 count=1 conv=notrunc status=none
dd if="$part" of="$raw" bs=1M seek=$((PART_START * 512 / 1048576)) conv=notrunc,sparse status=none
rm -f "$part"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$raw" "$work/disk.vhd"
rm -f "$raw"

vhd_bytes=$(stat -c %s "$work/disk.vhd")
cat > "$work/image.json" <<JSON
{"disk": "disk.vhd", "diskFormat": "vpc", "diskSizeBytes": $vhd_bytes, "kernel": "", "initrd": "", "cmdline": "",
 "bootMarker": "", "osType": "Linux", "hyperVGeneration": "V1", "partitionTable": "MBR",
 "sha256": "$(sha256sum "$work/disk.vhd" | cut -d' ' -f1)", "sourceHash": "$source_hash"}
JSON
rm -f "$work/build.log"
chmod 0755 "$work"; chmod 0644 "$work"/*
mv -T "$work" "$dest" || { echo "$dest appeared during the build: not replaced" >&2; exit 1; }
trap - EXIT
echo "built fabriclab:debian:12:$version in $dest"
