#!/usr/bin/env bash
# Analytics ingestion over HTTP on SQLite: events/s with several concurrent clients posting
# batches of 1,000 events, each workload on a fresh server (same binary, same settings).
# Events are timed as a 50,000 events/s stream would be (batch k of the run is sent at
# k × 20 ms) and carry UUIDv7 ids made at the event's time, as telemetry.js makes them:
#   live      each event happened within 1 s before its batch was sent (browser clients
#             flush after 1 s of quiet);
#   delayed   within 60 s before (clients that batch for a minute, retries);
#   backfill  the worst case: random UUIDv4 ids and times spread over the last 24 h (an
#             import of old events), which scatters every index write;
#   peer      the queue's batch enqueue (POST /api/v1/queue/enqueue/batch, 1,000 jobs a
#             request), measured the same way.
#   scripts/bench/analytics_ingest.sh [clients=4] [batches_per_client=50]
# Uses $CARGO_TARGET_DIR (default target/) for the release binary. The roller is slowed to
# once an hour so the figure is ingestion alone (rollups are measured by analytics_usage.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIENTS=${1:-4}; BATCHES=${2:-50}
cargo build --release -q -p echopilot
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/echopilot
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
SRV=; DIR=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; [ -n "$DIR" ] && rm -rf "$DIR"' EXIT
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
for WORKLOAD in live delayed backfill peer; do
  DIR=$(mktemp -d)
  PORT=$((20000 + RANDOM % 20000))
  ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=100000 \
    ECHOPILOT_RATE_LIMIT_BURST=100000 ECHOPILOT_LOG_LEVEL=warn ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS=3600 \
    "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
  SRV=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
  python3 - "$PORT" "$KEY" "$CLIENTS" "$BATCHES" "$WORKLOAD" <<'PY'
import http.client, json, os, sys, threading, time, uuid
port, key, clients, batches, workload = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
now = int(time.time() * 1000)

def uuid7(ms):
    # As telemetry.js: 48 bits of Unix ms, version 7, variant 10, random bits.
    b = bytearray(ms.to_bytes(6, "big") + os.urandom(10))
    b[6] = (b[6] & 0x0F) | 0x70; b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))

def events_body(c, b):
    evs = []
    for i in range(1000):
        if workload in ("live", "delayed"):
            # Batch k = b × clients + c of a 50k/s stream is sent at now + 20 k ms; each
            # event happened up to 1 s (live) or 60 s (delayed) before.
            sent = now + (b * clients + c) * 20
            spread = 1_000 if workload == "live" else 60_000
            ts = sent - (i * 7919 + c * 104729) % spread
            uid = uuid7(ts)
        else:
            ts = now - (i * 997 + c * 7) % 86_400_000
            uid = str(uuid.uuid4())
        evs.append({"uuid": uid, "event": ["visit", "click", "signup", "search"][i % 4],
                    "distinct_id": f"user-{(c * 7919 + b * 31 + i) % 5000}", "ts": ts,
                    "properties": {"feature": ["search", "billing", "reports", "alerts"][i % 4], "n": i}})
    return json.dumps({"events": evs}).encode()

def jobs_body(c, b):
    return json.dumps({"jobs": [{"kind": "echo", "payload": {"c": c, "b": b, "i": i}} for i in range(1000)]}).encode()

path, make, per_item = (("/api/v1/queue/enqueue/batch", jobs_body, False) if workload == "peer"
                        else ("/api/v1/analytics/events", events_body, True))
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
n = clients * batches * 1000
what = {"live": "analytics live    ", "delayed": "analytics delayed ", "backfill": "analytics backfill",
        "peer": "peer queue batch  "}[workload]
unit = "jobs" if workload == "peer" else "events"
print(f"{what}: {n} {unit} in {dt:.2f} s = {n / dt:,.0f} {unit}/s ({clients} clients, 1000/request)")
PY
  kill $SRV; wait $SRV 2>/dev/null || true; SRV=
  rm -rf "$DIR"; DIR=
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
