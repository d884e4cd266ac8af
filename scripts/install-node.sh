#!/usr/bin/env bash
# Installs Node 24 LTS from the npm registry's `node@24` package into the cache when the system Node is older
# than 22 (Debian 12 ships Node 20, which is end-of-life and too old for helia, undici and chopsticks).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
if node_bin=$(forkspace_node); then
  log "node $("$node_bin" --version) at $node_bin"
  exit 0
fi
command -v npm >/dev/null || die "npm is missing; install Debian's npm (apt-get install npm) or a Node.js >= 22"
log "installing node@24 from the npm registry into $FORKSPACE_CACHE/node24"
mkdir -p "$FORKSPACE_CACHE/node24"
npm install --prefix "$FORKSPACE_CACHE/node24" --no-audit --no-fund --loglevel=error node@24 >&2
node_bin=$(forkspace_node) || die "node@24 installed but no node binary found under $FORKSPACE_CACHE/node24"
log "node $("$node_bin" --version) at $node_bin"
