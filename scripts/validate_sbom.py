#!/usr/bin/env python3
"""Validate CycloneDX JSON files against the official schema of their specVersion
(the schema files shipped inside cyclonedx-python-lib). Exit 1 naming the first error.

    python scripts/validate_sbom.py sbom.cdx.json ...
"""
import json
import sys

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

VERSIONS = {"1.5": SchemaVersion.V1_5, "1.6": SchemaVersion.V1_6}

failed = False
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    spec = json.loads(text).get("specVersion")
    if spec not in VERSIONS:
        print(f"{path}: specVersion {spec!r} is not 1.5 or 1.6")
        failed = True
        continue
    error = JsonStrictValidator(VERSIONS[spec]).validate_str(text)
    if error is not None:
        print(f"{path}: INVALID against CycloneDX {spec}: {error}")
        failed = True
    else:
        print(f"{path}: valid CycloneDX {spec}")
sys.exit(1 if failed else 0)
