#!/usr/bin/env bash
# Builds the libvirt box `sagaj/bookworm` from Debian packages only (mmdebstrap), with everything
# the pipeline and the nemesis use already installed, so that provisioning needs no network
# inside the guests. Root only (mmdebstrap's root mode, chroot).
#
#   vagrant/box/build.sh [--out DIR] [--force]
#
# Writes into DIR (default vagrant/box/out):
#   box.img         the root file system (ext4 on the whole disk, no partition table), qcow2
#   vmlinuz         the guest kernel, initrd.img its initramfs (the domain boots them directly)
#   metadata.json   vagrant-libvirt's box metadata
#   Vagrantfile     the box's own: kernel, initrd, command line, and the libvirt driver
#   driver          kvm or qemu: what probe-kvm.sh found this CPU can run
#   sagaj-bookworm.box  the four box files above in one tar, for `vagrant box add`
#   build.json      what was built: packages, sizes, the probe's result and each step's time
#
# A box whose inputs (these scripts, the mirror) have not changed is not rebuilt;
# --force rebuilds it. Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian),
# DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security), HARNESS_VM_DRIVER
# (kvm or qemu: skip the probe).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 254 ;;
  esac
done
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
# The guest's packages. minbase has dpkg, apt, coreutils and util-linux (setsid); the rest:
# init and device handling, networking (systemd-networkd is part of systemd), sshd and sudo
# for the harness and vagrant, iptables/iproute2 for partitions, procps for signals, netbase
# for /etc/protocols (iptables -p tcp), kmod for the netfilter modules, the kernel itself.
packages="systemd-sysv,udev,dbus,kmod,openssh-server,sudo,iptables,iproute2,procps,netbase,iputils-ping,linux-image-amd64"

if [ "$(id -u)" != 0 ]; then
  echo "build.sh: must run as root (mmdebstrap builds the image in a chroot)" >&2
  exit 254
fi
missing=""
for tool in mmdebstrap mkfs.ext4 qemu-img qemu-system-x86_64 tar sha256sum; do
  command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "build.sh: missing:$missing" >&2
  echo "  apt-get install --no-install-recommends mmdebstrap e2fsprogs qemu-utils qemu-system-x86" >&2
  exit 254
fi
insecure_pub="$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
  /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n1 || true)"
if [ -z "$insecure_pub" ]; then
  echo "build.sh: Vagrant's insecure public key (keys/vagrant.pub) not found: apt-get install vagrant" >&2
  exit 254
fi

inputs="$( (cat "$0" "$here/customize.sh" "$here/probe-kvm.sh" "$insecure_pub"; echo "$mirror $security $packages ${HARNESS_VM_DRIVER:-probe}") | sha256sum | cut -c1-16)"
if [ "$force" = 0 ] && [ -f "$out/sagaj-bookworm.box" ] && [ "$(cat "$out/inputs" 2>/dev/null)" = "$inputs" ]; then
  echo "build.sh: $out/sagaj-bookworm.box is up to date (inputs $inputs); --force rebuilds it"
  exit 0
fi

mkdir -p "$out"
work="$(mktemp -d "$out/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# 1. The root file system. The initramfs is told, before the kernel package makes it, to hold
#    only what a virtio disk with ext4 needs: a small initrd boots much faster under emulation.
t0="$(now)"
echo "build.sh: mmdebstrap bookworm ($packages)"
mmdebstrap --variant=minbase --mode=root --include="$packages" \
  --essential-hook='mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"' \
  --essential-hook='printf "MODULES=list\n" > "$1/etc/initramfs-tools/conf.d/sagaj"' \
  --essential-hook='printf "virtio_pci\nvirtio_blk\next4\n" > "$1/usr/share/initramfs-tools/modules.d/sagaj"' \
  --dpkgopt=force-unsafe-io --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook="\"$here/customize.sh\" \"\$1\" \"$insecure_pub\"" \
  bookworm "$work/root" \
  "deb $mirror bookworm main" \
  "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main" >"$work/mmdebstrap.log" 2>&1 || {
    tail -n 30 "$work/mmdebstrap.log" >&2
    echo "build.sh: mmdebstrap failed (full log above, last 30 lines)" >&2
    exit 1
  }
t_debootstrap="$(since "$t0")"

