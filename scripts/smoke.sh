#!/usr/bin/env bash
# Smoke test: hit every route of a running EchoPilot backend and fail on any unexpected status.
#   scripts/smoke.sh http://127.0.0.1:8080 "$KEY"      (KEY: a superadmin key)
# Mutations it makes are small and labelled "smoke" (a readonly key in tenant smoke, …).
set -uo pipefail
URL=${1:?usage: smoke.sh URL KEY}; KEY=${2:?usage: smoke.sh URL KEY}
FAILS=0; N=0
check() { # METHOD PATH EXPECTED [JSON BODY] [extra curl args…]; AS_KEY=… overrides the key
  local method=$1 path=$2 want=$3 body=${4:-}; shift 4 2>/dev/null || shift $#
  local args=(-s -o /tmp/smoke.body -w '%{http_code}' -X "$method" -H "X-Dash-Key: ${AS_KEY:-$KEY}")
  [ -n "$body" ] && args+=(-H 'content-type: application/json' --data "$body")
  local got; got=$(curl "${args[@]}" "$@" "$URL$path")
  N=$((N+1))
  if [ "$got" != "$want" ]; then
    FAILS=$((FAILS+1)); echo "FAIL $method $path: got $got, want $want: $(head -c 300 /tmp/smoke.body)"
  else
    echo "ok   $method $path → $got"
  fi
}
jq_get() { python3 -c "import json,sys; print(json.load(open('/tmp/smoke.body'))$1)"; }

# Public
check GET /healthz 200
check GET /readyz 200
check GET /metrics 200
check GET /api/v1/openapi.json 200
# Auth and conventions
check GET /api/v1/status/summary 200
check GET /api/status/summary 200
AS_KEY=wrong check GET /api/v1/status/summary 401
check GET /api/v1/nope 404
# Keys and tenants
check POST /api/v1/keys 201 '{"role":"readonly","tenant":"smoke","name":"smoke test"}'
KID=$(jq_get "['id']")
check GET /api/v1/keys 200
check GET /api/v1/tenants 200
check POST /api/v1/keys 422 '{"role":"nobody","tenant":"smoke"}'
check POST /api/v1/keys 400 '{"role":"readonly","tenant":"smoke","bogus":1}'
check DELETE "/api/v1/keys/$KID" 200
check DELETE /api/v1/keys/key_doesnotexist 404
# Audit
check GET /api/v1/audit/chain 200
check GET "/api/v1/audit/records?limit=5" 200
check GET "/api/v1/audit/receipt/0" 200
check GET "/api/v1/audit/consistency?from=1&to=1" 200
check GET /api/v1/audit/verify 200
check POST /api/v1/audit/heads 201
check GET /api/v1/audit/heads 200
check GET "/api/v1/audit/heads?limit=0" 422
# Areas append their routes below (queue, self-heal, jobs, alerts, marketplace, dr, ops, telemetry).
# Queue (diagnostic kinds; tenant default)
check POST /api/v1/queue/enqueue 201 '{"kind":"echo","payload":{"smoke":true}}'
JID=$(jq_get "['id']")
check GET "/api/v1/queue/jobs/$JID" 200
check GET "/api/v1/queue/jobs?limit=5" 200
check GET /api/v1/queue/health 200
check POST /api/v1/queue/enqueue 422 '{"kind":"no_such_kind","payload":{}}'
check POST /api/v1/queue/enqueue/batch 201 '{"jobs":[{"kind":"echo","payload":1},{"kind":"echo","payload":2,"idempotency_key":"smoke-b"}]}'
check POST /api/v1/queue/enqueue/batch 422 '{"jobs":[{"kind":"echo","payload":1},{"kind":"no_such_kind","payload":1}]}'
check POST /api/v1/queue/enqueue/batch 422 '{"jobs":[]}'
check POST /api/v1/queue/enqueue/batch 400 '{"jobs":[{"kind":"echo","payload":1,"bogus":1}]}'
check POST "/api/v1/queue/jobs/$JID/retry" 409
check GET /api/v1/queue/jobs/999999999 404
check POST /api/v1/queue/pause 200
check POST /api/v1/queue/resume 200
check POST /api/v1/queue/dlq/purge 200
# Self-heal
check GET /api/v1/selfheal/remediations 200
check GET /api/v1/selfheal/history 200
check POST /api/v1/selfheal/run 200
# Scheduler (run-now of the harmless heartbeat; stop then start again at once)
check GET /api/v1/automations/status 200
check POST /api/v1/jobs/scheduler_tick/run 202 '{}'
check POST /api/v1/jobs/no_such_job/run 404 '{}'
check GET "/api/v1/jobs/runs?job=scheduler_tick&limit=5" 200
check GET "/api/v1/jobs/runs?limit=0" 422
check GET "/api/v1/jobs/runs/run_nosuchrun0/ledger" 404
check POST /api/v1/automations/stop 200 '{}'
check POST /api/v1/automations/start 200 '{}'
# Alerts (a malformed test request: checks the route without paging anyone)
check GET "/api/v1/alerts?limit=5" 200
check POST /api/v1/alerts/test 400 '{"bogus":1}'

