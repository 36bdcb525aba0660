#!/usr/bin/env bash
# Load test GET /api/v1/status/summary on a fresh release server and print wrk's latency
# distribution (p50/p99). Needs wrk (Debian: apt-get install wrk).
#   scripts/bench/status_summary.sh [connections=32] [seconds=20] [threads=2]
# With ECHOPILOT_DATABASE_URL=postgres://… set, the server uses PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-32}; SECS=${2:-20}; THREADS=${3:-2}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=1000000 \
  ECHOPILOT_RATE_LIMIT_BURST=1000000 ECHOPILOT_LOG_LEVEL=warn \
  ./target/release/echopilot serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "== GET /api/v1/status/summary, $CONNS connections, $THREADS wrk threads, ${SECS}s ($(nproc) cores shared with the server)"
wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -H "X-Dash-Key: $KEY" "http://127.0.0.1:$PORT/api/v1/status/summary"
