# Shared paths and helpers for the setup, run and test scripts. Source it; do not execute it.
# Caches live outside the clone so that a fresh clone (and CI) reuses them.
FORKSPACE_CACHE=${FORKSPACE_CACHE:-/var/cache/forkspace}
FORKSPACE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
FORKSPACE_CRIU=${FORKSPACE_CRIU:-$FORKSPACE_CACHE/criu/bin/criu}
FORKSPACE_DROPBEAR=${FORKSPACE_DROPBEAR:-$FORKSPACE_CACHE/dropbear/bin/dropbear}

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || die "$1 needs root (it installs packages and runs the sandbox runtime). Re-run with sudo."
}

# Prints the path of a Node.js >= 22: the cached node@24 when setup installed one (no version probe, so
# the CLI starts fast), else the system node when it is new enough.
forkspace_node() {
  local cached=$FORKSPACE_CACHE/node24/node_modules/node/bin/node
  [ -x "$cached" ] && { echo "$cached"; return; }
  local sys
  sys=$(command -v node 2>/dev/null || true)
  if [ -n "$sys" ] && [ "$("$sys" --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/')" -ge 22 ] 2>/dev/null; then
    echo "$sys"; return
  fi
  return 1
}
