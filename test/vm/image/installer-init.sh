#!/bin/sh
# /init of the test kexec installer (RAM). Before sshd starts it restores what kexec/run
# appended to the initrd, as nixos-images' restore-remote-access.nix does in its stage 1:
#   /ssh/authorized_keys -> /root/.ssh/authorized_keys (0400; the ONLY keys that log in)
#   /ssh/ssh_host_*      -> /etc/ssh/ (0400, every type carried)
#   /machine-id          -> /etc/machine-id
# sshd listens on port 22 and, as NixOS's sshd module (services.openssh.hostKeys, default
# rsa and ed25519), serves ONLY /etc/ssh/ssh_host_rsa_key and ssh_host_ed25519_key: a
# carried ECDSA key is on disk but not served. A type of that list with no key carried is
# generated before sshd starts (the module's preStart), so the machine presents a key
# nobody saw before.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /pid1-reboot.sh
mkdir -p /proc /sys /dev /run /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/cryptsetup /run/lvm && chmod 0755 /run/sshd
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
cat /etc/marker > /dev/console
mkdir -m 700 -p /root/.ssh
mkdir -m 755 -p /etc/ssh
if [ -f /ssh/authorized_keys ]; then cp /ssh/authorized_keys /root/.ssh/authorized_keys; chmod 400 /root/.ssh/authorized_keys; fi
for k in /ssh/ssh_host_*; do
  [ -e "$k" ] || continue
  cp "$k" /etc/ssh/; chmod 400 "/etc/ssh/$(basename "$k")"
done
[ -f /machine-id ] && cp /machine-id /etc/machine-id
for t in rsa ed25519; do
  # RSA at 2048 bits, not NixOS's 4096: the type is the contract, and TCG is slow.
  [ -f "/etc/ssh/ssh_host_${t}_key" ] || ssh-keygen -q -t "$t" $([ "$t" = rsa ] && echo -b 2048) -N "" -f "/etc/ssh/ssh_host_${t}_key"
  echo "HostKey /etc/ssh/ssh_host_${t}_key" >> /etc/ssh/sshd_config
done
hostname "$(cat /etc/hostname)"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/usr/sbin/sshd -e -p 22 -f /etc/ssh/sshd_config
echo "sshd started" > /dev/console
pid1_idle
