#!/usr/bin/env bash
# Run botfleet on this machine: install what is missing, then `botfleet up` (arguments are
# passed on, e.g. scripts/run.sh --port 9000). Needs Python 3.11+ (and Node 20 for the panel).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/venv.sh

ensure_venv server
build_frontend
exec .venv/bin/botfleet up "$@"
