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
echo "   $(( (t1 - t0) / 20 )) ms per run through the CLI (a node process each); bench/ has the API latency"

log "checkpoint: a Python process counting in memory (and into /root/count) is snapshotted while it runs"
sbx=$($fs sandbox start --env python -- python3 -c '
import time
x = 0
while True:
    x += 1
    open("/root/count", "a").write(f"{x}\n")
    time.sleep(0.05)')
sleep 1
snap_line=$($fs snapshot "$sbx" --label demo)
snap=${snap_line%% *}
echo "   $sbx -> $snap_line"

log "branch: 4 running copies of $snap"
out=$($fs branch "$snap" -n 4)
echo "$out" | sed 's/^/   /'
branches=$(echo "$out" | grep -o '^sbx-[0-9a-f]*')
sleep 0.5
for b in $branches; do
  echo "   $b has counted to $($fs exec "$b" -- sh -c 'wc -l < /root/count') from the snapshot's value (the original: $($fs exec "$sbx" -- sh -c 'wc -l < /root/count'))"
done

log "merge: one branch writes a file, the other merges it in (files only; processes are not merged)"
set -- $branches
$fs exec "$1" -- sh -c 'echo "result from $(hostname)" > /root/result'
$fs diff "$1" "$2" | sed 's/^/   /'
$fs merge "$1" "$2" | sed 's/^/   /'
echo "   $2 now has: $($fs exec "$2" -- cat /root/result)"

log "the branch tree"
$fs tree | sed 's/^/   /'

for b in $sbx $branches; do $fs destroy "$b" >/dev/null; done
$fs snapshot rm "$snap" >/dev/null
echo
echo "done: the agent keeps running (forkspace agent stop --runtime stops it). Benchmarks: npm run bench."
