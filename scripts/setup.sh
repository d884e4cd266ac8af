#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root) to run and test Forkspace. Idempotent: each step skips work
# already done, and every cache lives outside the clone (/var/cache/forkspace, /var/lib/forkspace/envs).
#   system packages -> CRIU 4.1.1 (patched) -> dropbear (static, for SSH) -> Node 24 -> npm ci -> forkspace-rt (cargo) -> bundles
#   -> the busybox and default python environments
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
need_root "setup"
cd "$FORKSPACE_ROOT"

bash "$here/install-system.sh"
bash "$here/install-criu.sh"
bash "$here/install-dropbear.sh"
bash "$here/install-node.sh"
bash "$here/install-python-sdk.sh"
node_bin=$(forkspace_node)
export PATH="$(dirname "$node_bin"):$PATH"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error >&2
fi

log "building forkspace-rt (cargo, release)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FORKSPACE_CACHE/cargo-target}
cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
"$cargo" build --release --locked --quiet --manifest-path agent-native/Cargo.toml
mkdir -p dist
install -m 0755 "$CARGO_TARGET_DIR/release/forkspace-rt" dist/forkspace-rt

log "bundling the extension, agent and CLI (esbuild)"
node esbuild.mjs

env_dir=${FORKSPACE_ENV_DIR:-/var/lib/forkspace/envs}
for env in busybox python; do
  dist/forkspace-rt build-env "$env" --env-dir "$env_dir" >/dev/null
done
log "ready: $(dist/forkspace-rt --version), node $("$node_bin" --version), envs in $env_dir"
