#!/usr/bin/env bash
# Make sure a Docker engine answers (install docker.io from Debian's archive and start dockerd
# if none does) and that debootstrap (the image builder), the SSH client and qemu (the VM
# lane, molecule/vm) are installed.
# Quick when both are already there.
set -euo pipefail
# No arguments: --help (or --list) prints the comment above; anything else is refused.
case ${1:-} in
  "") ;;
  -h|--help|--list) sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 (no arguments; --help)" >&2; exit 2 ;;
esac
need=()
command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
# the full-stack scenario connects to its nodes over SSH, as production does
command -v ssh-keyscan >/dev/null 2>&1 || need+=(openssh-client)
# the VM lane boots a Debian VM (images/vm.sh): qemu's emulator, and qemu-img for its disks
# (without Recommends: no graphical front ends)
need_vm=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || need_vm+=(qemu-system-x86)
command -v qemu-img >/dev/null 2>&1 || need_vm+=(qemu-utils)
if [ $((${#need[@]} + ${#need_vm[@]})) -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "[docker] need root to install ${need[*]} ${need_vm[*]}" >&2; exit 1; }
  echo "[docker] installing ${need[*]} ${need_vm[*]} from Debian's archive"
  apt-get update -qq
  [ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [ ${#need_vm[@]} -eq 0 ] \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_vm[@]}" >/dev/null
fi
if docker info >/dev/null 2>&1; then
  echo "[docker] engine answers: $(docker version --format '{{.Server.Version}}')"
  exit 0
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl start docker
else
  echo "[docker] starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { echo "[docker] engine up: $(docker version --format '{{.Server.Version}}')"; exit 0; }
  sleep 1
done
echo "[docker] dockerd did not answer within 60 s; see /var/log/dockerd.log" >&2
exit 1
