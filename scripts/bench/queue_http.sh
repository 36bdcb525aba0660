#!/usr/bin/env bash
# End-to-end HTTP queue benchmark: starts real `echopilot serve` processes (SQLite: one;
# PostgreSQL: BENCH_REPLICAS, default 2, when ECHOPILOT_TEST_PG_URL is set), enqueues
# BENCH_JOBS echo jobs from BENCH_CLIENTS concurrent clients through
# POST /api/v1/queue/enqueue (one job per request, group-committed on the server), then
# BENCH_HTTP_BATCH jobs per request through POST /api/v1/queue/enqueue/batch; waits until
# all succeeded, prints req/s, jobs/s and enqueue→start latency percentiles. Figures are
# printed, never asserted.
#   scripts/bench/queue_http.sh                 # dev profile
#   PROFILE=release scripts/bench/queue_http.sh # optimized binary
# Knobs: BENCH_JOBS (5000; batch mode ×10) BENCH_CLIENTS (64) BENCH_CONCURRENCY (64)
#        BENCH_REPLICAS (2) BENCH_HTTP_BATCH (100; 0 = skip) BENCH_HTTP_SINGLE (1; 0 = skip)
set -euo pipefail
cd "$(dirname "$0")/../.."
flags=()
[ "${PROFILE:-dev}" = release ] && flags+=(--release)
exec cargo test "${flags[@]}" --test queue_e2e bench_http -- --ignored --nocapture
