#!/usr/bin/env bash
# Stop the TorchServe that deploy/start.sh (or `stylekit serve start`) started, and every
# process it spawned. Extra arguments go to `stylekit serve stop` (--run-dir DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${STYLEKIT:-.venv/bin/stylekit}" serve stop "$@"
