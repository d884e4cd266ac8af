#!/usr/bin/env bash
# The main job: sets up (idempotently), starts the agent and runtime, and runs code in sandboxes of the
# embedded default environment (python, Python 3.11), printing how long each step took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
bash "$here/setup.sh"
cd "$FORKSPACE_ROOT"
fs=./bin/forkspace
ms() { date +%s%3N; }

log "starting the agent and forkspace-rt"
$fs agent start

log "run: print(sum(range(10))) in a fresh python sandbox"
t0=$(ms); $fs run --env python -- python3 -c 'print(sum(range(10)))'; t1=$(ms)
echo "   took $((t1 - t0)) ms end to end through the CLI (node start included)"

log "run: the sandbox is its own machine (pid 1, own hostname, no host network)"
$fs run --env python -- sh -c 'echo "pid $$ on $(hostname)"; cat /proc/net/dev | tail -n +3 | cut -d: -f1'

log "run: limits hold (64 MiB memory, the allocation of 512 MiB is OOM-killed)"
$fs run --env python --memory 64M -- python3 -c 'b = bytearray(512 << 20)' || echo "   exit status $? (137 = SIGKILL by the OOM killer)"

log "run: 20 ephemeral sandboxes in a row"
t0=$(ms); for _ in $(seq 20); do $fs run --env busybox -- true; done; t1=$(ms)
echo "   $(( (t1 - t0) / 20 )) ms per run through the CLI; see bench/ for the API latency"

echo
echo "Snapshots, restore and branching (checkpoint -> branch) arrive with issue 3; the runtime already"
echo "ships CRIU $(dist/forkspace-rt check 2>/dev/null | sed -n 's/.*"criu": "\(.*\)".*/\1/p')."
