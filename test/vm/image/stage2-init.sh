# Stage 2 of the installed test system in a VM (the system's `init`; the builder prepends
# BB, RUNTIME and TOPLEVEL). RUNTIME is a store path with a Debian userland subset (sshd,
# Nix, busybox): linked in as /usr, /lib, ... so they run as on any Linux.
b() { "$BB" "$@"; }
b mkdir -p /proc /sys /dev /run /tmp
b mount -t proc proc /proc
b mount -t sysfs sys /sys
b mount -t devtmpfs dev /dev
b mkdir -p /dev/pts && b mount -t devpts devpts /dev/pts
b mount -t tmpfs -o mode=0755 tmpfs /run
b mount -t tmpfs -o mode=1777 tmpfs /tmp
for d in usr lib lib64 bin sbin; do b ln -sfn "$RUNTIME/$d" "/$d"; done
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /etc/ssh /etc/nix /root/.ssh /run/sshd /var/empty
printf 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/bin/false\n' > /etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' > /etc/group
printf 'root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n' > /etc/shadow
printf 'build-users-group =\nsandbox = false\nsubstituters =\nexperimental-features = nix-command\n' > /etc/nix/nix.conf
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nUsePAM no\nStrictModes no\nUseDNS no\nAuthorizedKeysFile /root/.ssh/authorized_keys\n' > /etc/ssh/sshd_config
hostname nixos
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
ln -sfn "$TOPLEVEL" /run/booted-system
/usr/sbin/sshd -e -f /etc/ssh/sshd_config
echo "nixos-pulumi stage 2: $TOPLEVEL up, sshd started" > /dev/console
"$TOPLEVEL/activate" && "$TOPLEVEL/bin/test-service" start
while :; do "$BB" sleep 3600; done
