#!/usr/bin/env bash
# Synthetic corpus preparation (stages 1-2 of recipes/mini and recipes/crosslingual; paths are relative to where it
# runs): espeak-ng speech written in the real corpora's formats, then read by the real corpora's importers.
#   stage 1  synthesise every language of --langs into <corpora>/ (asrprune synth; resumable): de, fr, es, it, pl
#            as a CommonVoice release, zh as an AISHELL-1 folder
#   stage 2  import each language into <data>/{train,dev,test}_<lang>/ and <data>/lang_<lang>/ with the importer
#            of its format (asrprune prep-commonvoice or prep-aishell)
set -euo pipefail

source "$(dirname "$0")/../recipes/parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option langs "" "languages, e.g. \"de fr es it\" (required)"
option corpora corpora "folder the synthetic corpus is written to"
option data data "output folder of the Kaldi data directories"
option_list synth_opt "FLAG for asrprune synth, e.g. --synth_opt --train-utts=300"
parse_options "$@"
[ -n "$langs" ] || usage_error "--langs is required (e.g. --langs \"de fr es it\")"

source "$(dirname "$0")/../recipes/common.sh"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: synthesise $langs into $corpora"
  asrprune synth --out "$corpora" --langs "${langs// /,}" "${synth_opt[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: import $langs into $data"
  # Where stage 1 wrote each language, and in which format, as "<lang> <format> <folder>" lines: asked of the
  # module that names those folders (asrprune/synth/layouts.py), so that they are defined in one place.
  layouts=$(python - "$corpora" $langs <<'PY'
import sys
from pathlib import Path

from asrprune.synth.layouts import layout_for

for lang in sys.argv[2:]:
    layout = layout_for(Path(sys.argv[1]), lang)
    print(lang, layout.format_name, layout.root)
PY
  )
  while read -r l format root <&3; do
    log "stage 2: import $l ($format) into $data"
    case "$format" in
      # <folder> is cv-corpus-synth-1.0/<lang>/ (the importer takes the release) or aishell-synth/data_aishell/
      # (the importer takes the folder holding it)
      commonvoice-*) asrprune prep-commonvoice --release "$(dirname "$root")" --lang "$l" --out "$data" ;;
      aishell-*) asrprune prep-aishell --root "$(dirname "$root")" --out "$data" ;;
      *) echo "$(basename "$0"): no importer for the '$format' format of $l" >&2; exit 1 ;;
    esac
  done 3<<< "$layouts"
fi
