#!/usr/bin/env bash
# Usage latency at scale on SQLite: a generator writes N realistic events straight into
# analytics_events (direct SQL, one tenant, 60 days, 20k users with a long tail, 12 event
# names, 6 features) and marks their days dirty; the release server then rolls them up (the
# time is printed) and GET /api/v1/analytics/usage (28 days, daily, with a signup funnel) is
# timed over 200 sequential requests after 20 warm-up ones: p50 / p95 / p99. Peer in the same
# run: GET /api/v1/status/summary (an existing read route) on the same server.
#   scripts/bench/analytics_usage.sh [events=1000000]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000000}
cargo build --release -q
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/echopilot
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
SRV=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
serve() {
  ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=100000 \
    ECHOPILOT_RATE_LIMIT_BURST=100000 ECHOPILOT_LOG_LEVEL=warn ECHOPILOT_ANALYTICS__ROLLUP_INTERVAL_SECS=1 \
    "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
  SRV=$!
  for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; exit 1
}
# First start creates the schema; stop, fill, start again.
serve
curl -sf -X POST -H "X-Dash-Key: $KEY" -H 'content-type: application/json' \
  -d '{"name":"signup","steps":["visit","signup","activate"],"window_secs":3600}' \
  "http://127.0.0.1:$PORT/api/v1/analytics/funnels" >/dev/null
kill $SRV; wait $SRV 2>/dev/null || true; SRV=
python3 - "$DIR/echopilot.db" "$N" <<'PY'
import random, sqlite3, sys, time, json
db, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=OFF")
now = int(time.time() * 1000); day = 86_400_000; today = now // day
names = ["visit", "pageview", "click", "search", "signup", "activate", "export", "share",
         "invite", "upgrade", "settings", "logout"]
weights = [30, 25, 20, 8, 4, 2, 3, 2, 1, 1, 3, 1]
features = ["search", "billing", "reports", "alerts", "onboarding", "export"]
t0 = time.monotonic()
rows = []
def flush():
    con.executemany("INSERT INTO analytics_events (tenant_id, uuid, event, distinct_id, ts, feature, properties, received_at) VALUES ('default',?,?,?,?,?,?,?)", rows)
    rows.clear()
for i in range(n):
    # A long tail of users: a few very active, most occasional.
    user = int(rng.paretovariate(1.2) * 50) % 20000
    ts = now - int(rng.random() ** 1.5 * 60 * day)
    ev = rng.choices(names, weights)[0]
    feat = features[user % 6] if ev in ("click", "search", "export", "settings") else None
    props = json.dumps({"feature": feat, "path": f"/p/{user % 97}"}) if feat else '{"path": "/"}'
    rows.append((f"gen-{i}", ev, f"user-{user}", ts, feat, props, now))
    if len(rows) == 50_000:
        flush()
flush()
con.executemany("INSERT INTO analytics_dirty_days (tenant_id, day, marked_at, generation) VALUES ('default', ?, ?, 1) ON CONFLICT DO NOTHING",
                [(d, now) for d in range(today - 61, today + 1)])
con.commit(); con.close()
print(f"generated {n:,} events in {time.monotonic() - t0:.1f} s")
PY
T0=$(date +%s.%N)
serve
until curl -sf -H "X-Dash-Key: $KEY" "http://127.0.0.1:$PORT/api/v1/analytics/usage" | grep -q '"complete":true'; do sleep 1; done
echo "rolled up in $(echo "$(date +%s.%N) - $T0" | bc) s (roller, from a cold start)"
python3 - "$PORT" "$KEY" <<'PY'
import http.client, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
def measure(path):
    ts = []
    for i in range(220):
        t = time.perf_counter()
        conn.request("GET", path, headers={"X-Dash-Key": key}); r = conn.getresponse(); r.read()
        assert r.status == 200, r.status
        if i >= 20: ts.append((time.perf_counter() - t) * 1000)
    ts.sort()
    return ts[len(ts) // 2], ts[int(len(ts) * 0.95)], ts[int(len(ts) * 0.99)]
u = measure("/api/v1/analytics/usage")
s = measure("/api/v1/status/summary")
print(f"usage   (28 days, tops, 1 funnel): p50 {u[0]:.2f} ms  p95 {u[1]:.2f} ms  p99 {u[2]:.2f} ms")
print(f"peer status/summary:               p50 {s[0]:.2f} ms  p95 {s[1]:.2f} ms  p99 {s[2]:.2f} ms")
print(f"ratio usage/summary p95: {u[1] / s[1]:.2f}")
PY