# 2. Kernel and initrd out of /boot; the image itself without them (the domain boots them).
t0="$(now)"
kernel="$(ls "$work/root/boot"/vmlinuz-* | sort -V | tail -n1)"
initrd="$(ls "$work/root/boot"/initrd.img-* | sort -V | tail -n1)"
kversion="${kernel##*/vmlinuz-}"
cp "$kernel" "$work/vmlinuz"
cp "$initrd" "$work/initrd.img"
dpkg-query --admindir="$work/root/var/lib/dpkg" -W -f='${Package}=${Version}\n' >"$work/packages.txt"
# The domain boots the kernel and initrd above; the image does not need its copies.
rm -f "$work/root/boot"/vmlinuz-* "$work/root/boot"/initrd.img-* "$work/root/boot"/System.map-*
mkfs.ext4 -q -L sagaj-root -d "$work/root" "$work/box.raw" 4G
qemu-img convert -O qcow2 "$work/box.raw" "$work/box.img"
rm -f "$work/box.raw"
rm -rf "$work/root"
t_image="$(since "$t0")"

# 3. Which libvirt driver this CPU can run: boot the kernel under KVM and under TCG.
t0="$(now)"
if [ -n "${HARNESS_VM_DRIVER:-}" ]; then
  case "$HARNESS_VM_DRIVER" in kvm|qemu) ;; *) echo "build.sh: HARNESS_VM_DRIVER must be kvm or qemu" >&2; exit 254 ;; esac
  driver="$HARNESS_VM_DRIVER"
  probe='{"skipped": "HARNESS_VM_DRIVER"}'
else
  probe="$("$here/probe-kvm.sh" --json "$work/vmlinuz")"
  driver="$(printf '%s' "$probe" | sed -n 's/.*"driver": *"\([a-z]*\)".*/\1/p')"
fi
t_probe="$(since "$t0")"
echo "build.sh: driver=$driver"

# 4. The box: metadata, its Vagrantfile, one tar.
t0="$(now)"
echo "$driver" >"$work/driver"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 4}\n' >"$work/metadata.json"
cat >"$work/Vagrantfile" <<EOF
# The sagaj/bookworm box's own Vagrantfile, written by vagrant/box/build.sh.
# Kernel $kversion; driver "$driver" (probe-kvm.sh; HARNESS_VM_DRIVER overrides it at up time).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.driver = ENV.fetch("HARNESS_VM_DRIVER", "$driver")
    if lv.driver == "kvm"
      lv.cpu_mode = "host-passthrough"
    else
      lv.cpu_mode = "custom"
      lv.cpu_model = "qemu64"
      lv.cpu_fallback = "allow"
    end
    lv.kernel = File.expand_path("vmlinuz", __dir__)
    lv.initrd = File.expand_path("initrd.img", __dir__)
    lv.cmd_line = "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 biosdevname=0 loglevel=4 systemd.show_status=auto"
    lv.graphics_type = "none"
    lv.video_type = "none"
  end
end
EOF
tar -C "$work" -cf "$work/sagaj-bookworm.box" metadata.json Vagrantfile box.img vmlinuz initrd.img
t_box="$(since "$t0")"

cat >"$work/build.json" <<EOF
{
  "box": "sagaj/bookworm",
  "kernel": "$kversion",
  "driver": "$driver",
  "probe": $probe,
  "inputs": "$inputs",
  "bytes": {"box.img": $(stat -c %s "$work/box.img"), "initrd.img": $(stat -c %s "$work/initrd.img"), "box": $(stat -c %s "$work/sagaj-bookworm.box")},
  "packages": $(wc -l <"$work/packages.txt"),
  "seconds": {"mmdebstrap": $t_debootstrap, "image": $t_image, "probe": $t_probe, "box": $t_box}
}
EOF
for f in box.img vmlinuz initrd.img metadata.json Vagrantfile driver sagaj-bookworm.box packages.txt build.json mmdebstrap.log; do
  mv -f "$work/$f" "$out/$f"
done
echo "$inputs" >"$out/inputs"
echo "build.sh: built $out/sagaj-bookworm.box (mmdebstrap ${t_debootstrap}s, image ${t_image}s, probe ${t_probe}s, box ${t_box}s)"
