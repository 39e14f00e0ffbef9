#!/usr/bin/env bash
# Install what fabriclab needs on a Debian 12 host, idempotently:
#   - Debian packages (only those missing),
#   - the project's .venv with fabriclab installed (editable) and its test extras,
#   - virtlogd and libvirtd started when they are not running,
#   - with a role, for a cluster on several hosts, that role's systemd units (deploy/systemd):
#       deploy/install.sh controller   fabriclab-etcd and fabriclab-controller (`fabric cluster init` starts them)
#       deploy/install.sh node         fabriclab-node (`fabric-node-agent join` starts it)
#     and the programs on root's PATH (/usr/local/bin). Without systemd the units are left out: `fabric
#     cluster init` then starts the programs itself.
# Safe to run again: it changes nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROLE=${1:-}
case "$ROLE" in
    ""|controller|node) ;;
    *) echo "usage: deploy/install.sh [controller|node]" >&2; exit 2 ;;
esac

PACKAGES=(etcd-server etcd-client libvirt-daemon-system libvirt-dev pkg-config qemu-system-x86
          qemu-utils dnsmasq-base nftables linux-image-cloud-amd64 busybox-static e2fsprogs cpio iproute2 gzip dnsutils curl openssh-client
          debootstrap fdisk extlinux syslinux-common genisoimage openssl)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install: apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "install: creating .venv"
    "$PY" -m venv .venv
fi
stamp=.venv/.fabriclab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "install: pip install -e .[test]"
    if ! { .venv/bin/pip install -q --upgrade pip && .venv/bin/pip install -q -e '.[test]'; } \
            > .venv/pip.log 2>&1; then
        cat .venv/pip.log >&2
        echo "install: pip install failed (log above, kept in .venv/pip.log)" >&2
        exit 1
    fi
    touch "$stamp"
fi

# Daemons: start each only when no process of that name runs (we never restart
# one a user or another project started).
if ! pgrep -x virtlogd >/dev/null; then echo "install: starting virtlogd"; virtlogd -d; fi
if ! pgrep -x libvirtd >/dev/null; then echo "install: starting libvirtd"; libvirtd -d; fi
for _ in $(seq 1 50); do
    virsh -c qemu:///system version >/dev/null 2>&1 && break
    sleep 0.2
done
virsh -c qemu:///system version >/dev/null || { echo "install: libvirtd does not answer on qemu:///system" >&2; exit 1; }

if [ -n "$ROLE" ]; then
    for prog in fabric fabric-controller fabric-node-agent; do
        ln -sfn "$PWD/.venv/bin/$prog" "/usr/local/bin/$prog"
    done
    install -d -m 0711 /etc/fabriclab /var/lib/fabriclab
    install -d -m 0700 /var/log/fabriclab
    case "$ROLE" in
        controller) units=(fabriclab-etcd.service fabriclab-controller.service) ;;
        node) units=(fabriclab-node.service) ;;
    esac
    if [ -d /run/systemd/system ]; then
        for u in "${units[@]}"; do
            sed "s|@PREFIX@|$PWD|g" "deploy/systemd/$u" > "/etc/systemd/system/$u.tmp"
            mv "/etc/systemd/system/$u.tmp" "/etc/systemd/system/$u"
        done
        systemctl daemon-reload
        echo "install: units ${units[*]} installed (not started)"
    else
        echo "install: no systemd here: ${units[*]} not installed; the programs are started directly"
    fi
    if [ "$ROLE" = node ] && ! grep -q '^nbd_tls_x509_cert_dir' /etc/libvirt/qemu.conf; then
        # qemu's NBD client certificate (nbd:NODE), which the node agent writes there at start
        install -d -m 0750 -g "$(id -gn libvirt-qemu 2>/dev/null || echo root)" /etc/fabriclab/nbd-tls
        printf '\n# fabriclab: disks over NBD with TLS\nnbd_tls_x509_cert_dir = "/etc/fabriclab/nbd-tls"\n' \
            >> /etc/libvirt/qemu.conf
        echo "install: qemu.conf: nbd_tls_x509_cert_dir = /etc/fabriclab/nbd-tls (restart libvirtd to take it)"
        if [ -d /run/systemd/system ]; then systemctl restart libvirtd; fi
    fi
    if [ "$ROLE" = controller ]; then
        echo "install: next: fabric cluster init --address THIS_HOSTS_ADDRESS"
    else
        echo "install: next: fabric-node-agent join CONTROLLER:7452 --token TOKEN (from fabric node join-token create)"
    fi
fi
echo "install: ready"
