#!/usr/bin/env bash
# Analytics ingestion over HTTP on SQLite: events/s with several concurrent clients posting
# batches of 1,000 events (each a fresh uuid), side by side with the named peer measured in
# the same run on the same server: the queue's batch enqueue (POST
# /api/v1/queue/enqueue/batch, 1,000 jobs a request).
#   scripts/bench/analytics_ingest.sh [clients=4] [batches_per_client=50]
# Uses $CARGO_TARGET_DIR (default target/) for the release binary. The roller is slowed to
# once an hour so the figure is ingestion alone (rollups are measured by analytics_usage.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${1:-4}; BATCHES=${2:-50}
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/echopilot
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=100000 \
  ECHOPILOT_RATE_LIMIT_BURST=100000 ECHOPILOT_LOG_LEVEL=warn ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS=3600 \
  "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
SRV=$!
trap 'kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
python3 - "$PORT" "$KEY" "$CLIENTS" "$BATCHES" <<'PY'
import http.client, json, sys, threading, time, uuid
port, key, clients, batches = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
now = int(time.time() * 1000)

def events_body(c, b):
    return json.dumps({"events": [
        {"uuid": f"{c}-{b}-{i}-{uuid.uuid4().hex[:8]}", "event": ["visit", "click", "signup"][i % 3],
         "distinct_id": f"user-{(c * 7919 + b * 31 + i) % 5000}", "ts": now - (i * 997) % 86_400_000,
         "properties": {"feature": ["search", "billing", "reports", "alerts"][i % 4], "n": i}}
        for i in range(1000)]}).encode()

def jobs_body(c, b):
    return json.dumps({"jobs": [{"kind": "echo", "payload": {"c": c, "b": b, "i": i}} for i in range(1000)]}).encode()

def run(path, make, per_item):
    bodies = [[make(c, b) for b in range(batches)] for c in range(clients)]
    errors = []
    def client(c):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for body in bodies[c]:
            conn.request("POST", path, body, {"X-Dash-Key": key, "Content-Type": "application/json"})
            r = conn.getresponse(); data = r.read()
            if r.status not in (200, 201):
                errors.append((r.status, data[:200]))
            elif per_item and json.loads(data).get("created") != 1000:
                errors.append(("created", json.loads(data).get("created")))
    ts = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.monotonic()
    for t in ts: t.start()
    for t in ts: t.join()
    dt = time.monotonic() - t0
    if errors:
        print("errors:", errors[:3]); sys.exit(1)
    return clients * batches * 1000 / dt, dt

ev, dt_e = run("/api/v1/analytics/events", events_body, True)
jobs, dt_j = run("/api/v1/queue/enqueue/batch", jobs_body, False)
n = clients * batches * 1000
print(f"analytics ingest: {n} events in {dt_e:.2f} s = {ev:,.0f} events/s ({clients} clients, 1000/request)")
print(f"peer queue batch: {n} jobs   in {dt_j:.2f} s = {jobs:,.0f} jobs/s")
print(f"ratio analytics/queue: {ev / jobs:.2f}")
PY
