#!/usr/bin/env bash
# A KVM VPS node from Debian's archive, for the VM lane (molecule/vm): no cloud image.
#
#   images/vm.sh build              build the image if missing; print its directory
#   images/vm.sh tag                the image's tag (a hash of its inputs)
#   images/vm.sh accel              kvm or tcg: what this host can run the guest with
#   images/vm.sh start NAME PORT    boot NAME (a copy-on-write overlay of the image and an
#                                   empty data disk) with SSH on 127.0.0.1:PORT
#   images/vm.sh stop NAME          power NAME off and delete its disks (its serial console's
#                                   log stays in .cache/vm/run/NAME.console.log)
#
# The image: debootstrap (minbase) of the suite with linux-image-amd64, systemd, D-Bus, sshd,
# python3 and the role common's baseline packages, then Debian's security updates
# (apt-get dist-upgrade against the -security suite), as a 3 GB ext4 root filesystem built
# by mkfs.ext4 -d (no loop mount).
# qemu boots its kernel and initrd directly (no bootloader): the root disk is /dev/vda,
# the data disk /dev/vdb, both virtio as on a KVM VPS. Root logs in with the key generated
# at build time (id_ed25519 beside the image), as a provider installs yours; the SSH host
# keys are generated at first boot. The role's packages are there, not its configuration.
#
# Like images/build.sh, the tag hashes every input (the functions below that build it, the
# suite, the package list, the mirrors), so a change to any of them builds a new image under
# .cache/vm/<tag>; a change to how it boots does not.
#
# Acceleration: HURTIG_VM_ACCEL=kvm|tcg forces one. Otherwise KVM when /dev/kvm opens and
# boots a kernel to its panic on a missing init within HURTIG_VM_KVM_PROBE_S (3 s: a native
# KVM takes about one, TCG 3.5 here); a /dev/kvm that cannot (a paravirtual device, nested
# without hardware support: it hangs) falls back to TCG, qemu's emulator, far slower.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
SUITE=${HURTIG_VM_SUITE:-trixie}
MIRROR=${HURTIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${HURTIG_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
CACHE=${HURTIG_VM_CACHE:-$root/.cache/vm}
RUN=$CACHE/run
# What a provider's minimal image has, and the baseline packages of the role common (read
# from its defaults): installing those under TCG took 281 s, mostly xfsprogs' initramfs
# rebuild; the container scenarios test that the role installs them.
BASELINE=$(awk '/^common_packages:/ {f = 1; next} f && /^  - / {print $2; next} f {exit}' "$root/roles/common/defaults/main.yml")
PACKAGES=linux-image-amd64,systemd-sysv,udev,kmod,dbus,openssh-server,python3,iproute2,procps,$(echo $BASELINE | tr ' ' ,)
DISK_SIZE=3G DATA_SIZE=${HURTIG_VM_DATA_SIZE:-2G} MEMORY=${HURTIG_VM_MEMORY:-2048}

log() { printf '[vm] %s\n' "$*" >&2; }

tag() { # the functions that build the image (bash's own listing of them) and their inputs
  echo "$SUITE-$( { declare -f configure build; printf '%s\n' "$SUITE" "$PACKAGES" "$MIRROR" "$SECURITY_MIRROR" "$DISK_SIZE"; } \
    | sha256sum | cut -c1-12)"
}

in_root() { chroot "$1" /usr/bin/env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 "${@:2}"; }

configure() { # rootfs dir: what a provider's image has (network, fstab, console, root's key)
  local dir=$1 image=$2
  printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
    "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" > "$dir/etc/apt/sources.list"
  # Debian's security updates, before anything runs the image (initramfs rebuilt by apt)
  mount -t proc proc "$dir/proc" && mount --rbind /sys "$dir/sys" && mount --rbind /dev "$dir/dev"
  local rc=0
  { in_root "$dir" apt-get update -q && in_root "$dir" apt-get dist-upgrade -y -q; } >> "$image.log" 2>&1 || rc=$?
  umount -R "$dir/dev" "$dir/sys" "$dir/proc"
  [ $rc -eq 0 ] || { tail -20 "$image.log" >&2; return 1; }
  in_root "$dir" apt-get clean
  rm -rf "$dir"/var/lib/apt/lists/* && touch -d 2000-01-01 "$dir/var/lib/apt/lists"  # a stale image
  echo vm > "$dir/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\tvm\n' > "$dir/etc/hosts"
  printf '/dev/vda / ext4 defaults,noatime,errors=remount-ro 0 1\n' > "$dir/etc/fstab"
  # systemd-networkd, DHCP on qemu's user network (ifupdown's udev settle cost 19 s a boot
  # under TCG); its DNS server is the network's own 10.0.2.3
  printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\n' > "$dir/etc/systemd/network/10-eth0.network"
  in_root "$dir" systemctl enable -q systemd-networkd
  echo "nameserver 10.0.2.3" > "$dir/etc/resolv.conf"
  rm -f "$dir"/etc/ssh/ssh_host_* && mkdir -p "$dir/etc/systemd/system/ssh.service.d"
  printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    > "$dir/etc/systemd/system/ssh.service.d/host-keys.conf"
  ssh-keygen -q -t ed25519 -N "" -C "hurtig-vm" -f "$image/id_ed25519"
  install -d -m 700 "$dir/root/.ssh" && install -m 600 "$image/id_ed25519.pub" "$dir/root/.ssh/authorized_keys"
  rm -f "$dir/etc/machine-id" && touch "$dir/etc/machine-id"  # generated at first boot
}

build() {
  local t image dir
  t=$(tag) image=$CACHE/$t
  if [ -f "$image/root.raw" ]; then log "$t: present"; echo "$image"; return; fi
  command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install -y debootstrap"; exit 1; }
  rm -rf "$image" && mkdir -p "$image"
  dir=$(mktemp -d /tmp/hurtig-vm-root.XXXXXX)
  local t0=$SECONDS
  log "$t: debootstrap $SUITE from $MIRROR"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$dir" "$MIRROR" > "$image.log" 2>&1 \
    || { tail -20 "$image.log" >&2; rm -rf "$dir"; exit 1; }
  configure "$dir" "$image" || { rm -rf "$dir"; exit 1; }
  cp -L "$dir/vmlinuz" "$image/vmlinuz" && cp -L "$dir/initrd.img" "$image/initrd.img"
  mkfs.ext4 -q -L root -d "$dir" "$image/root.raw.tmp" "$DISK_SIZE" >&2
  rm -rf "$dir" && mv "$image/root.raw.tmp" "$image/root.raw" && rm -f "$image.log"
  find "$CACHE" -mindepth 1 -maxdepth 1 -type d -name "$SUITE-*" ! -name "$t" -exec rm -rf {} +  # older builds
  log "$t: built in $((SECONDS - t0)) s"
  echo "$image"
}

qemu_bin() {
  command -v qemu-system-x86_64 || { log "qemu missing: apt-get install -y qemu-system-x86 qemu-utils"; exit 1; }
}

accel() { # [image directory, default: build's]
  case ${HURTIG_VM_ACCEL:-auto} in
    kvm|tcg) echo "$HURTIG_VM_ACCEL"; return ;;
  esac
  if ! { [ -c /dev/kvm ] && : 2>/dev/null < /dev/kvm > /dev/kvm; }; then echo tcg; return; fi
  # Boot the kernel with nothing to run: it panics at once on its missing init; a working
  # KVM reaches that in about a second.
  local image=${1:-} out
  [ -n "$image" ] || image=$(build)
  out=$(mktemp)
  timeout "${HURTIG_VM_KVM_PROBE_S:-3}" "$(qemu_bin)" -accel kvm -m 256 -nographic -no-reboot \
    -kernel "$image/vmlinuz" -append "console=ttyS0 panic=-1 rdinit=/nonexistent root=/dev/null" \
    > "$out" 2>&1 || true
  if grep -q -E 'Kernel panic|Run /' "$out"; then echo kvm; else echo tcg; fi
  rm -f "$out"
}

start() { # name port
  local name=$1 port=$2 image dir=$RUN/$1 a
  if [ -f "$dir/qemu.pid" ] && kill -0 "$(cat "$dir/qemu.pid")" 2>/dev/null; then log "$name: running"; return; fi
  image=$(build) a=$(accel "$image")
  mkdir -p "$dir"
  # the image stays as built: the VM writes to an overlay; its data disk is new and empty.
  # cache=unsafe: a throw-away VM's disks need not survive the host (a guest reboot keeps them)
  [ -f "$dir/root.qcow2" ] || qemu-img create -q -f qcow2 -F raw -b "$image/root.raw" "$dir/root.qcow2"
  [ -f "$dir/data.raw" ] || qemu-img create -q -f raw "$dir/data.raw" "$DATA_SIZE"
  # TCG with one vCPU: with two (thread=multi), one boot in six died in a kernel Oops on
  # int3 (the kernel patching its code while the other vCPU runs it)
  local accel_opts=(-accel kvm -cpu host -smp "${HURTIG_VM_CPUS:-2}")
  [ "$a" = tcg ] && accel_opts=(-accel tcg -cpu max -smp "${HURTIG_VM_CPUS:-1}")
  "$(qemu_bin)" -name "$name" "${accel_opts[@]}" -m "$MEMORY" \
    -display none -serial "file:$dir/console.log" -monitor none -daemonize -pidfile "$dir/qemu.pid" \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 net.ifnames=0" \
    -drive "file=$dir/root.qcow2,format=qcow2,if=virtio,cache=unsafe" \
    -drive "file=$dir/data.raw,format=raw,if=virtio,discard=unmap,cache=unsafe" \
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0
  log "$name: started with $a on 127.0.0.1:$port (console: $dir/console.log)"
  echo "$a"
}

stop() { # name
  local dir=$RUN/$1 pid
  if [ -f "$dir/qemu.pid" ]; then
    pid=$(cat "$dir/qemu.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  [ -f "$dir/console.log" ] && mv "$dir/console.log" "$RUN/$1.console.log"  # the last run's, to read
  rm -rf "$dir"
}

cmd=${1:-}; shift || true
case "$cmd" in
  build) build ;;
  tag) tag ;;
  accel) accel ;;
  start) [ $# -eq 2 ] || { log "usage: $0 start NAME PORT"; exit 2; }; start "$@" ;;
  stop) [ $# -eq 1 ] || { log "usage: $0 stop NAME"; exit 2; }; stop "$1" ;;
  *) log "usage: $0 build | tag | accel | start NAME PORT | stop NAME"; exit 2 ;;
esac
