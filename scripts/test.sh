#!/usr/bin/env bash
# Sets up (idempotently) and runs every test suite: the runtime's Rust tests, the TypeScript type check
# and unit tests, and the integration and security tests against the real runtime. Each suite ends with
# a line "<suite>: N passed, N failed"; the script fails if any suite fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
bash "$here/setup.sh" || die "setup failed"
cd "$FORKSPACE_ROOT"
node_bin=$(forkspace_node)
export PATH="$(dirname "$node_bin"):$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FORKSPACE_CACHE/cargo-target}
cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")

failed=()
suite() { # name, command...
  local name=$1; shift
  log "suite: $name"
  "$@" || failed+=("$name")
}

rust_tests() {
  local out
  out=$("$cargo" test --locked --manifest-path agent-native/Cargo.toml 2>&1)
  local rc=$?
  printf '%s\n' "$out" | grep -E '^test |panicked|error' >&2
  local passed failed_n
  read -r passed failed_n < <(printf '%s\n' "$out" |
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
         END { print p + 0, f + 0 }')
  echo "rust: ${passed:-0} passed, ${failed_n:-0} failed"
  return $rc
}

type_check() {
  if npx tsc --noEmit -p .; then echo "typecheck: 1 passed, 0 failed"; else echo "typecheck: 0 passed, 1 failed"; return 1; fi
}

suite rust rust_tests
suite typecheck type_check
suite unit npx mocha --config test/.mocharc.unit.json
suite integration npx mocha --config test/.mocharc.integration.json
suite sdk-ts npx mocha --config test/.mocharc.sdk-ts.json
suite scenarios npx mocha --config test/.mocharc.scenarios.json
suite python-sdk bash scripts/test-python-sdk.sh

if [ ${#failed[@]} -gt 0 ]; then
  printf '\033[1;31mfailed suites: %s\033[0m\n' "${failed[*]}" >&2
  exit 1
fi
log "all suites passed"
