#!/usr/bin/env bash
# Build the release binary and write the project's own SBOM beside it:
# $TARGET/release/echopilot.cdx.json (CycloneDX 1.5: the packages of Cargo.lock and the
# lockfiles under tests/js, matched against OSV_DIR when given), validated against the
# official schema (scripts/cyclonedx_venv.sh). Run it for every release; ship the SBOM
# with the binary.
#
#   scripts/release_sbom.sh                 # OSV_DIR=<dir> to list known vulnerabilities too
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}
cargo build --release --bin echopilot
OUT=$TARGET/release/echopilot.cdx.json
# Only the lockfiles matter for the SBOM: scan the workspace root's and tests/js'.
"$TARGET/release/echopilot" security scan Cargo.lock $(find tests/js -name package-lock.json -o -name yarn.lock 2>/dev/null) \
  --config /dev/null --format sbom --output "$OUT" --fail-on never --osv-dir "${OSV_DIR:-/nonexistent}"
PY=$(scripts/cyclonedx_venv.sh)
"$PY" scripts/validate_sbom.py "$OUT"
echo "SBOM: $OUT ($(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['components']))" "$OUT") components)"
