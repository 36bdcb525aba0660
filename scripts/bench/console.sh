#!/usr/bin/env bash
# Console: time to first frame and resident memory, measured on the real release binary
# in tmux against a live backend that has some queue activity.
#   scripts/bench/console.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v tmux >/dev/null || { echo "tmux not found" >&2; exit 1; }
cargo build --release -q
BIN=$PWD/target/release/echopilot
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
SRV=$!
trap 'tmux kill-session -t epbench 2>/dev/null || true; kill $SRV 2>/dev/null; wait $SRV 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
for i in $(seq 1 200); do
  curl -s -o /dev/null -H "X-Dash-Key: $KEY" -H 'content-type: application/json' \
    -d "{\"kind\":\"echo\",\"payload\":{\"bench\":$i}}" "http://127.0.0.1:$PORT/api/v1/queue/enqueue"
done
for run in 1 2 3 4 5; do
  tmux kill-session -t epbench 2>/dev/null || true
  python3 - "$BIN" "$PORT" "$KEY" <<'PY'
import subprocess, sys, time
bin_, port, key = sys.argv[1:]
t0 = time.monotonic()
subprocess.run(["tmux", "new-session", "-d", "-s", "epbench", "-x", "200", "-y", "50",
                f"{bin_} tui --url http://127.0.0.1:{port} --key {key}"], check=True)
while True:
    out = subprocess.run(["tmux", "capture-pane", "-t", "epbench", "-p"], capture_output=True, text=True).stdout
    if "EchoPilot OS" in out:
        break
    if time.monotonic() - t0 > 10:
        print("no frame within 10 s"); sys.exit(1)
    time.sleep(0.002)
print(f"first frame after {1000 * (time.monotonic() - t0):.0f} ms (includes tmux start and 2 ms polling)")
PY
done
sleep 10
PID=$(pgrep -f "echopilot tui --url http://127.0.0.1:$PORT" | head -n1)
echo "console RSS after 10 s live on the Queue data: $(grep VmRSS /proc/$PID/status)"
tmux send-keys -t epbench 3; sleep 3
echo "console RSS on the Queue tab: $(grep VmRSS /proc/$PID/status)"
