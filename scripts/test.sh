#!/usr/bin/env bash
# Sets up (idempotently) and runs every test suite: the runtime's Rust tests, the TypeScript type check
# and unit tests, the integration and security tests against the real runtime, and the extension in a real
# VS Code (code-server + Chromium). Each suite ends with a line "<suite>: N passed, N failed"; the script
# fails if any suite fails. `--only NAME[,NAME...]` runs just those suites (rust, typecheck, unit,
# unit-extension, integration, vsix, editor, editor-oldest).
set -uo pipefail
only=""
if [ "${1:-}" = "--only" ]; then only=",${2:?--only needs suite names},"; fi
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
  [ -z "$only" ] || [[ $only == *",$name,"* ]] || [[ $only == *",editor,"* && $name == vsix ]] || return 0
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

unit_extension() { # the extension's modules with `vscode` aliased to a stub (esbuild), under mocha
  node esbuild.mjs --tests && npx mocha --reporter test/reporter.js --reporter-option label=unit-extension 'out/unit-extension/*.test.js'
}

vsix=test-results/forkspace.vsix
editor() { # version, extra args: the extension-host suite and UI checks in code-server, driven by Chromium
  local version=$1; shift
  bash "$here/install-editor.sh" "$version" && node esbuild.mjs --tests &&
    node --import tsx test/e2e/run.ts --version "$version" --vsix "$vsix" "$@"
}

suite rust rust_tests
suite typecheck type_check
suite unit npx mocha --config test/.mocharc.unit.json
suite unit-extension unit_extension
suite integration npx mocha --config test/.mocharc.integration.json
suite sdk-ts npx mocha --config test/.mocharc.sdk-ts.json
suite scenarios npx mocha --config test/.mocharc.scenarios.json
suite python-sdk bash scripts/test-python-sdk.sh
suite vsix node --import tsx test/e2e/vsix.ts "$vsix"
# The newest VS Code runs everything; the oldest supported one (engines ^1.100.0) a smoke subset.
suite editor editor 4.139.1
suite editor-oldest editor 4.100.3 --smoke

if [ ${#failed[@]} -gt 0 ]; then
  printf '\033[1;31mfailed suites: %s\033[0m\n' "${failed[*]}" >&2
  exit 1
fi
log "all suites passed"
