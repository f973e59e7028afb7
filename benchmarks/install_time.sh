#!/usr/bin/env bash
# Time a cold install (empty package cache) and a warm one (cache kept, fresh venv) of `./bootstrap.sh`, each in a
# fresh clone of the given commit, and print one JSON line per install with its provenance.
#   usage: benchmarks/install_time.sh [COMMIT] [OUT.jsonl]     (default HEAD; appends to OUT when given)
# It empties nothing of yours: the caches live in a temporary folder (PIP_CACHE_DIR and UV_CACHE_DIR point there).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse "${1:-HEAD}")
out=${2:-/dev/null}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_CACHE_DIR=$work/cache/pip UV_CACHE_DIR=$work/cache/uv
for kind in cold warm; do
  rm -rf "$work/clone"
  git clone -q "$repo" "$work/clone" && git -C "$work/clone" checkout -q "$commit"
  start=$(date +%s.%N)
  (cd "$work/clone" && ./bootstrap.sh >/dev/null)
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  venv_mb=$(du -sm "$work/clone/.venv" | cut -f1)
  line=$(printf '{"install": "%s", "seconds": %.1f, "venv_mb": %s, "commit": "%s", "date": "%s", "machine": "%s, %s cores", "other_load": "%s"}' \
    "$kind" "$secs" "$venv_mb" "$commit" "$(date -u +%FT%TZ)" "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" \
    "${OTHER_LOAD:-not stated}")
  echo "$line"; echo "$line" >> "$out"
done
