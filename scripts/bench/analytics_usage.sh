#!/usr/bin/env bash
# Usage latency at scale on SQLite. A generator writes N realistic events straight into
# analytics_events and marks their days dirty (direct SQL: Python draws the *sessions*, SQLite
# expands them into events with one INSERT … SELECT, so 10M events take minutes, not hours);
# the release server then rolls them up (the time is printed) and GET
# /api/v1/analytics/usage (28 days, daily, tops, a signup funnel) is timed over 200
# sequential requests after 20 warm-up ones: p50 / p95 / p99 — the console's query, whose
# answer the roller keeps current — and over 20 ranges asked for the first time (each
# computed from the rollup tables: the cold cost). Peer in the same run: GET
# /api/v1/status/summary (an existing read route) on the same server.
#
# The data: one tenant, 60 days with growth (more recent days are busier), a weekday rhythm
# (weekends at 60 %) and a diurnal curve; a user pool of N/200 with a long tail (Pareto:
# a few very active users, most occasional); each session follows one of seven journeys
# (bounce, browse, search, signup → activate with drop-off, reports/export, settings →
# upgrade, invite/share) with realistic gaps between steps; properties.feature on the
# steps that use one. So DAU/WAU/MAU, tops and the funnel have realistic shapes.
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
import bisect, itertools, random, sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
t_start = time.monotonic()
DAY = 86_400_000
now = int(time.time() * 1000); today = now // DAY
# Journeys: (weight, [(event, feature, seconds after the previous step)]).
J = {
    "bounce":  (30, [("visit", None, 0)]),
    "browse":  (25, [("visit", None, 0), ("pageview", None, 20), ("pageview", None, 45),
                     ("click", "reports", 30), ("pageview", None, 60)]),
    "search":  (18, [("visit", None, 0), ("search", "search", 15), ("click", "search", 10),
                     ("search", "search", 40), ("click", "search", 12), ("pageview", None, 30)]),
    "signup":  (8,  [("visit", None, 0), ("pageview", None, 30), ("signup", "onboarding", 90),
                     ("activate", "onboarding", 600)]),
    "reports": (10, [("visit", None, 0), ("click", "reports", 20), ("export", "export", 120),
                     ("share", "reports", 60), ("export", "export", 300)]),
    "upgrade": (5,  [("visit", None, 0), ("settings", "billing", 40), ("click", "billing", 25),
                     ("upgrade", "billing", 90), ("logout", None, 30)]),
    "invite":  (4,  [("visit", None, 0), ("settings", "alerts", 30), ("invite", "alerts", 60),
                     ("share", "alerts", 20)]),
}
names = list(J)
jw = [J[k][0] for k in names]
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL"); con.execute("PRAGMA synchronous=OFF")
con.execute("PRAGMA cache_size=-512000"); con.execute("PRAGMA temp_store=MEMORY")
con.execute("CREATE TEMP TABLE steps (journey INTEGER, step INTEGER, event TEXT, feature TEXT, offset_ms INTEGER)")
for ji, k in enumerate(names):
    off = 0
    for si, (ev, feat, gap) in enumerate(J[k][1]):
        off += gap * 1000
        con.execute("INSERT INTO steps VALUES (?,?,?,?,?)", (ji, si, ev, feat, off))
# Users with a long tail of activity; sessions spread over 60 days with growth, weekday and
# diurnal rhythm; the signup journey drops off (35 % activate, 50 % stop after signup).
users = max(2000, n // 200)
cum = list(itertools.accumulate(rng.paretovariate(1.1) for _ in range(users)))
hours = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2]
hcum = list(itertools.accumulate(hours))
jcum = list(itertools.accumulate(jw))
sessions, total = [], 0
while total < n:
    d = int(60 * rng.random() ** 1.4)  # days ago, recent-heavy (growth)
    day = today - d
    if (day + 3) % 7 >= 5 and rng.random() < 0.4:  # 1970-01-01 was a Thursday
        continue
    hour = bisect.bisect(hcum, rng.random() * hcum[-1])
    start = day * DAY + hour * 3_600_000 + int(rng.random() * 3_600_000)
    if start > now - 3_600_000:
        continue
    ji = bisect.bisect(jcum, rng.random() * jcum[-1])
    length = len(J[names[ji]][1])
    if names[ji] == "signup":
        r = rng.random()
        length = 4 if r < 0.35 else 3 if r < 0.85 else 2
    elif names[ji] != "bounce":
        length = max(2, length - int(rng.random() * 2))
    length = min(length, n - total)
    user = bisect.bisect(cum, rng.random() * cum[-1])
    sessions.append((start, user, ji, length))
    total += length
