#!/usr/bin/env bash
# In-process queue benchmark (backend/benches/queue.rs): producers enqueue echo jobs in
# batches while worker pools drain them; prints jobs/s and enqueue→start latency.
# PostgreSQL runs too when ECHOPILOT_TEST_PG_URL is set (one pool, then BENCH_POOLS pools).
#   scripts/bench/queue_inprocess.sh                 # dev profile (what the docs' figures used)
#   PROFILE=release scripts/bench/queue_inprocess.sh # optimized build (cargo bench)
# Knobs: BENCH_JOBS BENCH_CONCURRENCY BENCH_BATCH BENCH_POOLS
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${PROFILE:-dev}" = release ]; then
  exec cargo bench -p echopilot-backend --features test-util --bench queue
else
  exec cargo test -p echopilot-backend --features test-util --bench queue
fi
