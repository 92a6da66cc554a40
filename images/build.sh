#!/usr/bin/env bash
# Registry-free image builder: Debian's archive -> debootstrap -> docker import -> Dockerfile.
#
#   images/build.sh build [FLAVOUR...]   build what is missing (default: all flavours)
#   images/build.sh tag FLAVOUR          print the image reference of FLAVOUR
#   images/build.sh save FLAVOUR FILE    build if needed, then save it gzipped (for nodes)
#   images/build.sh list                 print every flavour
#   images/build.sh client-tag FLAVOUR PKG...        the reference of a client's image
#   images/build.sh client-save FLAVOUR FILE PKG...  build it if needed and save it
#
# A client's image is one layer FROM the runtime flavour: the client's own Python packages
# (PKG: a directory with a pyproject.toml, or a .whl file) pip-installed into the runtime's
# environment (images/client/Dockerfile); its tag hashes the runtime's tag and the packages.
#
# A flavour is <kind>-<suite>: debian-systemd-trixie, debian-systemd-bookworm,
# debian-slim-trixie, rabbitmq-trixie (a broker for the Python tests) and runtime-trixie
# (the API and worker image: the package in src/ on the slim base) and chromium-trixie
# (headless Chromium for the dashboard's browser test). The tag of every image carries a hash of the inputs that built it
# (this script, the flavour's Dockerfile, the suite, the mirror), so a change to any input
# forces a rebuild and a stale cached image can never hide a broken build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MIRROR=${HURTIG_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${HURTIG_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
PREFIX=${HURTIG_IMAGE_PREFIX:-hurtig}
FLAVOURS=(debian-systemd-trixie debian-systemd-bookworm debian-slim-trixie rabbitmq-trixie runtime-trixie chromium-trixie)

log() { printf '[images] %s\n' "$*" >&2; }

inputs_hash() { # stdin: the inputs; the mirrors count as inputs too
  { cat; printf '%s\n' "$MIRROR" "$SECURITY_MIRROR"; } | sha256sum | cut -c1-12
}

split() { # flavour -> "kind suite"
  local f=$1
  case "$f" in
    debian-systemd-*|debian-slim-*|rabbitmq-*|runtime-*|chromium-*) echo "${f%-*} ${f##*-}" ;;
    *) log "unknown flavour '$f' (known: ${FLAVOURS[*]})"; exit 2 ;;
  esac
}

rootfs_tag() { # suite
  echo "$PREFIX/debian-rootfs:$1-$( (cat "$here/build.sh"; echo "$1") | inputs_hash)"
}

root=$(cd "$here/.." && pwd)

extra_inputs() { # kind: files beyond the Dockerfile that go into the image
  case "$1" in
    runtime)
      cat "$here/runtime/requirements.txt" "$root/pyproject.toml"
      (cd "$root" && find src -type f -name '*.py' | LC_ALL=C sort | xargs cat)
      image_tag "debian-slim-$2" ;;
  esac
}

image_tag() { # flavour
  local kind suite
  read -r kind suite < <(split "$1")
  echo "$PREFIX/$kind:$suite-$( (cat "$here/build.sh" "$here/$kind/Dockerfile"; echo "$suite"; extra_inputs "$kind" "$suite") | inputs_hash)"
}

check_packages() { # PKG...: each a project directory or a wheel
  [ $# -gt 0 ] || { log "no client package given"; exit 2; }
  local p
  for p in "$@"; do
    [ -f "$p/pyproject.toml" ] || [[ -f "$p" && "$p" == *.whl ]] \
      || { log "$p: neither a directory with a pyproject.toml nor a .whl file"; exit 2; }
  done
}

client_tag() { # flavour PKG...
  local flavour=$1 p; shift
  check_packages "$@"
  echo "$PREFIX/client:${flavour##*-}-$( {
    cat "$here/build.sh" "$here/client/Dockerfile"; image_tag "$flavour"
    for p in "$@"; do
      echo "${p##*/}"
      if [ -d "$p" ]; then
        (cd "$p" && find . -type f -not -path '*/__pycache__/*' -not -path '*/.*' | LC_ALL=C sort \
          | while read -r f; do echo "$f"; cat "$f"; done)
      else cat "$p"; fi
    done
  } | inputs_hash)"
}

