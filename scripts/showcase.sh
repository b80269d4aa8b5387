#!/usr/bin/env bash
# Everything stormgen can show, for every example, into out/ (gitignored):
# the Event Storming board, the context map and event flow (Mermaid, DOT, SVG, HTML),
# the Markdown docs, the AsyncAPI document and the JSON Schemas.
# SVG and HTML graphs need Graphviz's `dot` (apt-get install graphviz); without it
# they are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/stormgen ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[generator]'
fi
stormgen=.venv/bin/stormgen

# The root model of each example: single files, and a folder's file named after it.
models=()
for m in examples/*.storm examples/*/; do
  if [ -d "$m" ]; then
    m="${m%/}/$(basename "$m").storm"
  fi
  [ -f "$m" ] && models+=("$m")
done

for model in "${models[@]}"; do
  name="$(basename "$model" .storm)"
  dir="out/$name"
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "== $model -> $dir"
  "$stormgen" board "$model" -o "$dir/board.html"
  "$stormgen" graph "$model" --format mermaid -o "$dir/context-map.mmd"
  "$stormgen" graph "$model" --flow --format mermaid -o "$dir/flow.mmd"
  "$stormgen" graph "$model" --flow --format dot -o "$dir/flow.dot"
  if command -v dot >/dev/null 2>&1; then
    "$stormgen" graph "$model" --format svg -o "$dir/context-map.svg"
    "$stormgen" graph "$model" --flow --format svg -o "$dir/flow.svg"
    "$stormgen" graph "$model" --flow --format html -o "$dir/flow.html"
  else
    echo "   (no Graphviz: SVG and HTML graphs skipped)"
  fi
  for target in docs asyncapi jsonschema; do
    "$stormgen" generate "$model" -o "$dir/$target" --target "$target" >/dev/null
  done
  echo "   board, graphs, docs/, asyncapi/asyncapi.json, jsonschema/ written"
done
echo "open out/<example>/board.html in a browser"
