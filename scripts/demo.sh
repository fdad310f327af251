#!/usr/bin/env bash
# The main job: set up .venv if needed, stylize a photo with a built-in style, say where it is.
# Usage: scripts/demo.sh [PHOTO] [STYLE]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
photo=${1:-../shared/data/content/chicago.jpg}
style=${2:-starry-night}
mkdir -p out
out="out/$(basename "${photo%.*}")-${style}.png"
.venv/bin/stylekit stylize "$photo" -s "$style" -o "$out" >/dev/null
echo "stylekit: wrote $(pwd)/$out"
