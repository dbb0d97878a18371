#!/usr/bin/env bash
# Debian VMs for `harness run --cluster ssh`, on libvirt, inside a network namespace of their
# own: libvirtd, vagrant and the harness's SSH and HTTP traffic to the guests all run in it, so
# no address the VMs use exists in the host's namespace. Root only. See README.md.
#
#   vagrant/vm.sh check                     what is missing, and how to get it (installs nothing)
#   vagrant/vm.sh up [--nodes N] [TIMING]   box, daemons, VMs, nodes file (STATE/nodes.toml)
#   vagrant/vm.sh status                    what exists; exit 0 when every VM is running
#   vagrant/vm.sh exec CMD...               run CMD in the VMs' namespace (e.g. harness run)
#   vagrant/vm.sh vagrant ARGS...           run vagrant there, on this Vagrantfile (ssh n1, ...)
#   vagrant/vm.sh down                      remove the VMs, their disks, networks, pool, the
#                                           daemons it started, the namespace and STATE
#
# TIMING (written to the nodes file's [timing] table, for slow guests): --lease-ttl-ms N,
# --store-timeout-ms N, --call-timeout-ms N, --health-timeout-ms N.
#
# Environment: HARNESS_VM_STATE (STATE, default vagrant/.state), HARNESS_VM_NETNS (default
# sagaj-vm), HARNESS_VM_HOME (VAGRANT_HOME: boxes, default vagrant/.vagrant.d; the VMs' kernel
# is read from there, so it must not be under a folder only root may enter, such as /root),
# HARNESS_VM_DRIVER (kvm or qemu: skip box/build.sh's probe), HARNESS_BIN (the harness binary,
# default target/release/harness), HARNESS_VM_MEMORY_MIB (768).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
state="${HARNESS_VM_STATE:-$here/.state}"
ns="${HARNESS_VM_NETNS:-sagaj-vm}"
box_name="sagaj/bookworm"
box_dir="$here/box/out"
export VAGRANT_HOME="${HARNESS_VM_HOME:-$here/.vagrant.d}"
export VAGRANT_CWD="$here"
export VAGRANT_DOTFILE_PATH="$state/dotvagrant"
export VAGRANT_DEFAULT_PROVIDER=libvirt
export HARNESS_VM_STATE="$state"
export HARNESS_BOX="$box_name"
export LIBVIRT_DEFAULT_URI="qemu:///system"
# The node count of the VMs that are up (the Vagrantfile defines that many).
if [ -f "$state/nodes-count" ]; then
  HARNESS_NODES="$(cat "$state/nodes-count")"
  export HARNESS_NODES
fi
# Bounds: how long each daemon gets to start or stop, in tenths of a second.
daemon_wait_tenths=100
pool=sagaj

