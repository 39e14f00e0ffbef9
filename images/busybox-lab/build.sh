#!/usr/bin/env bash
# Build the default gallery image fabriclab:busybox:lab:VERSION into GALLERY.
#
#   images/busybox-lab/build.sh GALLERY VERSION [SOURCE_HASH]
#
# Output (a build product, never committed):
#   GALLERY/fabriclab/busybox/lab/VERSION/{disk.vhd,vmlinuz,initrd.img,image.json}
# The OS disk is an ext4 filesystem made with `mkfs.ext4 -d` (nothing is
# mounted on the host) converted to VHD (qemu-img format `vpc`). The kernel is
# the host's Debian cloud kernel; the initramfs carries its virtio modules,
# loads them in dependency order, mounts /dev/vda and switches root. The
# version folder appears only when complete (built in a temp dir, then renamed).
set -euo pipefail

gallery=${1:?usage: build.sh GALLERY VERSION}
version=${2:?usage: build.sh GALLERY VERSION [SOURCE_HASH]}
source_hash=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
dest="$gallery/fabriclab/busybox/lab/$version"
[ -f "$dest/image.json" ] && { echo "image fabriclab:busybox:lab:$version already built"; exit 0; }

kernel=$(ls -1 /boot/vmlinuz-*-cloud-amd64 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "no /boot/vmlinuz-*-cloud-amd64: install linux-image-cloud-amd64" >&2; exit 1; }
kver=${kernel#/boot/vmlinuz-}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && file -L "$busybox" 2>/dev/null | grep -q dynamic && busybox=""
[ -x /bin/busybox ] && busybox=/bin/busybox
[ -n "$busybox" ] || { echo "no static busybox: install busybox-static" >&2; exit 1; }

mkdir -p "$(dirname "$dest")"
work=$(mktemp -d "$(dirname "$dest")/.build-$version.XXXXXX")
trap 'rm -rf "$work"' EXIT

populate() {  # populate DIR: busybox and its applet links
    mkdir -p "$1"/{bin,sbin,etc,proc,sys,dev,tmp,run,root,var/log,usr/bin,usr/sbin}
    cp "$busybox" "$1/bin/busybox"
    for applet in $("$busybox" --list); do
        [ -e "$1/bin/$applet" ] || ln -s busybox "$1/bin/$applet"
    done
    ln -sf ../bin/busybox "$1/sbin/init"
}

# --- root filesystem (the OS disk) ---
root="$work/root"
populate "$root"
cp -r "$here/rootfs/." "$root/"
chmod 0755 "$root/etc/init.d/rcS" "$root/etc/udhcpc.script" "$root/usr/sbin/fabriclab-agent"
echo "fabriclab:busybox:lab:$version" > "$root/etc/fabriclab-image"
truncate -s 64M "$work/root.img"
mkfs.ext4 -q -F -L cloudimg-rootfs -d "$root" "$work/root.img"
qemu-img convert -q -f raw -O vpc -o subformat=fixed,force_size=on "$work/root.img" "$work/disk.vhd"
rm -f "$work/root.img"

# --- initramfs: virtio modules in dependency order, then switch_root ---
init="$work/initramfs"
populate "$init"
mkdir -p "$init/lib/modules" "$init/newroot"
# dependency order; the SCSI ones carry data disks (virtio-scsi LUNs, hot-pluggable)
modules="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover net_failover virtio_net virtio_blk scsi_common scsi_mod virtio_scsi sd_mod"
for m in $modules; do
    ko=$(find "/lib/modules/$kver/kernel" -name "$m.ko" | head -n 1)
    [ -n "$ko" ] || { echo "module $m.ko not found for kernel $kver" >&2; exit 1; }
    cp "$ko" "$init/lib/modules/"
done
cat > "$init/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $modules; do /bin/busybox insmod /lib/modules/\$m.ko || echo "initramfs: insmod \$m failed"; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do /bin/busybox usleep 50000; i=\$((i+1)); done
if ! /bin/busybox mount -t ext4 /dev/vda /newroot; then
    echo "initramfs: cannot mount the OS disk /dev/vda"; exec /bin/busybox sh
fi
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /sbin/init
INIT
chmod 0755 "$init/init"
(cd "$init" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initrd.img"
rm -rf "$init" "$root"

cp "$kernel" "$work/vmlinuz"
vhd_bytes=$(stat -c %s "$work/disk.vhd")
cat > "$work/image.json" <<JSON
{
  "publisher": "fabriclab",
  "offer": "busybox",
  "sku": "lab",
  "version": "$version",
  "osType": "Linux",
  "kernelVersion": "$kver",
  "disk": "disk.vhd",
  "diskFormat": "vpc",
  "diskSizeBytes": $vhd_bytes,
  "kernel": "vmlinuz",
  "initrd": "initrd.img",
  "cmdline": "console=ttyS0 panic=-1 quiet",
  "bootMarker": "fabriclab-guest: reached user space",
  "sourceHash": "$source_hash"
}
JSON
chmod 0755 "$work"; chmod 0644 "$work"/*
mv "$work" "$dest"
trap - EXIT
echo "built image fabriclab:busybox:lab:$version in $dest"
