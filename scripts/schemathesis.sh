#!/usr/bin/env bash
# Fuzz the whole OpenAPI document with schemathesis (PyPI): every operation, every check,
# the examples, coverage, fuzzing and stateful phases, a fixed seed and a bounded budget.
# Fails on any failure. Used by .ci/run after the tests.
#
#   scripts/schemathesis.sh                 # SQLite in a temp data dir
#   DATABASE_URL=postgres://… scripts/schemathesis.sh
#
# Knobs (env): ST_SEED (default 20261201), ST_MAX_EXAMPLES (per operation, default 40),
# ST_MAX_TIME (seconds for the whole run, default 240), BIN (the echopilot binary; default
# $CARGO_TARGET_DIR/debug/echopilot, built if absent), ST_VENV (where schemathesis is
# installed; default $CARGO_TARGET_DIR/schemathesis-venv), ST_REPORT (report dir).
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
SEED=${ST_SEED:-20261201}
MAX_EXAMPLES=${ST_MAX_EXAMPLES:-40}
MAX_TIME=${ST_MAX_TIME:-240}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$TARGET/debug/echopilot}
VENV=${ST_VENV:-$TARGET/schemathesis-venv}

if [ ! -x "$BIN" ]; then
  echo "== building $BIN"
  cargo build --bin echopilot
fi
if [ ! -x "$VENV/bin/schemathesis" ] || [ "$("$VENV/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $ST_VERSION" ]; then
  echo "== installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

WORK=$(mktemp -d)
REPORT=${ST_REPORT:-$WORK/report}
PID=
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  [ -n "${ST_REPORT:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

KEY="ep_$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
# A rate limit the fuzzer cannot reach: 429s would hide the answers under test.
env -u ECHOPILOT_DATABASE_URL ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY="$KEY" \
  ECHOPILOT_RATE_LIMIT_PER_SEC=100000 ECHOPILOT_RATE_LIMIT_BURST=100000 \
  ECHOPILOT_SERVER__AUTH_FAILURES_PER_MINUTE=1000000 ECHOPILOT_SERVER__AUTH_FAILURES_BURST=1000000 \
  ${DATABASE_URL:+ECHOPILOT_DATABASE_URL="$DATABASE_URL"} \
  "$BIN" serve --addr 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
URL=
for _ in $(seq 1 600); do
  URL=$(sed -n 's/^echopilot: listening on //p' "$WORK/stdout" | head -n1)
  [ -n "$URL" ] && break
  kill -0 "$PID" 2>/dev/null || { echo "FAIL: the server exited:"; tail -20 "$WORK/stderr"; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "FAIL: the server did not report its address"; exit 1; }
echo "== schemathesis $ST_VERSION against $URL (seed $SEED, ≤ $MAX_EXAMPLES examples per operation, ≤ ${MAX_TIME}s)"

# The configuration lives next to this script (schemathesis.toml): checks and phases.
START=$(date +%s)
set +e
"$VENV/bin/schemathesis" --config-file scripts/schemathesis.toml run "$URL/api/v1/openapi.json" \
  --url "$URL" \
  -H "X-Dash-Key: $KEY" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --max-time "$MAX_TIME" \
  --workers 2 \
  --request-timeout 30 \
  --report junit,ndjson --report-dir "$REPORT" 2>&1 | tee "$WORK/st.out"
RC=${PIPESTATUS[0]}
set -e
echo "== schemathesis exit $RC after $(( $(date +%s) - START )) s (report: $REPORT)"
# CPython 3.11's `ast` module can raise "SystemError: AST constructor recursion depth
# mismatch" when Hypothesis describes a strategy deep in a recursive draw on a worker
# thread; schemathesis reports it as a runtime error of the operation being generated (seen
# once in the coverage phase of POST /api/v1/analytics/events; not reproducible alone).
# It is the fuzzer's interpreter failing, not an API finding: a run whose every check
# passed and whose only errors are that crash counts as passed, and says so.
if [ "$RC" -ne 0 ] && [ -n "$(ls "$REPORT"/ndjson-*.ndjson 2>/dev/null)" ]; then
  read -r failed errors < <(python3 - "$REPORT" <<'PY'
import glob, json, sys
failed = errors = 0
for path in glob.glob(sys.argv[1] + "/ndjson-*.ndjson"):
    for line in open(path):
        event = json.loads(line)
        if event.get("ScenarioFinished", {}).get("status") == "failure":
            failed += 1
        if "NonFatalError" in event:
            errors += 1
print(failed, errors)
PY
)
  crashes=$(grep -c "SystemError: AST constructor recursion depth mismatch" "$WORK/st.out" || true)
  if [ "$failed" = 0 ] && [ "$errors" -gt 0 ] && [ "$crashes" -ge "$errors" ]; then
    echo "== schemathesis: 0 failures; $errors runtime error(s), each the CPython ast crash above (interpreter bug, not an API finding): passed"
    RC=0
  fi
fi
if [ "$RC" -ne 0 ]; then
  echo "--- server stderr (last 30 lines)"
  tail -30 "$WORK/stderr"
  exit "$RC"
fi
