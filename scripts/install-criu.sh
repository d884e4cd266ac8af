#!/usr/bin/env bash
# CRIU 4.1.1 built from Debian trixie's source tarball with the patches in scripts/patches (SANDBOX-FACTS.md
# §1): the SO_PASSCRED fix for kernels >= 6.16, and dump/restore/lazy restore of sandboxes in a user
# namespace whose network namespace is the host's (criu-4.1.1-userns.patch). Built once into
# $FORKSPACE_CACHE/criu (outside the clone); the build is keyed on the patch set, so a cache built with
# other patches (or a link to a system criu, which has none of them) is rebuilt once, in place.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
need_root "installing CRIU"
patches=("$FORKSPACE_ROOT"/scripts/patches/criu-4.1.1-*.patch)
bin=$FORKSPACE_CACHE/criu/bin/criu
stamp=$bin.patchset
rundir=/dev/shm/criu-run
patchset=$(cat "${patches[@]}" | sha256sum | cut -d' ' -f1)

criu_ok() { # $1 = criu binary; true when its version is >= 4.1 and `criu check` passes
  local v
  v=$("$1" --version 2>/dev/null | sed -n 's/^Version: *//p')
  [ -n "$v" ] || return 1
  printf '4.1\n%s\n' "$v" | sort -V -C || return 1
  "$1" check >/dev/null 2>&1
}

mkdir -p "$rundir"
if [ -x "$bin" ] && [ ! -L "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$patchset" ] && criu_ok "$bin"; then
  log "criu $("$bin" --version | sed -n 's/^Version: *//p') at $bin (patch set ${patchset:0:12})"; exit 0
fi
[ -e "$bin" ] && log "criu at $bin lacks the current patch set (${patchset:0:12}): rebuilding it"

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
for p in "${patches[@]}"; do
  log "  applying $(basename "$p")"
  patch -d "$build" -p1 < "$p" >&2
done
make -C "$build" -j"$(nproc)" criu RUNDIR="$rundir" >"$src/build.log" 2>&1 ||
  { tail -n 30 "$src/build.log" >&2; die "criu build failed; full log in $src/build.log"; }
criu_ok "$build/criu/criu" || { "$build/criu/criu" check >&2 || true; die "built criu fails 'criu check' on this kernel"; }
mkdir -p "$(dirname "$bin")"
# A rename, so a criu that runs right now keeps its binary and the next one gets the new build whole.
install -m 0755 "$build/criu/criu" "$bin.new"
mv -f "$bin.new" "$bin"
echo "$patchset" > "$stamp"
log "criu $("$bin" --version | sed -n 's/^Version: *//p') at $bin (patch set ${patchset:0:12})"
