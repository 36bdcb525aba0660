#!/usr/bin/env bash
# Queue drain against graphile-worker, side by side: runs the shared
# ../shared/bench/queue-vs-graphile-worker.sh RUNS times (each run drains N jobs with
# graphile-worker, then with EchoPilot, on the same PostgreSQL) and prints each run's
# figures, its ratio (ours / peer) and the machine load before it. Printed, never asserted.
#   cargo build --release --bin echopilot
#   scripts/bench/queue_vs_graphile.sh [N=50000] [REPLICAS=2] [SLOTS=256] [RUNS=3]
# BIN (default $CARGO_TARGET_DIR/release/echopilot or target/release/echopilot) and
# PEER_SCRIPT (default /work/shared/bench/queue-vs-graphile-worker.sh) override the paths.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-50000}; R=${2:-2}; C=${3:-256}; RUNS=${4:-3}
export BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/echopilot}
PEER_SCRIPT=${PEER_SCRIPT:-/work/shared/bench/queue-vs-graphile-worker.sh}
# The shared script times EchoPilot's drain while polling GET /queue/health every 50 ms,
# starting python3 for each poll; the peer's timed section polls nothing. Where python3
# is a pyenv shim, each start runs a dozen shell processes (measured with `perf record
# -a`: bash, python3 and pyenv took ~15 % of both cores during our drain). Put the real
# interpreter first on PATH so the harness costs what a plain python3 start costs.
# NO_SHIM_FIX=1 keeps PATH as it is.
if [ "${NO_SHIM_FIX:-0}" != 1 ]; then
  real_py=$(python3 -c 'import sys; print(sys.executable)')
  shim_dir=$(mktemp -d); trap 'rm -rf "$shim_dir"' EXIT
  ln -s "$real_py" "$shim_dir/python3"
  export PATH="$shim_dir:$PATH"
fi
for i in $(seq 1 "$RUNS"); do
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  out=$("$PEER_SCRIPT" "$N" "$R" "$C")
  peer=$(echo "$out" | sed -n 's/.*(\([0-9]*\) jobs\/s).*/\1/p' | sed -n 1p)
  ours=$(echo "$out" | sed -n 's/.*(\([0-9]*\) jobs\/s).*/\1/p' | sed -n 2p)
  echo "$out" | sed 's/^/  /'
  echo "run $i: N=$N replicas=$R slots=$C load(1/5/15 min)=$load peer=$peer ours=$ours ratio=$(echo "scale=2; $ours / $peer" | bc)"
done