say() { echo "vm.sh: $*" >&2; }
die() { say "$*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
in_ns() { ip netns exec "$ns" "$@"; }
ns_exists() { [ -e "/run/netns/$ns" ]; }
ns_inode() { stat -L -c %i "/run/netns/$ns" 2>/dev/null || echo none; }
# The network namespace inode of process PID.
pid_ns() { readlink "/proc/$1/ns/net" 2>/dev/null | tr -dc 0-9; }

# check: every tool up and down need, and the apt-get line that brings the missing ones.
check() {
  local missing="" pkgs="" t
  [ "$(id -u)" = 0 ] || die "must run as root (network namespaces, libvirtd, mmdebstrap)"
  while read -r t pkg; do
    if ! command -v "$t" >/dev/null; then
      missing="$missing $t"
      pkgs="$pkgs $pkg"
    fi
  done <<'EOF'
ip iproute2
vagrant vagrant
libvirtd libvirt-daemon-system
virtlogd libvirt-daemon-system
virsh libvirt-clients
dnsmasq dnsmasq-base
qemu-img qemu-utils
qemu-system-x86_64 qemu-system-x86
mmdebstrap mmdebstrap
mkfs.ext4 e2fsprogs
ssh-keygen openssh-client
iptables iptables
EOF
  if command -v vagrant >/dev/null && ! vagrant plugin list 2>/dev/null | grep vagrant-libvirt >/dev/null; then
    missing="$missing vagrant-libvirt"
    pkgs="$pkgs vagrant-libvirt"
  fi
  if [ -n "$missing" ]; then
    say "missing:$missing"
    say "install them with:"
    # qemu-utils on this machine kind comes from bookworm-backports: qemu-system-x86 must match it.
    if dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep bpo >/dev/null; then
      say "  apt-get install --no-install-recommends -t bookworm-backports qemu-system-x86"
      say "  (bookworm-backports in the apt sources: qemu-utils $(dpkg-query -W -f='${Version}' qemu-utils) is from there)"
    fi
    say "  apt-get install --no-install-recommends$pkgs"
    return 254
  fi
  say "every tool is there (vagrant $(vagrant --version | cut -d' ' -f2), $(qemu-system-x86_64 --version | head -n1))"
}

# The harness binary (for nodes-from-ssh-config).
harness_bin() {
  local b="${HARNESS_BIN:-$repo/target/release/harness}"
  [ -x "$b" ] || die "no harness binary at $b: cargo build --release -p harness -p sut (or set HARNESS_BIN)"
  echo "$b"
}

# Starts DAEMON inside the namespace unless it already runs there; refuses when it runs in
# another namespace (its networks would put the VMs' addresses there).
start_daemon() {
  local d="$1" pid i
  for pid in $(pgrep -x "$d" || true); do
    if [ "$(pid_ns "$pid")" = "$(ns_inode)" ]; then
      return 0
    fi
    die "$d (pid $pid) runs outside the namespace $ns, so the VMs' networks would be made in its namespace; stop it first (with systemd: systemctl stop $d.service $d.socket $d-ro.socket $d-admin.socket)"
  done
  if [ "$d" = libvirtd ] && [ -c /dev/kvm ] && [ "$(cat "$box_dir/driver" 2>/dev/null)" = qemu ]; then
    # The probe found that this host's /dev/kvm cannot run the guests. libvirtd's capability
    # probe of QEMU then fails on it and is redone at every domain definition (minutes each on
    # two busy cores): in libvirtd's own mount namespace, /dev/kvm is /dev/null.
    in_ns sh -c 'mount --bind /dev/null /dev/kvm && exec libvirtd -d'
  else
    in_ns "$d" -d
  fi
  for ((i = 0; i < daemon_wait_tenths; i++)); do
    pgrep -x "$d" >/dev/null && break
    sleep 0.1
  done
  pgrep -x "$d" >/dev/null || die "$d did not start (see /var/log/libvirt/$d.log)"
  echo "$d" >>"$state/started-daemons"
}

netns_up() {
  if ! ns_exists; then
    ip netns add "$ns"
    ip -n "$ns" link set lo up
  fi
}

pool_up() {
  mkdir -p "$state/pool"
  if ! virsh pool-info "$pool" >/dev/null 2>&1; then
    virsh pool-define-as "$pool" dir --target "$state/pool" >/dev/null
  fi
  virsh pool-info "$pool" | grep running >/dev/null || virsh pool-start "$pool" >/dev/null
}

# True when libvirt has a definition of one of the VMs.
vms_defined() { ls /etc/libvirt/qemu/sagaj-*.xml >/dev/null 2>&1; }

# Builds the box unless VMs exist (their disks are overlays of its volume: it must not change
# under them). Before the daemons start: libvirtd's start depends on the driver it found.
box_build() {
  if vms_defined; then
    say "VMs exist already: keeping their box (vagrant/vm.sh down, then up, to rebuild it)"
    return 0
  fi
  "$here/box/build.sh" --out "$box_dir"
}

# (Re)adds the box when the built one is not the added one, unless VMs exist.
box_up() {
  vms_defined && return 0
  local added="$VAGRANT_HOME/sagaj-box-inputs"
  if ! vagrant box list 2>/dev/null | grep "^$box_name " >/dev/null ||
    [ "$(cat "$added" 2>/dev/null)" != "$(cat "$box_dir/inputs")" ]; then
    vagrant box add --force --name "$box_name" "$box_dir/sagaj-bookworm.box" >/dev/null
    cp "$box_dir/inputs" "$added"
    # A volume of an older box in the pool would be used instead of the new one.
    virsh vol-list "$pool" 2>/dev/null | awk '/vagrant_box_image/ {print $1}' |
      while read -r v; do virsh vol-delete --pool "$pool" "$v" >/dev/null; done
  fi
  local kernel
  kernel="$(ls "$VAGRANT_HOME"/boxes/sagaj-VAGRANTSLASH-bookworm/*/libvirt/vmlinuz | head -n1)"
  if ! runuser -u libvirt-qemu -- test -r "$kernel" 2>/dev/null; then
    die "libvirt's QEMU (user libvirt-qemu) cannot read $kernel: set HARNESS_VM_HOME to a folder outside /root"
  fi
}

# How many READY lines VM $1's console holds (one per boot).
ready_count() { awk '/SAGAJ-READY/ {n++} END {print n + 0}' "$state/vms/$1.console.log" 2>/dev/null || echo 0; }

# In the background: for each VM whose console shows a READY line beyond the BASE counts
# ("n1=0 n2=1 ..."), records the seconds since START in STATE/vms/NODE.boot-s. Bounded by the
# Vagrantfile's boot timeout.
watch_ready() {
  local n="$1" start="$2" base="$3" i f want
  for ((i = 0; i < 3000; i++)); do
    local pending=0
    for f in $(seq 1 "$n"); do
      [ -e "$state/vms/n$f.boot-s" ] && continue
      want="$(echo "$base" | tr ' ' '\n' | awk -F= -v k="n$f" '$1 == k {print $2 + 1}')"
      if [ "$(ready_count "n$f")" -ge "${want:-1}" ]; then
        since "$start" >"$state/vms/n$f.boot-s"
      else
        pending=1
      fi
    done
    [ "$pending" = 0 ] && return 0
    sleep 0.2
  done
}

# known_hosts from the keys each VM printed on its serial console, for the address
# `vagrant ssh-config` gives; then one OpenSSH login per VM that checks them.
host_keys() {
  local n="$1" i host port user key keys line
  : >"$state/known_hosts"
  for i in $(seq 1 "$n"); do
    host="$(awk -v h="n$i" '$1 == "Host" {on = ($2 == h)} on && $1 == "HostName" {print $2}' "$state/ssh-config")"
    port="$(awk -v h="n$i" '$1 == "Host" {on = ($2 == h)} on && $1 == "Port" {print $2}' "$state/ssh-config")"
    # (-o: a line may follow a login prompt that the console printed without a newline)
    keys="$(tr -d '\r' <"$state/vms/n$i.console.log" | grep -a -o 'SAGAJ-HOSTKEY [^ ]* [^ ]*' | awk '{print $2, $3}' | sort -u)"
    [ -n "$keys" ] || die "n$i printed no host keys on its console ($state/vms/n$i.console.log)"
    [ "$(echo "$keys" | awk '{print $1}' | uniq -d)" = "" ] ||
      die "n$i printed two different keys of one type: was the console log of another VM?"
    [ "${port:-22}" = 22 ] && line="$host" || line="[$host]:$port"
    echo "$keys" | while read -r t k; do echo "$line $t $k"; done >>"$state/known_hosts"
  done
  for i in $(seq 1 "$n"); do
    host="$(awk -v h="n$i" '$1 == "Host" {on = ($2 == h)} on && $1 == "HostName" {print $2}' "$state/ssh-config")"
    user="$(awk -v h="n$i" '$1 == "Host" {on = ($2 == h)} on && $1 == "User" {print $2}' "$state/ssh-config")"
    key="$(awk -v h="n$i" '$1 == "Host" {on = ($2 == h)} on && $1 == "IdentityFile" {print $2}' "$state/ssh-config" | tr -d '"' | head -n1)"
    in_ns ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$state/known_hosts" \
      -o ConnectTimeout=30 -i "$key" "$user@$host" true ||
      die "n$i: ssh with the console's host keys failed (see above)"
  done
}

up() {
  local nodes=5 timing="" t0 t_all
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) nodes="$2"; shift 2 ;;
      --lease-ttl-ms|--store-timeout-ms|--call-timeout-ms|--health-timeout-ms)
        [[ "$2" =~ ^[0-9]+$ ]] || die "$1 '$2': a number of milliseconds"
        timing="$timing${1#--}=$2"$'\n'
        shift 2 ;;
      *) die "up: unknown argument '$1'" ;;
    esac
  done
  [[ "$nodes" =~ ^[1-9]$ ]] || die "--nodes $nodes: between 1 and 9"
  check
  local harness
  harness="$(harness_bin)"
  t_all="$(now)"
  mkdir -p "$state/vms"
  if [ -f "$state/nodes-count" ] && [ "$(cat "$state/nodes-count")" != "$nodes" ]; then
    die "--nodes $nodes: $(cat "$state/nodes-count") VMs are up; vagrant/vm.sh down first"
  fi
  export HARNESS_NODES="$nodes"
  echo "$nodes" >"$state/nodes-count"
  t0="$(now)"
  box_build
  netns_up
  start_daemon virtlogd
  start_daemon libvirtd
  pool_up
  box_up
  local t_box
  t_box="$(since "$t0")"
  t0="$(now)"
  rm -f "$state"/vms/*.boot-s
  local base="" i
  for i in $(seq 1 "$nodes"); do base="$base n$i=$(ready_count "n$i")"; done
  watch_ready "$nodes" "$t0" "$base" &
  local watcher=$!
  # Each line of vagrant's output with the seconds since up started, kept in STATE/vms/
  # (pipefail: the pipeline fails when vagrant does). Vagrant buffers its output when it is not
  # a terminal, so it gets one (script -e: vagrant's exit code).
  if ! in_ns script -q -e -c "vagrant up --provider libvirt --no-color" /dev/null </dev/null 2>&1 |
    awk -v t0="$(date +%s)" '{ gsub(/\r/, ""); printf "[%4ds] %s\n", systime() - t0, $0; fflush() }' |
    tee "$state/vms/vagrant-up.log" >&2; then
    kill "$watcher" 2>/dev/null || true
    say "vagrant up failed; the console logs are in $state/vms/, libvirt's QEMU logs in /var/log/libvirt/qemu/"
    say "(see README.md, 'When a VM does not come up'; vagrant/vm.sh down removes everything)"
    exit 1
  fi
  local t_up
  t_up="$(since "$t0")"
  # A VM that was running already did not boot now: its watcher is not waited for long.
  for ((i = 0; i < 50; i++)); do kill -0 "$watcher" 2>/dev/null || break; sleep 0.2; done
  kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  t0="$(now)"
  in_ns vagrant ssh-config >"$state/ssh-config"
  host_keys "$nodes"
  local addrs=()
  for i in $(seq 1 "$nodes"); do addrs+=(--addr "n$i=192.168.56.$((10 + i))"); done
  "$harness" nodes-from-ssh-config "$state/ssh-config" --known-hosts known_hosts "${addrs[@]}" |
    awk '{print} /^known_hosts = / {print "vms_dir = \"vms\""}' >"$state/nodes.toml.tmp"
  if [ -n "$timing" ]; then
    printf '\n[timing]\n' >>"$state/nodes.toml.tmp"
    printf '%s' "$timing" | sed 's/-/_/g; s/=/ = /' >>"$state/nodes.toml.tmp"
  fi
  mv "$state/nodes.toml.tmp" "$state/nodes.toml"
  local t_ssh
  t_ssh="$(since "$t0")"
  boot_json "$nodes" "$t_box" "$t_up" "$t_ssh" "$(since "$t_all")"
  say "up: $nodes VMs in ${t_up}s (box ${t_box}s, host keys and ssh ${t_ssh}s); nodes file $state/nodes.toml"
  say "run: vagrant/vm.sh exec target/release/harness run --cluster ssh --nodes-file $state/nodes.toml"
}

# STATE/vms/boot.json: each VM's boot time by its own clock (kernel start to sshd up, from the
# last READY line of its console) and by the host's (from `vagrant up` to that line, when this
# up booted it), and the times of up's steps.
boot_json() {
  local n="$1" i guest host sep=""
  # An up that booted no VM (they were running) keeps the record of the up that booted them.
  if [ -f "$state/vms/boot.json" ] && ! ls "$state"/vms/*.boot-s >/dev/null 2>&1; then
    return 0
  fi
  {
    printf '{\n  "driver": "%s",\n  "nodes": {' "$(cat "$box_dir/driver" 2>/dev/null || echo unknown)"
    for i in $(seq 1 "$n"); do
      guest="$(grep -a -o 'SAGAJ-READY uptime_s=[0-9.]*' "$state/vms/n$i.console.log" | tail -n1 | cut -d= -f2)"
      host="$(cat "$state/vms/n$i.boot-s" 2>/dev/null || echo null)"
      printf '%s\n    "n%s": {"booted_by_this_up": %s, "guest_s_kernel_to_sshd": %s, "host_s_vagrant_up_to_ready": %s}' \
        "$sep" "$i" "$([ "$host" = null ] && echo false || echo true)" "${guest:-null}" "$host"
      sep=","
    done
    printf '\n  },\n  "seconds": {"box": %s, "vagrant_up": %s, "host_keys_and_ssh": %s, "total": %s}\n}\n' "$2" "$3" "$4" "$5"
  } >"$state/vms/boot.json"
}

status() {
  local ok=0
  if ns_exists; then echo "namespace $ns: present"; else echo "namespace $ns: absent"; ok=1; fi
  for d in libvirtd virtlogd; do
    local pid
    pid="$(pgrep -x "$d" | head -n1 || true)"
    if [ -z "$pid" ]; then echo "$d: not running"; ok=1
    elif [ "$(pid_ns "$pid")" = "$(ns_inode)" ]; then echo "$d: pid $pid, in $ns"
    else echo "$d: pid $pid, NOT in $ns"; ok=1; fi
  done
  if pgrep -x libvirtd >/dev/null; then
    echo "domains:"; virsh list --all --name | grep '^sagaj-' | sed 's/^/  /' || true
    echo "networks:"; virsh net-list --all --name | grep '^sagaj-' | sed 's/^/  /' || true
    echo "pool $pool: $(virsh pool-info "$pool" 2>/dev/null | awk '/State/ {print $2}' || echo absent)"
  fi
  if [ -d "$VAGRANT_DOTFILE_PATH" ] && ns_exists && pgrep -x libvirtd >/dev/null; then
    in_ns vagrant status | grep -E '^n[0-9] ' || true
    in_ns vagrant status --machine-readable | grep ',state,running' >/dev/null || ok=1
    if in_ns vagrant status --machine-readable | grep ',state,' | grep -v ',state,running' >/dev/null; then ok=1; fi
  else
    ok=1
  fi
  [ -f "$state/nodes.toml" ] && echo "nodes file: $state/nodes.toml"
  return "$ok"
}

# Stops PIDS (TERM, then KILL after the bound); they are processes this script started, found
# by their namespace.
stop_pids() {
  local pids="$*" i
  [ -n "$pids" ] || return 0
  kill -TERM $pids 2>/dev/null || true
  for ((i = 0; i < daemon_wait_tenths; i++)); do
    local alive=""
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && return 0
    sleep 0.1
  done
  kill -KILL $alive 2>/dev/null || true
}

down() {
  local leftovers=0
  ls /etc/libvirt/qemu/sagaj-*.xml /etc/libvirt/qemu/networks/sagaj-*.xml /etc/libvirt/storage/$pool.xml >/dev/null 2>&1 && leftovers=1
  if [ "$leftovers" = 1 ] || [ -d "$state" ]; then
    mkdir -p "$state"
    netns_up
    start_daemon virtlogd
    start_daemon libvirtd
    if [ -d "$VAGRANT_DOTFILE_PATH" ]; then
      in_ns vagrant destroy -f || say "vagrant destroy failed; removing the domains with virsh"
    fi
    local d
    for d in $(virsh list --all --name | grep '^sagaj-' || true); do
      virsh destroy "$d" >/dev/null 2>&1 || true
      virsh undefine "$d" --remove-all-storage >/dev/null 2>&1 || virsh undefine "$d" >/dev/null
    done
    for d in $(virsh net-list --all --name | grep '^sagaj-' || true); do
      local br
      br="$(virsh net-info "$d" | awk '$1 == "Bridge:" {print $2}')"
      virsh net-destroy "$d" >/dev/null 2>&1 || true
      virsh net-undefine "$d" >/dev/null
      # libvirt keeps the leases of a network's bridge after the network is gone.
      [ -n "$br" ] && rm -f "/var/lib/libvirt/dnsmasq/$br.status" "/var/lib/libvirt/dnsmasq/$br.macs"
    done
    if virsh pool-info "$pool" >/dev/null 2>&1; then
      virsh pool-refresh "$pool" >/dev/null 2>&1 || true
      for d in $(virsh vol-list "$pool" | awk 'NR > 2 && $1 != "" {print $1}'); do
        virsh vol-delete --pool "$pool" "$d" >/dev/null
      done
      virsh pool-destroy "$pool" >/dev/null 2>&1 || true
      virsh pool-undefine "$pool" >/dev/null
    fi
  fi
  if ns_exists; then
    # What runs in the namespace was started by this script (the daemons, their dnsmasq and
    # QEMU processes): stop it, then remove the namespace.
    stop_pids $(ip netns pids "$ns")
    ip netns del "$ns"
  fi
  rm -rf "$state"
  say "down: no VM, disk, network, pool or namespace of $ns is left"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  check) check ;;
  up) up "$@" ;;
  status) status ;;
  down) [ "$(id -u)" = 0 ] || die "must run as root"; down ;;
  exec)
    ns_exists || die "no namespace $ns: vagrant/vm.sh up first"
    exec ip netns exec "$ns" "$@" ;;
  vagrant)
    ns_exists || die "no namespace $ns: vagrant/vm.sh up first"
    exec ip netns exec "$ns" vagrant "$@" ;;
  -h|--help|"") sed -n '2,23p' "$0" ;;
  *) die "unknown command '$cmd' (see --help)" ;;
esac
