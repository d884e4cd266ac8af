#!/usr/bin/env bash
# The SSH server `forkspace ssh` starts inside sandboxes: dropbear, built statically against musl so one
# binary runs in every environment (busybox, and Debian from bullseye to trixie) without their libraries
# or NSS modules. Public-key authentication only (no password or PAM code is compiled in). Built once
# from Debian trixie's source tarball into $FORKSPACE_CACHE/dropbear (outside the clone), about 30 s.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root "building dropbear"
bin=$FORKSPACE_DROPBEAR
version=2025.89

if [ -x "$bin" ] && "$bin" -V 2>&1 | grep -q "v$version"; then
  log "dropbear $version at $bin"; exit 0
fi
command -v musl-gcc >/dev/null || die "musl-gcc is missing: run scripts/install-system.sh (package musl-tools)"
src=$FORKSPACE_CACHE/dropbear/src
apt_dir=$FORKSPACE_CACHE/dropbear/apt
mkdir -p "$src" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
tarball=$(ls "$src"/dropbear_$version.orig.tar.* 2>/dev/null | head -n1 || true)
if [ -z "$tarball" ]; then
  log "fetching dropbear $version source from Debian trixie"
  echo 'deb-src http://deb.debian.org/debian trixie main' > "$apt_dir/sources.list"
  apto=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache")
  apt-get "${apto[@]}" update -qq >&2
  (cd "$src" && apt-get "${apto[@]}" source --download-only dropbear >&2 2>/dev/null || true)
  tarball=$(ls "$src"/dropbear_$version.orig.tar.* 2>/dev/null | head -n1 || true)
  [ -n "$tarball" ] || die "could not download dropbear_$version.orig.tar.bz2 from Debian trixie (is deb.debian.org reachable?)"
fi
build=$src/dropbear-$version
rm -rf "$build"
tar -C "$src" -xf "$tarball"
cat > "$build/localoptions.h" <<'OPTIONS'
/* Keys only: the agent writes each sandbox's authorized_keys. */
#define DROPBEAR_SVR_PASSWORD_AUTH 0
#define DROPBEAR_SVR_PAM_AUTH 0
OPTIONS
log "building dropbear $version (static, musl; about 30 s)"
(
  cd "$build"
  CC=musl-gcc ./configure --enable-static --disable-zlib --disable-pam --disable-lastlog --disable-utmp \
    --disable-utmpx --disable-wtmp --disable-wtmpx --disable-syslog
  make -j"$(nproc)" PROGRAMS=dropbear STATIC=1
) >"$src/build.log" 2>&1 || { tail -n 30 "$src/build.log" >&2; die "dropbear build failed; full log in $src/build.log"; }
mkdir -p "$(dirname "$bin")"
install -m 0755 -s "$build/dropbear" "$bin"
"$bin" -V 2>&1 | grep -q "v$version" || die "the built dropbear does not run"
log "dropbear $version at $bin"
