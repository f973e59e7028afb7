#!/usr/bin/env bash
# Synthetic corpus preparation (stages 1-2 of recipes/mini and recipes/crosslingual; paths are relative to where it
# runs): espeak-ng speech written in the real corpora's formats, then read by the real corpora's importers.
#   stage 1  synthesise every language of --langs into <corpora>/ (asrprune synth; resumable): de, fr, es, it, pl
#            as a CommonVoice release, zh as an AISHELL-1 folder
#   stage 2  import each language into <data>/{train,dev,test}_<lang>/ and <data>/lang_<lang>/ with the importer
#            of its format (asrprune prep-commonvoice or prep-aishell)
#   with --transfer_utts N (N > 0): stage 1 also synthesises a transfer test set per language, spoken by the test
#            split's held-out voices with vocal tracts, rooms, channels and noise no other split uses (a second
#            release: cv-corpus-synth-transfer-1.0/,
#            aishell-synth-transfer/), stage 2 imports it into <data>/transfer/test_<lang>/, linked as
#            <data>/transfer_<lang> (its own name in decoding folders and result tables)
set -euo pipefail

source "$(dirname "$0")/../recipes/parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option langs "" "languages, e.g. \"de fr es it\" (required)"
option corpora corpora "folder the synthetic corpus is written to"
option data data "output folder of the Kaldi data directories"
option transfer_utts 0 "transfer test utterances per language (0: none)"
option_list synth_opt "FLAG for asrprune synth, e.g. --synth_opt --train-utts=300"
parse_options "$@"
[ -n "$langs" ] || usage_error "--langs is required (e.g. --langs \"de fr es it\")"

source "$(dirname "$0")/../recipes/common.sh"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: synthesise $langs into $corpora"
  asrprune synth --out "$corpora" --langs "${langs// /,}" --transfer-test "$transfer_utts" "${synth_opt[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: import $langs into $data"
  # Where stage 1 wrote each language, and in which format, as "<lang> <format> <folder>" lines: asked of the
  # module that names those folders (asrprune/synth/layouts.py), so that they are defined in one place.
  # One "<lang> <format> <folder> <split>" line per release to import: main, and transfer with --transfer_utts.
  layouts=$(python - "$corpora" "$transfer_utts" $langs <<'PY'
import sys
from pathlib import Path

from asrprune.synth.layouts import layout_for

corpora, transfer_utts, langs = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
for transfer in (False, True) if transfer_utts > 0 else (False,):
    for lang in langs:
        layout = layout_for(corpora, lang, transfer)
        print(lang, layout.format_name, layout.root, "transfer" if transfer else "main")
PY
  )
  while read -r l format root release <&3; do
    out=$data splits=(train dev test)
    if [ "$release" = transfer ]; then out=$data/transfer splits=(test); fi
    log "stage 2: import $l ($format, $release release) into $out"
    case "$format" in
      # <folder> is cv-corpus-synth*-1.0/<lang>/ (the importer takes the release) or aishell-synth*/data_aishell/
      # (the importer takes the folder holding it)
      commonvoice-*) asrprune prep-commonvoice --release "$(dirname "$root")" --lang "$l" --out "$out" \
                       --splits "${splits[@]}" ;;
      aishell-*) asrprune prep-aishell --root "$(dirname "$root")" --out "$out" --splits "${splits[@]}" ;;
      *) echo "$(basename "$0"): no importer for the '$format' format of $l" >&2; exit 1 ;;
    esac
    if [ "$release" = transfer ]; then ln -sfn "transfer/test_$l" "$data/transfer_$l"; fi
  done 3<<< "$layouts"
fi
