#!/bin/sh
# /init of the test VMs' "rescue" system (RAM, busybox init stand-in): drivers, the
# network QEMU's user networking expects, sshd on port 22 with the rescue host key.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
. /pid1-reboot.sh
mkdir -p /proc /sys /dev /run /tmp /mnt /root
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd && chmod 0755 /run/sshd
while read -r module; do insmod "/modules/$module" 2>/dev/null; done < /modules/order
[ -f /etc/marker ] && cat /etc/marker > /dev/console
hostname "$(cat /etc/hostname)"
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
/usr/sbin/sshd -e -f /etc/ssh/sshd_config
echo "sshd started" > /dev/console
pid1_idle
