#!/usr/bin/env bash
# CommonVoice recipe: one language (--lang de) or several sharing one model (--lang "de fr es it").
# CommonVoice has no public download link any more (releases are behind signed URLs): download and extract the
# release yourself and pass its folder, e.g. --cv_root /data/cv-corpus-17.0-2024-03-15 (holding <lang>/clips/ and
# <lang>/{train,dev,test}.tsv). The official train/dev/test splits are used.
#   stage 1  check the release folder
#   stage 2  import every language (16 kHz dumps, IPA phones, lexicon) into data/
#   stages 3-6  inventory, train, decode, report: see ../asr.sh (GPU config: conf/train.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

stage=1
stop_stage=6
lang=""
cv_root=""
asr_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --lang) lang=$2; shift 2 ;;
    --cv_root) cv_root=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; echo "options: --lang \"de fr\" --cv_root DIR --stage N --stop_stage N;" \
      "others go to ../asr.sh:"; "$here/../asr.sh" --help | tail -1; exit 0 ;;
    *) asr_opts+=("$1" "$2"); shift 2 ;;
  esac
done
[ -n "$lang" ] || { echo "run.sh: --lang is required (e.g. --lang de or --lang \"de fr es it\")" >&2; exit 2; }

source "$here/../common.sh"
cd "$here"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  for l in $lang; do
    if [ -z "$cv_root" ] || [ ! -f "$cv_root/$l/train.tsv" ]; then
      echo "run.sh: no CommonVoice release for '$l' at --cv_root '$cv_root' (expected $cv_root/$l/train.tsv)." >&2
      echo "Download it from https://commonvoice.mozilla.org/datasets and extract it; then pass --cv_root." >&2
      exit 1
    fi
  done
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for l in $lang; do
    asrprune prep-commonvoice --release "$cv_root" --lang "$l" --out data
  done
fi
if [ "$stop_stage" -ge 3 ]; then
  ../asr.sh --stage $(( stage > 3 ? stage : 3 )) --stop_stage "$stop_stage" --langs "$lang" "${asr_opts[@]}"
fi