# Marketplace (per-tenant modules; turns selfheal off for tenant smoke-m, then on again)
check GET /api/v1/marketplace/list 200
check POST /api/v1/keys 201 '{"role":"admin","tenant":"smoke-m","name":"smoke marketplace"}'
MKEY=$(jq_get "['key']")
AS_KEY=$MKEY check POST /api/v1/marketplace/toggle 200 '{"module":"selfheal","enabled":false,"reason":"smoke test"}'
AS_KEY=$MKEY check GET /api/v1/selfheal/history 404
check GET /api/v1/selfheal/history 200
AS_KEY=$MKEY check POST /api/v1/marketplace/toggle 200 '{"module":"selfheal","enabled":true,"reason":"smoke test done"}'
AS_KEY=$MKEY check GET /api/v1/selfheal/history 200
check POST /api/v1/marketplace/toggle 422 '{"module":"queue","enabled":false,"reason":"core"}'
check POST /api/v1/marketplace/toggle 422 '{"module":"nope","enabled":false,"reason":"x"}'
check POST /api/v1/marketplace/toggle 400 '{"module":"alerts","enabled":false}'
AS_KEY=wrong check POST /api/v1/marketplace/toggle 401 '{"module":"alerts","enabled":false,"reason":"x"}'
check POST /api/v1/ops/command 200 '{"verb":"toggle_module","args":{"module":"alerts","enabled":false},"confirm":false}'

# Disaster recovery (fleet-level; SMOKE_DR=409 against a server without a [dr] key).
check GET /api/v1/dr/backups 200
check GET /api/v1/dr/verify 200
check POST /api/v1/dr/backups "${SMOKE_DR:-202}"
check POST /api/v1/dr/backups 400 '{"bogus":'
check POST /api/v1/dr/verify 422 '{"keep":3}'
DR_PLAN=200; [ "${SMOKE_DR:-202}" = 409 ] && DR_PLAN=409
check POST /api/v1/ops/command "$DR_PLAN" '{"verb":"verify_dr","args":{},"confirm":false}'
check POST /api/v1/keys 201 '{"role":"admin","tenant":"smoke-dr","name":"smoke dr"}'
DKEY=$(jq_get "['key']")
AS_KEY=$DKEY check GET /api/v1/dr/backups 403
AS_KEY=$DKEY check POST /api/v1/dr/verify 403
AS_KEY=wrong check GET /api/v1/dr/verify 401

# Security scanner (fleet-level scans; reports belong to the system tenant)
check POST /api/v1/security/scan 202
SCAN_REPORT=$(jq_get "['report_id']")
check GET /api/v1/security/status 200
check GET /api/v1/security/reports/latest 200
check GET "/api/v1/security/reports?limit=5" 200
check GET "/api/v1/security/reports?limit=0" 422
check GET "/api/v1/security/reports?limit=abc" 400
check GET /api/v1/security/reports/scan_doesnotexist 404
# The body is optional; only configured targets, no unknown members.
check POST /api/v1/security/scan 202 '{"git_history":false}'
check POST /api/v1/security/scan 422 '{"paths":["/etc"]}'
check POST /api/v1/security/scan 422 '{"bogus":true}'
check POST /api/v1/security/scan 400 '{"paths":'
check POST /api/v1/ops/command 200 '{"verb":"run_scan","args":{},"confirm":false}'
check POST /api/v1/keys 201 '{"role":"operator","tenant":"smoke-sec","name":"smoke security"}'
SKEY=$(jq_get "['key']")
AS_KEY=$SKEY check POST /api/v1/security/scan 403
AS_KEY=$SKEY check GET "/api/v1/security/reports/$SCAN_REPORT" 404
AS_KEY=wrong check GET /api/v1/security/reports/latest 401

