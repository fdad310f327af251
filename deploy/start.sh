#!/usr/bin/env bash
# Start a local TorchServe serving every archive in model_archives/ (built first if there is
# none), bound to 127.0.0.1 with token authorization. Extra arguments go to
# `stylekit serve start` (--port, --gpu, --models a,b, ...). Stop it with deploy/stop.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
STYLEKIT="${STYLEKIT:-.venv/bin/stylekit}"
if ! compgen -G "model_archives/*.mar" >/dev/null; then
  "$STYLEKIT" archive --all -o model_archives
fi
exec "$STYLEKIT" serve start --model-store model_archives "$@"
