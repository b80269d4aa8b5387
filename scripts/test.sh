#!/usr/bin/env bash
# Install stormgen with its development extras in .venv, then run linters and tests.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[dev]'

# Debian's chromium for the browser tests (the machine has no other browser) and
# graphviz for the DOT/SVG output of `stormgen graph`.
if { ! command -v chromium >/dev/null 2>&1 || ! command -v dot >/dev/null 2>&1; } \
    && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz >/dev/null) \
    || echo "warning: could not install chromium and graphviz; browser and graph tests will fail" >&2
fi

.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy
# Three pytest-xdist workers, also on two cores: many tests wait on servers and
# subprocesses (4 took as long on 2 cores, with more CPU). Options given to this
# script come last (`-n 0`: one process).
.venv/bin/python -m pytest -n 3 "$@"
