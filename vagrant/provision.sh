#!/bin/sh
# Provisions one node for the harness: the tools deploy and the nemesis use, the other nodes'
# names, and the run directory. Idempotent (vagrant provision may run it again).
set -eu
nodes="${1:-5}"

# procps: kill/pgrep; util-linux: setsid; iptables and iproute2: partition faults. The
# sagaj/bookworm box (box/build.sh) has them all, and its VMs have no network beyond each other:
# apt runs only on a box that lacks one (e.g. debian/bookworm64).
missing=""
for tool in iptables ip pkill setsid nohup sudo; do
  command -v "$tool" >/dev/null || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  echo "provision.sh: installing what provides:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq iptables iproute2 procps util-linux coreutils sudo >/dev/null
fi

# The other nodes by name, for humans reading logs.
i=1
while [ "$i" -le "$nodes" ]; do
  line="192.168.56.$((10 + i)) n$i"
  grep -qxF "$line" /etc/hosts || echo "$line" >> /etc/hosts
  i=$((i + 1))
done

# Where the harness puts each run (see workdir in the nodes file); owned by the login user.
install -d -o vagrant -g vagrant -m 0755 /tmp/harness

# Pause and kill faults signal the roles, which run as the login user; partition faults run
# iptables through passwordless sudo, which the Vagrant boxes already grant the vagrant user.
sudo -n -u vagrant sudo -n true
