#!/usr/bin/env bash
# CRIU >= 4.1 with the SO_PASSCRED fix (SANDBOX-FACTS.md §1). Uses the system criu only when it is >= 4.1 and
# `criu check` passes; otherwise builds 4.1.1 from Debian trixie's source tarball with the patch in
# recipes/criu, into $FORKSPACE_CACHE/criu (outside the clone), once.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root "installing CRIU"
patch_file=$FORKSPACE_ROOT/scripts/patches/criu-4.1.1-so_passcred-6.16.patch
bin=$FORKSPACE_CACHE/criu/bin/criu
rundir=/dev/shm/criu-run

criu_ok() { # $1 = criu binary; true when its version is >= 4.1 and `criu check` passes
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p')
  [ -n "$v" ] || return 1
  printf '4.1\n%s\n' "$v" | sort -V -C || return 1
  "$1" check >/dev/null 2>&1
}

mkdir -p "$rundir"
if [ -x "$bin" ] && criu_ok "$bin"; then
  log "criu $("$bin" --version | sed -n 's/^Version: *//p') at $bin"; exit 0
fi
if sys=$(command -v criu) && criu_ok "$sys"; then
  # The socket-option fix only matters on kernels >= 6.16; a system build may lack it, so use ours there.
  mkdir -p "$(dirname "$bin")"; ln -sf "$sys" "$bin"
  log "using system criu at $sys"; exit 0
fi

src=$FORKSPACE_CACHE/criu/src
apt_dir=$FORKSPACE_CACHE/criu/apt
mkdir -p "$src" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
tarball=$(ls "$src"/criu_4.1.1.orig.tar.* 2>/dev/null | head -n1 || true)
if [ -z "$tarball" ]; then
  log "fetching criu 4.1.1 source from Debian trixie"
  echo 'deb-src http://deb.debian.org/debian trixie main' > "$apt_dir/sources.list"
  apto=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache")
  apt-get "${apto[@]}" update -qq >&2
  # Only the orig tarball is needed; the .dsc may 404 on this mirror, which apt reports but does not need.
  (cd "$src" && apt-get "${apto[@]}" source --download-only criu >&2 || true)
  tarball=$(ls "$src"/criu_4.1.1.orig.tar.* 2>/dev/null | head -n1 || true)
  [ -n "$tarball" ] || die "could not download criu_4.1.1.orig.tar.xz from Debian trixie (is deb.debian.org reachable?)"
fi
build=$src/criu-4.1.1
rm -rf "$build"
tar -C "$src" -xf "$tarball"
log "patching and building criu 4.1.1 (about 30 s)"
patch -d "$build" -p1 < "$patch_file" >&2
make -C "$build" -j"$(nproc)" criu RUNDIR="$rundir" >"$src/build.log" 2>&1 ||
  { tail -n 30 "$src/build.log" >&2; die "criu build failed; full log in $src/build.log"; }
mkdir -p "$(dirname "$bin")"
install -m 0755 "$build/criu/criu" "$bin"
criu_ok "$bin" || { "$bin" check >&2 || true; die "built criu fails 'criu check' on this kernel"; }
log "criu $("$bin" --version | sed -n 's/^Version: *//p') at $bin"
