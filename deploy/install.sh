#!/usr/bin/env bash
# Install what fabriclab needs on a Debian 12 host, idempotently:
#   - Debian packages (only those missing),
#   - the project's .venv with fabriclab installed (editable) and its test extras,
#   - virtlogd and libvirtd started when they are not running (no systemd here).
# Safe to run again: it changes nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(etcd-server etcd-client libvirt-daemon-system libvirt-dev pkg-config qemu-system-x86
          qemu-utils dnsmasq-base nftables linux-image-cloud-amd64 busybox-static e2fsprogs cpio iproute2 gzip dnsutils curl)

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
echo "install: ready"
