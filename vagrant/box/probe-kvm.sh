#!/usr/bin/env bash
# Can this CPU run a stock Debian kernel under KVM? Boots KERNEL (no disk, no initrd) under KVM
# and under TCG (QEMU's emulation) and waits for the panic that ends every such boot
# ("VFS: Unable to mount root fs"): reaching it means the CPU ran the whole kernel start.
#
#   probe-kvm.sh [--json] KERNEL
#
# Prints the driver vagrant-libvirt should use: `kvm` when the KVM boot reached the panic,
# `qemu` (TCG) otherwise, with each boot's outcome and time. /dev/kvm alone proves nothing:
# a host may offer only a paravirtual KVM mode that a stock kernel cannot run. With --json the
# result is one JSON object. Exit 1 when neither boot reached the panic (a broken kernel).
set -euo pipefail
json=0
if [ "${1:-}" = --json ]; then json=1; shift; fi
kernel="${1:?usage: probe-kvm.sh [--json] KERNEL}"
# A TCG boot of the Debian 12 kernel to the panic took 6 s on a busy 2-core machine.
timeout_s="${PROBE_TIMEOUT_S:-120}"
qemu="$(command -v qemu-system-x86_64 || true)"
if [ -z "$qemu" ]; then
  echo "probe-kvm.sh: qemu-system-x86_64 not found (apt-get install qemu-system-x86)" >&2
  exit 254
fi

# boot ACCEL CPU: prints "<outcome> <seconds>", outcome reached|failed|timeout, and keeps the
# console in $log.ACCEL.
log="$(mktemp)"
trap 'rm -f "$log" "$log".*' EXIT
boot() {
  local accel="$1" cpu="$2" start end rc=0
  start="$(date +%s.%N)"
  timeout "$timeout_s" "$qemu" -accel "$accel" -cpu "$cpu" -m 256 -smp 1 -nodefaults \
    -display none -serial "file:$log.$accel" -no-reboot -kernel "$kernel" \
    -append "console=ttyS0 panic=-1 loglevel=4" >"$log.$accel.qemu" 2>&1 || rc=$?
  end="$(date +%s.%N)"
  local secs
  secs="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
  if grep -q "Unable to mount root fs" "$log.$accel" 2>/dev/null; then
    echo "reached $secs"
  elif [ "$rc" = 124 ]; then
    echo "timeout $secs"
  else
    echo "failed $secs"
  fi
}

why_kvm=""
if [ ! -c /dev/kvm ]; then
  kvm="failed 0.0"
  why_kvm="no /dev/kvm"
else
  kvm="$(boot kvm host)"
  if [ "${kvm%% *}" != reached ]; then
    # Without VT-x/AMD-V, /dev/kvm can only be a paravirtual mode (it was tried all the same).
    grep -qw -E 'vmx|svm' /proc/cpuinfo || why_kvm="the CPU has no vmx/svm flag; "
    last="$(grep -v '^$' "$log.kvm.qemu" 2>/dev/null | tail -n1 | tr -d '"\\' || true)"
    why_kvm="${why_kvm}${last:-the kernel did not reach its root-fs panic under KVM}"
  fi
fi
tcg="$(boot tcg qemu64)"

if [ "${kvm%% *}" = reached ]; then
  driver=kvm
elif [ "${tcg%% *}" = reached ]; then
  driver=qemu
else
  driver=none
fi
if [ "$json" = 1 ]; then
  printf '{"driver": "%s", "kvm": {"outcome": "%s", "seconds": %s, "why": "%s"}, "tcg": {"outcome": "%s", "seconds": %s}}\n' \
    "$driver" "${kvm%% *}" "${kvm##* }" "$why_kvm" "${tcg%% *}" "${tcg##* }"
else
  echo "kvm: ${kvm%% *} in ${kvm##* }s${why_kvm:+ ($why_kvm)}"
  echo "tcg: ${tcg%% *} in ${tcg##* }s"
  echo "driver: $driver"
fi
if [ "$driver" = none ]; then
  echo "probe-kvm.sh: '$kernel' reached its root-fs panic neither under KVM nor under TCG" >&2
  exit 1
fi
