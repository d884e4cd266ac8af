#!/usr/bin/env bash
# The Python SDK's virtualenv: the system Python 3 (>= 3.10) with the exact versions of
# sdk/python/requirements-dev.txt (httpx, websockets, pytest, pytest-asyncio, mypy) from PyPI, in
# $FORKSPACE_CACHE/venv-sdk, outside the clone. The SDK itself is not installed into it: the venv is shared
# by every clone on the machine, so each run puts its own clone's sdk/python/src on PYTHONPATH
# (scripts/test-python-sdk.sh does). Idempotent: skipped while the requirements file is unchanged.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
venv=${FORKSPACE_SDK_VENV:-$FORKSPACE_CACHE/venv-sdk}
reqs=$FORKSPACE_ROOT/sdk/python/requirements-dev.txt
stamp=$venv/.forkspace-requirements
python=${FORKSPACE_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3) || die "python3 is missing: apt-get install python3 python3-venv"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$reqs" "$stamp"; then
  log "python SDK venv at $venv ($("$venv/bin/python" --version))"; exit 0
fi
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
  die "$python is $("$python" --version 2>&1); the Python SDK needs >= 3.10 (set FORKSPACE_PYTHON)"
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  need_root "installing python3-venv"
  log "apt-get install python3-venv"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || apt-get update >&2
  apt-get install -y -qq --no-install-recommends python3-venv >&2
fi
log "python SDK venv: $python -m venv $venv, then pip install -r sdk/python/requirements-dev.txt"
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" >&2 ||
  die "pip could not install $reqs into $venv (is PyPI reachable?)"
cp "$reqs" "$stamp"
log "python SDK venv at $venv ($("$venv/bin/python" --version))"
