#!/usr/bin/env bash
# Runs the Python SDK's pytest suite (unit tests, mypy --strict on the package, and the integration tests
# against a private agent + runtime, which need root) with this clone's sdk/python/src on PYTHONPATH.
# Ends with "python-sdk: N passed, N failed". Extra arguments go to pytest (e.g. -k stream, tests/unit).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
bash "$here/install-python-sdk.sh" || die "the Python SDK venv could not be set up"
venv=${FORKSPACE_SDK_VENV:-$FORKSPACE_CACHE/venv-sdk}
node_bin=$(forkspace_node) || die "no Node >= 22: run scripts/setup.sh"
export PATH="$(dirname "$node_bin"):$PATH"
cd "$FORKSPACE_ROOT/sdk/python"
export PYTHONPATH=$FORKSPACE_ROOT/sdk/python/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -p no:cacheprovider "${@:-tests}"
