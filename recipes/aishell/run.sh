#!/usr/bin/env bash
# AISHELL-1 recipe (Mandarin, language code zh): phone CTC over IPA phones with Chao tone letters; scored as CER
# with whitespace removed (ESPnet/icefall convention).
#   stage 1  download data_aishell.tgz from OpenSLR 33 into --db (skipped when the folder is already there)
#   stage 2  import (extracts the per-speaker .tar.gz archives once; 16 kHz dumps; pinyin -> IPA lexicon)
#   stages 3-6  inventory, train, decode, report: see ../asr.sh (GPU config: conf/train.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

stage=1
stop_stage=6
db=downloads
url=https://www.openslr.org/resources/33/data_aishell.tgz
asr_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; echo "options: --db DIR (holds data_aishell/) --url URL --stage N --stop_stage N;" \
      "others go to ../asr.sh:"; "$here/../asr.sh" --help | tail -1; exit 0 ;;
    *) asr_opts+=("$1" "$2"); shift 2 ;;
  esac
done

source "$here/../common.sh"
cd "$here"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ ! -d "$db/data_aishell" ]; then
    mkdir -p "$db"
    echo "downloading $url (15 GB) into $db"
    curl -fL --retry 3 -C - -o "$db/data_aishell.tgz" "$url"
    tar -xzf "$db/data_aishell.tgz" -C "$db"
  fi
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  asrprune prep-aishell --root "$db" --out data
fi
if [ "$stop_stage" -ge 3 ]; then
  ../asr.sh --stage $(( stage > 3 ? stage : 3 )) --stop_stage "$stop_stage" --langs zh "${asr_opts[@]}"
fi
