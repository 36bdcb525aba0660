#!/usr/bin/env bash
# Secret scanning against detect-secrets (PyPI), side by side on one seeded corpus in one
# run: throughput (MB of corpus per second of wall time, process start included) and
# recall on the seeded secrets (found = the tool reports the seeded file and line), plus
# the findings elsewhere (on noise lines) for each. Printed, never asserted.
#
#   cargo build --release --bin echopilot
#   scripts/bench/secrets_vs_detect_secrets.sh [SIZE_MB=20] [EVERY=400] [RUNS=3]
#
# BIN (default $CARGO_TARGET_DIR/release/echopilot or target/release/echopilot);
# DS_VENV (default /tmp/echopilot-detect-secrets-venv) holds detect-secrets.
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-20}; EVERY=${2:-400}; RUNS=${3:-3}
DS_VERSION=1.5.0
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/echopilot}
VENV=${DS_VENV:-/tmp/echopilot-detect-secrets-venv}
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin echopilot (or set BIN)" >&2; exit 1; }
if ! "$VENV/bin/detect-secrets" --version 2>/dev/null | grep -qx "$DS_VERSION"; then
  echo "== installing detect-secrets $DS_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "detect-secrets==$DS_VERSION"
fi
WORK=$(mktemp -d /tmp/secrets-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/corpus"
"$BIN" security seed-corpus "$WORK/corpus" --size-mb "$SIZE" --every "$EVERY" --seed 7 > "$WORK/seeded.json"
BYTES=$(du -sb "$WORK/corpus" | cut -f1)
echo "corpus: $(find "$WORK/corpus" -type f | wc -l) files, $((BYTES / 1048576)) MiB, $(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(len(s), 'seeded secrets of', len({x['rule'] for x in s}), 'rules')" "$WORK/seeded.json"); load $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"

now() { date +%s.%N; }
for i in $(seq 1 "$RUNS"); do
  for threads in 0 1; do
    t0=$(now)
    env ECHOPILOT_CONFIG=/dev/null ECHOPILOT_SECURITY__THREADS=$threads "$BIN" security scan "$WORK/corpus" \
      --format json --output "$WORK/ours-$threads.json" --fail-on never --osv-dir "$WORK/no-osv" 2>/dev/null
    t1=$(now)
    echo "$t0 $t1" > "$WORK/ours-$threads.time"
  done
  t0=$(now)
  (cd "$WORK/corpus" && "$VENV/bin/detect-secrets" scan --all-files . > "$WORK/ds.json")
  t1=$(now)
  echo "$t0 $t1" > "$WORK/ds.time"
  python3 - "$WORK" "$BYTES" "$i" <<'PY'
import json, sys
work, size, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seeded = {(s["file"], s["line"]) for s in json.load(open(f"{work}/seeded.json"))}
def secs(name):
    a, b = open(f"{work}/{name}.time").read().split()
    return float(b) - float(a)
def report(label, found, t):
    hit = len(seeded & found)
    other = len(found - seeded)
    print(f"run {run} {label:<26} {size / 1e6 / t:8.1f} MB/s  {t:7.2f} s  recall {hit}/{len(seeded)} = {hit / len(seeded):6.1%}  other findings {other}")
    return size / 1e6 / t, hit / len(seeded)
res = {}
for th, label in [("0", "echopilot (2 threads)"), ("1", "echopilot (1 thread)")]:
    r = json.load(open(f"{work}/ours-{th}.json"))
    found = {(s["file"], s["line"]) for s in r["secrets"]}
    res[th] = report(label, found, secs(f"ours-{th}"))
ds = json.load(open(f"{work}/ds.json"))
found = set()
for f, items in ds["results"].items():
    f = f[2:] if f.startswith("./") else f
    for it in items:
        found.add((f, it["line_number"]))
d = report(f"detect-secrets {ds.get('version', '')}", found, secs("ds"))
print(f"run {run} ratio: {res['0'][0] / d[0]:.1f}x (2 threads), {res['1'][0] / d[0]:.1f}x (1 thread); recall {res['0'][1]:.1%} vs {d[1]:.1%}")
PY
done