# Ops commands and telemetry
check GET /api/v1/ops/verbs 200
check GET "/api/v1/ops/logs?area=server&lines=5" 200
check GET "/api/v1/ops/logs?area=security&level=warn&q=denied" 200
check GET "/api/v1/ops/logs?area=nope" 422
check GET "/api/v1/ops/logs?level=loud" 400
AS_KEY=wrong check GET /api/v1/ops/logs 401
check POST /api/v1/ops/command 200 '{"verb":"tail_logs","args":{"area":"server","lines":5},"confirm":false}'
PLAN=$(jq_get "['plan_id']")
check POST /api/v1/ops/command 200 "{\"verb\":\"tail_logs\",\"args\":{\"area\":\"server\",\"lines\":5},\"confirm\":true,\"plan_id\":\"$PLAN\"}"
check POST /api/v1/ops/command 400 '{"verb":"no_such_verb","args":{},"confirm":false}'
check POST /api/v1/ops/command 409 '{"verb":"tail_logs","args":{},"confirm":true,"plan_id":"plan_doesnotexist"}'
check GET /api/v1/ops/telemetry 200
check GET "/api/v1/ops/telemetry/history?minutes=60" 200
check GET "/api/v1/ops/telemetry/history?minutes=0" 422
check GET /api/v1/system-health 200

