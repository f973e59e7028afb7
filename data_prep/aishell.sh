#!/usr/bin/env bash
# AISHELL-1 data preparation (recipes/aishell/run.sh stages 1-2; paths are relative to where it runs). Mandarin,
# language code zh.
#   stage 1  download data_aishell.tgz from OpenSLR 33 into --db (skipped when <db>/data_aishell/ is already there)
#   stage 2  import (extracts the per-speaker .tar.gz archives once; 16 kHz dumps; pinyin -> IPA lexicon) into
#            <data>/{train,dev,test}_zh/ and <data>/lang_zh/
set -euo pipefail

source "$(dirname "$0")/../recipes/parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option db downloads "folder holding (or to hold) data_aishell/"
option url https://www.openslr.org/resources/33/data_aishell.tgz "where stage 1 downloads the corpus from"
option data data "output folder of the Kaldi data directories"
parse_options "$@"

source "$(dirname "$0")/../recipes/common.sh"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  if [ ! -d "$db/data_aishell" ]; then
    mkdir -p "$db"
    log "stage 1: download $url (15 GB) into $db"
    curl -fL --retry 3 -C - -o "$db/data_aishell.tgz" "$url"
    tar -xzf "$db/data_aishell.tgz" -C "$db"
  fi
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: import AISHELL-1 from $db into $data"
  asrprune prep-aishell --root "$db" --out "$data"
fi
