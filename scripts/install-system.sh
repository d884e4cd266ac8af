#!/usr/bin/env bash
# Debian packages the runtime, its tests and its benchmarks need. Idempotent: apt-get skips what is installed.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root "installing system packages"
pkgs=(
  # the sandbox runtime
  busybox-static debootstrap debian-archive-keyring iproute2 nftables btrfs-progs xfsprogs util-linux
  # CRIU 4.1.1 build dependencies (SANDBOX-FACTS.md §1.2)
  libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev libnl-3-dev libprotobuf-c-dev
  libprotobuf-dev pkgconf protobuf-c-compiler protobuf-compiler uuid-dev python3-protobuf make gcc libc6-dev
  xz-utils ca-certificates curl
  # SSH into sandboxes: a static dropbear built with musl (install-dropbear.sh); the ssh client and ssh-keygen
  musl-tools bzip2 openssh-client
  # benchmark baselines
  bubblewrap
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || apt-get update >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] ||
  die "cargo is missing: install Rust with rustup (https://rustup.rs) and re-run"
log "system packages present"
