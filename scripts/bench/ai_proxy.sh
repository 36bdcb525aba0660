#!/usr/bin/env bash
# The recording proxy's added latency per call on SQLite: the same chat completion sent N
# times straight to a local fake OpenAI-compatible upstream (the named peer) and N times
# through POST /api/v1/ai/proxy/v1/chat/completions of the release server pointed at it,
# interleaved call by call on one keep-alive connection each, so both see the same machine
# load. Non-streamed (the proxy records the call before it answers) and streamed (SSE,
# 8 chunks + usage; time to first chunk and to the end). Prints p50 / p95 / p99 per path
# and the difference; the recorded event count is checked against the calls made.
#   scripts/bench/ai_proxy.sh [calls=2000]
# Uses $CARGO_TARGET_DIR (default target/) for the release binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-2000}
cargo build --release -q -p echopilot
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/echopilot
DIR=$(mktemp -d)
KEY="ep_$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
PORT=$((20000 + RANDOM % 20000))
UP_PORT=$((PORT + 1))
SRV=; UP=
trap '[ -n "$SRV" ] && kill $SRV 2>/dev/null; [ -n "$UP" ] && kill $UP 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"' EXIT
# The fake upstream: a fixed answer with usage; SSE in chunked encoding when asked.
python3 - "$UP_PORT" <<'PY' &
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ANSWER = json.dumps({"id": "chatcmpl-1", "model": "gpt-bench", "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris is the capital of France."}}],
    "usage": {"prompt_tokens": 14, "completion_tokens": 8}}).encode()
CHUNKS = [("data: " + json.dumps({"model": "gpt-bench", "choices": [{"delta": {"content": w + " "}}]}) + "\n\n").encode()
          for w in "Paris is the capital of France , madam".split()]
CHUNKS.append(("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 14, "completion_tokens": 8}}) + "\n\n").encode())
CHUNKS.append(b"data: [DONE]\n\n")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, and whole answers in one write: otherwise Nagle holds the body behind
    # the headers until the client's delayed ACK (40 ms), which is the fake's cost, not
    # the proxy's.
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        if body.get("stream"):
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\n\r\n")
            for c in CHUNKS:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(c), c)); self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n"); self.wfile.flush()
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(ANSWER), ANSWER))
ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
UP=$!
ECHOPILOT_CONFIG=/dev/null ECHOPILOT_BOOTSTRAP_KEY=$KEY ECHOPILOT_RATE_LIMIT_PER_SEC=100000 \
  ECHOPILOT_RATE_LIMIT_BURST=100000 ECHOPILOT_LOG_LEVEL=warn \
  ECHOPILOT_AI__UPSTREAM_BASE_URL="http://127.0.0.1:$UP_PORT/v1" ECHOPILOT_AI__UPSTREAM_API_KEY=sk-bench-not-a-secret \
  ECHOPILOT_AI__PRICES="gpt-bench=0.15/0.60" \
  "$BIN" serve --addr 127.0.0.1:$PORT --data-dir "$DIR" >/dev/null 2>&1 &
SRV=$!
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
python3 - "$PORT" "$UP_PORT" "$KEY" "$N" <<'PY'
import http.client, json, sys, time
port, up_port, key, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
proxy = http.client.HTTPConnection("127.0.0.1", port)
direct = http.client.HTTPConnection("127.0.0.1", up_port)
msgs = [{"role": "user", "content": "What is the capital of France? Answer in one line."}]
def call(conn, path, headers, stream):
    body = {"model": "gpt-bench", "messages": msgs}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json", **headers})
    r = conn.getresponse()
    first = None
    if stream:
        while True:
            line = r.readline()  # decoded from the chunked framing
            if first is None and line.startswith(b"data:"):
                first = time.perf_counter() - t0
            if not line or line.startswith(b"data: [DONE]"):
                r.read()
                break
    else:
        r.read()
    total = time.perf_counter() - t0
    assert r.status == 200, (path, r.status)
    return (first or total) * 1000, total * 1000
def q(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(len(xs) * p))]
PROXY = ("/api/v1/ai/proxy/v1/chat/completions", {"X-Dash-Key": key})
DIRECT = ("/v1/chat/completions", {"authorization": "Bearer sk-bench-not-a-secret"})
for stream in (False, True):
    res = {"direct": [], "proxy": []}
    for i in range(n + 50):
        for name, conn, (path, h) in (("direct", direct, DIRECT), ("proxy", proxy, PROXY)):
            v = call(conn, path, h, stream)
            if i >= 50:  # warm-up
                res[name].append(v)
    kind = "streamed" if stream else "plain   "
    for which, idx in ((("first chunk", 0),) if stream else ()) + (("total", 1),):
        d = [x[idx] for x in res["direct"]]; p = [x[idx] for x in res["proxy"]]
        print(f"{kind} {which:>11}: direct p50 {q(d,.5):6.2f} p95 {q(d,.95):6.2f} p99 {q(d,.99):6.2f} ms | "
              f"proxy p50 {q(p,.5):6.2f} p95 {q(p,.95):6.2f} p99 {q(p,.99):6.2f} ms | "
              f"added p50 {q(p,.5)-q(d,.5):+.2f} p95 {q(p,.95)-q(d,.95):+.2f} ms")
# Every proxied call was recorded (streamed ones when their stream ended).
deadline = time.time() + 30
want = 2 * (n + 50)
while True:
    proxy.request("GET", "/api/v1/ai/analytics?limit=1", headers={"X-Dash-Key": key})
    a = json.loads(proxy.getresponse().read())
    if a["totals"]["events"] >= want or time.time() > deadline:
        break
    time.sleep(0.2)
print(f"recorded {a['totals']['events']} of {want} proxied calls; errors {a['totals']['errors']}")
PY
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