# Analytics (events for tenant smoke-a through a publishable ingest key; usage; a funnel)
check GET /js/telemetry.js 200
ETAG=$(curl -sI "$URL/js/telemetry.js" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
check GET /js/telemetry.js 304 '' -H "If-None-Match: $ETAG"
check POST /api/v1/keys 201 '{"role":"ingest","tenant":"smoke-a","name":"smoke publishable"}'
PKEY=$(jq_get "['key']")
AS_KEY=$PKEY check POST /api/v1/analytics/events 200 '{"events":[{"uuid":"smoke-1","event":"visit","distinct_id":"smoke-user"},{"event":""}]}'
AS_KEY=$PKEY check GET /api/v1/analytics/usage 403
AS_KEY=$PKEY check GET /api/v1/status/summary 403
AS_KEY=$PKEY check POST /api/v1/analytics/events 403 '{"events":[{"event":"x","distinct_id":"u"}]}' -H 'X-Tenant-Id: smoke-other'
AS_KEY=wrong check POST /api/v1/analytics/events 401 '{"events":[{"event":"x","distinct_id":"u"}]}'
check POST /api/v1/analytics/events 422 '{"events":[]}'
check POST /api/v1/analytics/events 400 '{"events":[],"bogus":1}'
check GET /api/v1/analytics/usage 200
check GET "/api/v1/analytics/usage?interval=week&limit=5" 200
check GET /api/analytics/usage 200
check GET "/api/v1/analytics/usage?from=nope" 422
check POST /api/v1/analytics/funnels 200 '{"name":"smoke","steps":["visit","signup"],"window_secs":3600}'
check POST /api/v1/analytics/funnels 422 '{"name":"smoke","steps":["visit"],"window_secs":3600}'
check GET /api/v1/analytics/funnels 200
check GET /api/v1/analytics/funnels/smoke 200
check GET /api/v1/analytics/funnels/nope 404
check POST /api/v1/analytics/rollup 200 '{"from":"2026-12-01","to":"2026-12-01"}'
check POST /api/v1/analytics/rollup 422 '{"from":"2026-12-02","to":"2026-12-01"}'
# AI data lake (events, analytics, redaction rules; the proxy's checks run before it calls any upstream)
check POST /api/v1/ai/events 201 '{"model":"smoke-model","prompt":"smoke test for smoke@example.com","response":"ok","tokens_in":3,"tokens_out":1,"latency_ms":5,"status":"ok","feature":"smoke"}'
check POST /api/v1/ai/events/batch 201 '{"events":[{"model":"smoke-model","prompt":"smoke batch","response":"","tokens_in":1,"tokens_out":0,"latency_ms":2,"status":"error","error":"smoke failure"}]}'
check POST /api/v1/ai/events 422 '{"model":"smoke-model","prompt":"","response":"","tokens_in":-1,"tokens_out":0,"latency_ms":1,"status":"ok"}'
check POST /api/v1/ai/events 400 '{"model":"smoke-model"}'
check POST /api/v1/ai/events/batch 422 '{"events":[]}'
check GET "/api/v1/ai/events?limit=5" 200
check GET "/api/v1/ai/events?status=error" 200
check GET /api/v1/ai/analytics 200
check GET "/api/v1/ai/analytics?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z" 422
check GET /api/v1/ai/redaction 200
check POST /api/v1/keys 201 '{"role":"admin","tenant":"smoke-ai","name":"smoke ai"}'
AIKEY=$(jq_get "['key']")
AS_KEY=$AIKEY check PUT /api/v1/ai/redaction 200 '{"disabled":["phone"],"extra":[{"name":"smoke_id","pattern":"SMOKE-[0-9]{4}"}]}'
AS_KEY=$AIKEY check PUT /api/v1/ai/redaction 422 '{"disabled":["nope"],"extra":[]}'
AS_KEY=$AIKEY check PUT /api/v1/ai/redaction 200 '{"disabled":[],"extra":[]}'
check POST /api/v1/ai/proxy/v1/chat/completions 422 '{"messages":[]}'
check POST /api/v1/ai/proxy/v1/embeddings 422 '{"input":"smoke"}'
AS_KEY=wrong check GET /api/v1/ai/analytics 401

# Compliance: a webhook signed like a Standard Webhooks sender when SMOKE_WEBHOOK_SECRET
# (whsec_…) is one of the server's [compliance.webhook_secrets]; the evidence bundle,
# checked with `echopilot evidence verify` (SMOKE_ECHOPILOT, default echopilot on PATH);
# GDPR for a subject nobody has.
sign_hook() { python3 -c 'import hmac,hashlib,base64,sys; k=base64.b64decode(sys.argv[1][6:]); print(base64.b64encode(hmac.new(k, ("%s.%s.%s" % tuple(sys.argv[2:5])).encode(), hashlib.sha256).digest()).decode())' "$@"; }
WH_TS=$(date +%s); WH_BODY='{"type":"smoke.test","data":{"ok":true}}'
if [ -n "${SMOKE_WEBHOOK_SECRET:-}" ]; then
  WH_ID="smoke-$(date +%s%N)"; WH_SIG=$(sign_hook "$SMOKE_WEBHOOK_SECRET" "$WH_ID" "$WH_TS" "$WH_BODY")
  check POST /api/v1/compliance/webhook 200 "$WH_BODY" -H "webhook-id: $WH_ID" -H "webhook-timestamp: $WH_TS" -H "webhook-signature: v1,$WH_SIG"
  check POST /api/v1/compliance/webhook 401 "$WH_BODY" -H "webhook-id: $WH_ID" -H "webhook-timestamp: $WH_TS" -H "webhook-signature: v1,$WH_SIG"
  OLD_TS=$((WH_TS - 600)); OLD_SIG=$(sign_hook "$SMOKE_WEBHOOK_SECRET" "$WH_ID-old" "$OLD_TS" "$WH_BODY")
  check POST /api/v1/compliance/webhook 401 "$WH_BODY" -H "webhook-id: $WH_ID-old" -H "webhook-timestamp: $OLD_TS" -H "webhook-signature: v1,$OLD_SIG"
fi
check POST /api/v1/compliance/webhook 401 "$WH_BODY" -H "webhook-id: smoke-bad" -H "webhook-timestamp: $WH_TS" -H "webhook-signature: v1,c21va2U="
check POST /api/v1/compliance/webhook 401 "$WH_BODY"
check GET "/api/v1/compliance/hooks?limit=5" 200
check GET "/api/v1/compliance/hooks?limit=0" 422
TODAY=$(date -u +%F)
check POST /api/v1/compliance/evidence/export 200 "{\"from\":\"$TODAY\",\"to\":\"$TODAY\"}"
if command -v "${SMOKE_ECHOPILOT:-echopilot}" >/dev/null; then
  cp /tmp/smoke.body /tmp/smoke-evidence.zip; N=$((N+1))
  if "${SMOKE_ECHOPILOT:-echopilot}" evidence verify /tmp/smoke-evidence.zip >/tmp/smoke.verify 2>&1; then
    echo "ok   echopilot evidence verify → OK"
  else
    FAILS=$((FAILS+1)); echo "FAIL echopilot evidence verify: $(head -c 300 /tmp/smoke.verify)"
  fi
fi
check POST /api/v1/compliance/evidence/export 422 '{"from":"2026-12-02","to":"2026-12-01"}'
check POST /api/v1/compliance/evidence/export 422 '{"from":"nope","to":"2026-12-01"}'
check POST /api/v1/compliance/evidence/export 400 '{"from":"2026-12-01"}'
check GET "/api/v1/gdpr/export?subject=smoke-nobody" 200
check DELETE "/api/v1/gdpr/delete?subject=smoke-nobody" 200
check GET /api/v1/gdpr/export 400
check GET "/api/v1/gdpr/export?subject=" 422
check POST /api/v1/keys 201 '{"role":"operator","tenant":"smoke-c","name":"smoke compliance"}'
CKEY=$(jq_get "['key']")
AS_KEY=$CKEY check GET "/api/v1/compliance/hooks" 200
AS_KEY=$CKEY check GET "/api/v1/gdpr/export?subject=smoke-nobody" 403
AS_KEY=$CKEY check POST /api/v1/compliance/evidence/export 403 "{\"from\":\"$TODAY\",\"to\":\"$TODAY\"}"
AS_KEY=wrong check DELETE "/api/v1/gdpr/delete?subject=smoke-nobody" 401

echo
echo "$((N-FAILS)) passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