build_client() { # flavour PKG...: FROM the runtime image, the packages installed
  local flavour=$1 tag context p n=0; shift
  tag=$(client_tag "$flavour" "$@")
  if have "$tag"; then log "$tag: present"; return; fi
  build_image "$flavour"
  context=$(mktemp -d /tmp/hurtig-client.XXXXXX)
  mkdir "$context/packages"
  for p in "$@"; do
    n=$((n + 1))
    if [ -d "$p" ]; then
      cp -r "$p" "$context/packages/$n"  # without caches and dot-files (.git, .venv, ...)
      find "$context/packages/$n" -mindepth 1 \( -name __pycache__ -o -name '.*' \) -prune -exec rm -rf {} +
    else mkdir "$context/packages/$n" && cp "$p" "$context/packages/$n/"; fi
  done
  cp "$here/client/Dockerfile" "$context/"
  cp "${HURTIG_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}" "$context/build-ca.crt"
  local t0=$SECONDS
  log "$tag: docker build FROM $(image_tag "$flavour")"
  docker build --quiet --network host --build-arg "BASE=$(image_tag "$flavour")" \
    --label "org.hurtig.inputs-hash=${tag##*-}" -t "$tag" "$context" > "/tmp/hurtig-build-client.log" 2>&1 \
    || { cat "/tmp/hurtig-build-client.log" >&2; rm -rf "$context"; exit 1; }
  rm -rf "$context"
  log "$tag: built in $((SECONDS - t0)) s"
}

save() { # image file: docker save, gzipped, into file (atomically)
  docker save "$1" | gzip -1 > "$2.tmp" && mv "$2.tmp" "$2"
}

have() { docker image inspect "$1" >/dev/null 2>&1; }

build_rootfs() { # suite
  local suite=$1 tag dir
  tag=$(rootfs_tag "$suite")
  if have "$tag"; then log "$tag: present"; return; fi
  command -v debootstrap >/dev/null || { log "debootstrap missing: apt-get install -y debootstrap"; exit 1; }
  dir=$(mktemp -d /tmp/hurtig-rootfs.XXXXXX)
  log "$tag: debootstrap $suite from $MIRROR"
  local t0=$SECONDS
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$MIRROR" \
    > "$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; rm -rf "$dir" "$dir.log"; exit 1; }
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -c . | docker import \
    --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$tag" >/dev/null
  rm -rf "$dir" "$dir.log"
  log "$tag: imported in $((SECONDS - t0)) s"
}

build_image() { # flavour
  local flavour=$1 kind suite tag
  read -r kind suite < <(split "$flavour")
  tag=$(image_tag "$flavour")
  if have "$tag"; then log "$tag: present"; return; fi
  local base context=$here/$kind
  if [ "$kind" = runtime ]; then
    # FROM the slim base, with the package sources and the build host's CA bundle
    build_image "debian-slim-$suite"
    base=${HURTIG_RUNTIME_BASE:-$(image_tag "debian-slim-$suite")}
    context=$(mktemp -d /tmp/hurtig-runtime.XXXXXX)
    cp -r "$here/runtime/." "$root/pyproject.toml" "$context/"
    cp -r "$root/src" "$context/src"
    find "$context/src" -name '__pycache__' -prune -exec rm -rf {} +
    cp "${HURTIG_BUILD_CA:-/etc/ssl/certs/ca-certificates.crt}" "$context/build-ca.crt"
  else
    build_rootfs "$suite"
    base=$(rootfs_tag "$suite")
  fi
  local t0=$SECONDS
  log "$tag: docker build"
  docker build --quiet --network host \
    --build-arg "BASE=$base" --build-arg "SUITE=$suite" --build-arg "MIRROR=$MIRROR" \
    --build-arg "SECURITY_MIRROR=$SECURITY_MIRROR" \
    --label "org.hurtig.inputs-hash=${tag##*-}" \
    -t "$tag" "$context" > "/tmp/hurtig-build-$flavour.log" 2>&1 \
    || { cat "/tmp/hurtig-build-$flavour.log" >&2; exit 1; }
  [ "$context" = "$here/$kind" ] || rm -rf "$context"
  log "$tag: built in $((SECONDS - t0)) s"
}

cmd=${1:-build}; shift || true
case "$cmd" in
  build) for f in "${@:-${FLAVOURS[@]}}"; do build_image "$f"; done ;;
  tag) [ $# -eq 1 ] || { log "usage: $0 tag FLAVOUR"; exit 2; }; image_tag "$1" ;;
  save) # save FLAVOUR FILE: build if needed, then docker save | gzip into FILE (for nodes)
    [ $# -eq 2 ] || { log "usage: $0 save FLAVOUR FILE"; exit 2; }
    build_image "$1"; save "$(image_tag "$1")" "$2" ;;
  client-tag) [ $# -ge 2 ] || { log "usage: $0 client-tag FLAVOUR PKG..."; exit 2; }; client_tag "$@" ;;
  client-save) # client-save FLAVOUR FILE PKG...
    [ $# -ge 3 ] || { log "usage: $0 client-save FLAVOUR FILE PKG..."; exit 2; }
    flavour=$1 file=$2; shift 2
    build_client "$flavour" "$@"; save "$(client_tag "$flavour" "$@")" "$file" ;;
  list) printf '%s\n' "${FLAVOURS[@]}" ;;
  *) log "usage: $0 build [FLAVOUR...] | tag FLAVOUR | save FLAVOUR FILE | list | client-tag | client-save"; exit 2 ;;
esac
