#!/bin/sh
# mmdebstrap's customize hook for the sagaj/bookworm box (called by build.sh):
#   customize.sh ROOT INSECURE_PUBLIC_KEY
# Makes ROOT a Vagrant box: the vagrant user (Vagrant's insecure key, which `vagrant up`
# replaces with a key of each machine's own; passwordless sudo), DHCP on eth0, no SSH host keys
# (each VM makes its own at first boot and prints them on its serial console, where
# vagrant/vm.sh reads them: host keys are known without trusting the network), and a line on
# the console when the VM is ready, with its uptime (its boot time).
set -eu
root="$1"
pub="$2"
case "$root" in
  /*/*) ;;
  *) echo "customize.sh: '$root' is not a build root" >&2; exit 1 ;;
esac
test -x "$root/usr/bin/ssh-keygen"

chroot "$root" useradd --create-home --shell /bin/bash --groups sudo --comment vagrant vagrant
install -d -m 0700 "$root/home/vagrant/.ssh"
install -m 0600 "$pub" "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
printf 'vagrant ALL=(ALL) NOPASSWD:ALL\nDefaults:vagrant !requiretty\n' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"

printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"
echo sagaj >"$root/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 sagaj\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# eth0 is the management network (vagrant-libvirt's DHCP); Vagrant writes eth1's file itself
# (50-vagrant-eth1.network, static address) when it configures the private network.
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
  >"$root/etc/systemd/network/10-eth0.network"
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1

# sshd: no DNS lookups of clients (there is no DNS in the VMs' namespace).
printf 'UseDNS no\nGSSAPIAuthentication no\n' >"$root/etc/ssh/sshd_config.d/sagaj.conf"
rm -f "$root"/etc/ssh/ssh_host_*

lib="$root/usr/local/lib/sagaj"
mkdir -p "$lib"
# Makes the missing SSH host keys (all of them at first boot) and prints each public key on
# the serial console.
printf '%s\n' '#!/bin/sh' 'set -eu' 'ssh-keygen -A' \
  'for k in /etc/ssh/ssh_host_*_key.pub; do' \
  '  printf "SAGAJ-HOSTKEY %s\n" "$(cut -d" " -f1,2 "$k")"' \
  'done >/dev/ttyS0' >"$lib/hostkeys"
# Prints that sshd is up, with the seconds since the kernel started: the VM's boot time.
printf '%s\n' '#!/bin/sh' \
  'printf "SAGAJ-READY uptime_s=%s\n" "$(cut -d" " -f1 /proc/uptime)" >/dev/ttyS0' >"$lib/ready"
chmod 0755 "$lib/hostkeys" "$lib/ready"

units="$root/etc/systemd/system"
printf '%s\n' '[Unit]' "Description=Make this VM's SSH host keys and print them on the serial console" \
  'After=local-fs.target' 'Before=ssh.service' 'ConditionPathExists=/dev/ttyS0' '' \
  '[Service]' 'Type=oneshot' 'RemainAfterExit=yes' 'ExecStart=/usr/local/lib/sagaj/hostkeys' '' \
  '[Install]' 'WantedBy=ssh.service' >"$units/sagaj-hostkeys.service"
printf '%s\n' '[Unit]' 'Description=Print on the serial console that sshd is up, with the uptime' \
  'After=ssh.service systemd-networkd.service' 'Wants=ssh.service' 'ConditionPathExists=/dev/ttyS0' '' \
  '[Service]' 'Type=oneshot' 'ExecStart=/usr/local/lib/sagaj/ready' '' \
  '[Install]' 'WantedBy=multi-user.target' >"$units/sagaj-ready.service"
chroot "$root" systemctl enable sagaj-hostkeys.service sagaj-ready.service >/dev/null 2>&1

# Kernel modules a VM with virtio devices never loads (sound, graphics, wireless, USB, other
# file systems...): most of the image's size, which every `vagrant up` copies. Netfilter,
# virtio, ext4 and the rest stay.
kdir="$(ls -d "$root"/usr/lib/modules/* | head -n1)"
for d in sound drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/usb \
  drivers/bluetooth drivers/iio drivers/isdn drivers/scsi drivers/ata drivers/mmc drivers/nfc \
  drivers/thunderbolt drivers/hid drivers/input drivers/hwmon drivers/video drivers/net/wireless \
  drivers/net/ethernet drivers/net/can drivers/net/usb drivers/net/ieee802154 drivers/net/wwan \
  drivers/mtd drivers/md drivers/target drivers/nvme drivers/firewire drivers/gnss \
  drivers/misc drivers/mfd drivers/platform drivers/leds drivers/w1 drivers/comedi \
  net/bluetooth net/wireless net/mac80211 net/nfc net/ieee802154 net/can net/9p net/ceph \
  net/sunrpc net/rxrpc net/rds net/tipc net/sctp net/dccp net/l2tp net/mpls \
  fs/btrfs fs/xfs fs/ocfs2 fs/gfs2 fs/nfs fs/nfsd fs/ceph fs/cifs fs/smb fs/f2fs fs/jfs \
  fs/reiserfs fs/ntfs3 fs/ubifs fs/nilfs2 fs/udf fs/hfs fs/hfsplus fs/afs fs/9p fs/orangefs; do
  rm -rf "${kdir:?}/kernel/$d"
done
chroot "$root" depmod -a "${kdir##*/}"

# Each VM gets its own machine id (and so its own DHCP identity) at first boot.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
