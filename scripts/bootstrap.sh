#!/usr/bin/env bash
# Creates .venv (once) and installs stylekit with every extra, editable. Idempotent and quick
# when nothing changed: a stamp file records the hash of setup.py and of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.stylekit-bootstrap
want=$(cat setup.py scripts/bootstrap.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "stylekit: setting up .venv (first run takes a few minutes)..." >&2
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# pip warns once per package about this machine's missing local index folders: noise, not news.
pipi() { .venv/bin/python -m pip install -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
pipi --upgrade pip
# torch/torchvision pinned together: other pairs cannot import each other here.
pipi "torch==2.14.1" "torchvision==0.29.1"
pipi -e ".[all,dev]"
echo "$want" > "$stamp"
