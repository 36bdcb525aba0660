#!/usr/bin/env bash
# Latency of the ops protocol and telemetry routes, sequential requests from curl against a
# fresh server: dry-run + confirm of tail_logs (100 lines) and of pause_queue/resume_queue,
# GET /ops/telemetry, GET /ops/telemetry/history, GET /system-health. Prints p50/p95/max ms.
#   scripts/bench/ops.sh [iterations=200]
# BIN=path/to/echopilot to use a given build (default: target/release/echopilot, built here).
# With ECHOPILOT_DATABASE_URL=postgres://… set, the server uses PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200}
if [ -z "${BIN:-}" ]; then cargo build --release -q; BIN=./target/release/echopilot; fi
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
URL=http://127.0.0.1:$PORT
ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=1000000 \
  ECHOPILOT_RATE_LIMIT_BURST=1000000 \
  "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "$URL/readyz" >/dev/null && break; sleep 0.1; done

stats() { # name, then one latency (s) per line on stdin
  sort -n | awk -v name="$1" '{a[NR]=$1*1000} END {
    p50=a[int(NR*0.50)>0?int(NR*0.50):1]; p95=a[int(NR*0.95)>0?int(NR*0.95):1];
    printf "%-44s n=%-5d p50=%7.2f ms  p95=%7.2f ms  max=%7.2f ms\n", name, NR, p50, p95, a[NR] }'
}
post() { curl -s -o /tmp/ops_bench_body -w '%{time_total}\n' -H "X-Dash-Key: $KEY" \
  -H 'content-type: application/json' "$URL/api/v1/ops/command" -d "$1"; }
plan_id() { sed -n 's/.*"plan_id":"\([^"]*\)".*/\1/p' /tmp/ops_bench_body; }

cycle() { # verb, args → dry-run time on fd 3, confirm time on fd 4
  local t1 t2 pid
  t1=$(post "{\"verb\":\"$1\",\"args\":$2}")
  pid=$(plan_id)
  t2=$(post "{\"verb\":\"$1\",\"args\":$2,\"confirm\":true,\"plan_id\":\"$pid\"}")
  grep -q '"audit_seq"' /tmp/ops_bench_body || { echo "confirm failed: $(cat /tmp/ops_bench_body)" >&2; exit 1; }
  echo "$t1" >&3; echo "$t2" >&4
}

echo "== $N iterations each, sequential, $(nproc) cores shared with the server ($BIN)"
for verb in tail_logs pause_queue; do
  : > /tmp/ops_bench_dry; : > /tmp/ops_bench_conf
  for _ in $(seq 1 "$N"); do
    if [ $verb = tail_logs ]; then
      cycle tail_logs '{"area":"server","lines":100}' 3>>/tmp/ops_bench_dry 4>>/tmp/ops_bench_conf
    else
      cycle pause_queue '{}' 3>>/tmp/ops_bench_dry 4>>/tmp/ops_bench_conf
      cycle resume_queue '{}' 3>>/tmp/ops_bench_dry 4>>/tmp/ops_bench_conf
    fi
  done
  stats "POST /ops/command dry-run ($verb)" < /tmp/ops_bench_dry
  stats "POST /ops/command confirm ($verb)" < /tmp/ops_bench_conf
done
for path in /api/v1/ops/telemetry "/api/v1/ops/telemetry/history?minutes=60" /api/v1/system-health /api/v1/ops/verbs; do
  for _ in $(seq 1 "$N"); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "X-Dash-Key: $KEY" "$URL$path"
  done | stats "GET $path"
done
rm -f /tmp/ops_bench_body /tmp/ops_bench_dry /tmp/ops_bench_conf
