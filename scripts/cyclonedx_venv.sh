#!/usr/bin/env bash
# Make (once) a Python venv holding cyclonedx-python-lib with its JSON validation extra:
# it ships the official CycloneDX JSON schemas, which scripts/validate_sbom.py checks an
# SBOM against. Prints the venv's python. Used by .ci/run (ECHOPILOT_CDX_PYTHON) and
# scripts/release_sbom.sh.
#
#   CDX_VENV=/path scripts/cyclonedx_venv.sh     # default $CARGO_TARGET_DIR/cyclonedx-venv
set -euo pipefail
CDX_VERSION=11.12.0
TARGET=${CARGO_TARGET_DIR:-target}
VENV=${CDX_VENV:-$TARGET/cyclonedx-venv}
if ! "$VENV/bin/python" -c "import cyclonedx.validation.json, importlib.metadata as m; assert m.version('cyclonedx-python-lib') == '$CDX_VERSION'" 2>/dev/null; then
  echo "== installing cyclonedx-python-lib $CDX_VERSION into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "cyclonedx-python-lib[json-validation]==$CDX_VERSION" >&2
fi
echo "$(cd "$VENV/bin" && pwd)/python"