sessions.sort()
t_sessions = time.monotonic() - t_start
con.execute("CREATE TEMP TABLE sessions (id INTEGER PRIMARY KEY, start INTEGER, user INTEGER, journey INTEGER, len INTEGER)")
con.executemany("INSERT INTO sessions (start, user, journey, len) VALUES (?,?,?,?)", sessions)
con.execute("""
INSERT INTO analytics_events (tenant_id, uuid, event, distinct_id, ts, feature, properties, received_at)
SELECT 'default', printf('g%010d-%d', s.id, st.step), st.event, 'user-' || s.user,
       s.start + st.offset_ms, st.feature,
       CASE WHEN st.feature IS NULL THEN json_object('path', '/p/' || (s.user % 97))
            ELSE json_object('feature', st.feature, 'path', '/p/' || (s.user % 97)) END,
       s.start + st.offset_ms
FROM sessions s JOIN steps st ON st.journey = s.journey AND st.step < s.len
ORDER BY s.id, st.step""")
inserted = con.execute("SELECT COUNT(*) FROM analytics_events").fetchone()[0]
con.execute("""INSERT INTO analytics_dirty_days (tenant_id, day, marked_at, generation)
SELECT DISTINCT 'default', ts / 86400000, ?, 1 FROM analytics_events WHERE true ON CONFLICT DO NOTHING""", (now,))
con.commit(); con.close()
print(f"generated {inserted:,} events ({len(sessions):,} sessions of {users:,} users, "
      f"avg {inserted / len(sessions):.1f} events/session) in {time.monotonic() - t_start:.1f} s "
      f"(sessions drawn in {t_sessions:.1f} s)")
PY
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) before the rollup"
T0=$(date +%s.%N)
serve
until curl -sf -H "X-Dash-Key: $KEY" "http://127.0.0.1:$PORT/api/v1/analytics/usage" | grep -q '"complete":true'; do sleep 1; done
echo "rolled up in $(echo "$(date +%s.%N) - $T0" | bc) s (roller, from a cold start)"
python3 - "$PORT" "$KEY" <<'PY'
import datetime, http.client, sys, time
port, key = int(sys.argv[1]), sys.argv[2]
conn = http.client.HTTPConnection("127.0.0.1", port)
def get(path):
    t = time.perf_counter()
    conn.request("GET", path, headers={"X-Dash-Key": key}); r = conn.getresponse(); r.read()
    assert r.status == 200, r.status
    return (time.perf_counter() - t) * 1000
def stats(ts):
    ts = sorted(ts)
    return ts[len(ts) // 2], ts[min(len(ts) - 1, int(len(ts) * 0.95))], ts[min(len(ts) - 1, int(len(ts) * 0.99))]
def measure(path, n=200, warm=20):
    ts = [get(path) for _ in range(n + warm)][warm:]
    return stats(ts)
# Warm: the default query (what the console asks), kept current by the roller.
u = measure("/api/v1/analytics/usage")
s = measure("/api/v1/status/summary")
# Cold: queries nobody asked before (other ranges), each computed from the rollup tables.
today = datetime.datetime.now(datetime.timezone.utc).date()
cold = [get(f"/api/v1/analytics/usage?from={today - datetime.timedelta(days=27 - k)}&to={today}")
        for k in range(1, 21)]
c = stats(cold)
print(f"usage warm (28 days, tops, 1 funnel; 200 requests): p50 {u[0]:.2f} ms  p95 {u[1]:.2f} ms  p99 {u[2]:.2f} ms")
print(f"usage cold (20 new ranges, computed from rollups):  p50 {c[0]:.2f} ms  p95 {c[1]:.2f} ms  max {max(cold):.2f} ms")
print(f"peer status/summary (200 requests):                 p50 {s[0]:.2f} ms  p95 {s[1]:.2f} ms  p99 {s[2]:.2f} ms")
print(f"ratio usage warm/summary p95: {u[1] / s[1]:.2f}")
PY
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
