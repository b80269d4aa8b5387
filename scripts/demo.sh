#!/usr/bin/env bash
# The main job on a fresh machine: install stormgen, then validate, generate and serve
# the coffee shop on the embedded SQLite store (./.stormgen/events.db).
set -euo pipefail
cd "$(dirname "$0")/.."

model="${1:-examples/coffee_shop.storm}"
out="${2:-build/coffee_shop}"

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[generator]'

.venv/bin/stormgen validate "$model"
.venv/bin/stormgen generate "$model" -o "$out"
echo "serving $out on http://127.0.0.1:8000 (Ctrl-C to stop)"
exec .venv/bin/stormgen run "$out" --host 127.0.0.1 --port 8000
