#!/usr/bin/env bash
# CommonVoice data preparation (recipes/commonvoice/run.sh stages 1-2; paths are relative to where it runs).
# CommonVoice has no public download link any more (releases are behind signed URLs): download and extract the
# release yourself and pass its folder, e.g. --cv_root /data/cv-corpus-17.0-2024-03-15 (holding <lang>/clips/ and
# <lang>/{train,dev,test}.tsv). The official train/dev/test splits are used.
#   stage 1  check the release folder: <cv_root>/<lang>/train.tsv for every language
#   stage 2  import every language (16 kHz dumps, IPA phones, lexicon) into <data>/{train,dev,test}_<lang>/ and
#            <data>/lang_<lang>/
set -euo pipefail

source "$(dirname "$0")/../recipes/parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option langs "" "languages, e.g. \"de fr es it\" (required)"
option cv_root "" "the extracted release folder, holding <lang>/train.tsv"
option data data "output folder of the Kaldi data directories"
parse_options "$@"
[ -n "$langs" ] || usage_error "--langs is required (e.g. --langs de or --langs \"de fr es it\")"

source "$(dirname "$0")/../recipes/common.sh"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: check the CommonVoice release at '$cv_root' for $langs"
  for l in $langs; do
    if [ -z "$cv_root" ] || [ ! -f "$cv_root/$l/train.tsv" ]; then
      echo "$(basename "$0"): no CommonVoice release for '$l' at --cv_root '$cv_root'" \
        "(expected $cv_root/$l/train.tsv)." >&2
      echo "Download it from https://commonvoice.mozilla.org/datasets and extract it; then pass --cv_root." >&2
      exit 1
    fi
  done
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for l in $langs; do
    log "stage 2: import CommonVoice $l into $data"
    asrprune prep-commonvoice --release "$cv_root" --lang "$l" --out "$data"
  done
fi
