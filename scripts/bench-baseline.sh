#!/usr/bin/env bash
# Builds forkspace-rt at git revision REV into
# $FORKSPACE_CACHE/bench-baseline/REV and prints the binary's path, for bench/isolation.ts:
#   BENCH_BASELINE_RT=$(scripts/bench-baseline.sh b2f033d) npm run bench:isolation
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
rev=$(git -C "$FORKSPACE_ROOT" rev-parse --short "${1:?usage: scripts/bench-baseline.sh REV}")
out=$FORKSPACE_CACHE/bench-baseline/$rev
if [ ! -x "$out/forkspace-rt" ]; then
  src=$(mktemp -d)
  trap 'git -C "$FORKSPACE_ROOT" worktree remove --force "$src" >/dev/null 2>&1 || rm -rf "$src"' EXIT
  git -C "$FORKSPACE_ROOT" worktree add --detach "$src" "$rev" >/dev/null 2>&1
  log "building forkspace-rt at $rev"
  cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
  CARGO_TARGET_DIR=$FORKSPACE_CACHE/bench-baseline/target "$cargo" build --release --locked --quiet --manifest-path "$src/agent-native/Cargo.toml" >&2
  mkdir -p "$out"
  install -m 0755 "$FORKSPACE_CACHE/bench-baseline/target/release/forkspace-rt" "$out/forkspace-rt"
fi
echo "$out/forkspace-rt"
