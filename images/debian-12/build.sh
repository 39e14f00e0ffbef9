#!/usr/bin/env bash
# Build fabriclab:debian:12:VERSION into GALLERY: a Debian 12 cloud image whose own guest software provisions
# it, unmodified, as on the reference platform: Debian's cloud-init (Azure datasource: the admin user and SSH
# keys from IMDS) and Debian's waagent (WALinuxAgent: goal state, extensions, status).
#
#   images/debian-12/build.sh GALLERY VERSION [SOURCE_HASH]
#
# Output (a build product, never committed):
#   GALLERY/fabriclab/debian/12/VERSION/{disk.vhd,vmlinuz,initrd.img,image.json}
# debootstrap from the Debian mirror this host's apt uses (nothing from anywhere else), then only the
# configuration a real image for the reference platform carries (rootfs/: the datasource, the agent's
# settings, the resource disk's udev link) and what a TCG lab needs (the agent's unit runs on any hypervisor).
# The OS disk is an ext4 filesystem made with `mkfs.ext4 -d` (nothing is mounted) converted to VHD; the image
# boots Debian's own kernel and initramfs. It has no boot marker: the VM is provisioned when its guest agent
# reports Ready to the wireserver. The version folder appears only when complete.
set -euo pipefail

gallery=${1:?usage: build.sh GALLERY VERSION [SOURCE_HASH]}
version=${2:?usage: build.sh GALLERY VERSION [SOURCE_HASH]}
source_hash=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
dest="$gallery/fabriclab/debian/12/$version"
[ -f "$dest/image.json" ] && { echo "image fabriclab:debian:12:$version already built"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "building the Debian image needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "no debootstrap: apt-get install debootstrap" >&2; exit 1; }

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
# per-VM identity is made at first boot: no machine id, no SSH host keys shared by every VM of the image
: > "$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
echo "localhost" > "$root/etc/hostname"
echo "fabriclab:debian:12:$version" > "$root/etc/fabriclab-image"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

kernel=$(ls -1 "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls -1 "$root"/boot/initrd.img-* | sort -V | tail -n 1)
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"

truncate -s 4G "$work/root.img"
mkfs.ext4 -q -F -L cloudimg-rootfs -d "$root" "$work/root.img"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$work/root.img" "$work/disk.vhd"
rm -f "$work/root.img"
rm -rf --one-file-system "$root"

vhd_bytes=$(stat -c %s "$work/disk.vhd")
cat > "$work/image.json" <<JSON
{"disk": "disk.vhd", "diskFormat": "vpc", "diskSizeBytes": $vhd_bytes, "kernel": "vmlinuz", "initrd": "initrd.img",
 "cmdline": "console=ttyS0 root=/dev/vda rw no_timer_check",
 "bootMarker": "", "osType": "Linux", "sourceHash": "$source_hash"}
JSON
rm -f "$work/build.log"
chmod 0755 "$work"; chmod 0644 "$work"/*
mv "$work" "$dest"
trap - EXIT
echo "built fabriclab:debian:12:$version in $dest"
