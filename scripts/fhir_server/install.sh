#!/usr/bin/env bash
# Installs the loopback FHIR server used by tests/ingest/test_ingest_server.py (Medplum's FHIR router
# and in-memory repository, from the npm registry) into scripts/fhir_server/node_modules.
# Needs Node.js >= 20.19 (Debian: apt-get install nodejs npm).
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
