#!/usr/bin/env bash
# CommonVoice recipe: one language (--lang de) or several sharing one model (--lang "de fr es it").
# CommonVoice has no public download link any more: download and extract the release yourself and pass its folder,
# e.g. --cv_root /data/cv-corpus-17.0-2024-03-15 (details: ../../data_prep/commonvoice.sh).
#   stages 1-2  check the release folder, import every language into data/: ../../data_prep/commonvoice.sh
#   stages 3-6  inventory, train, decode, report: see ../asr.sh (GPU config: conf/train.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 6 "last stage to run"
option lang "" "language(s), e.g. de or \"de fr es it\" (required)"
option cv_root "" "the extracted CommonVoice release folder, holding <lang>/train.tsv"
pass_through asr_opts ../asr.sh langs    # --langs comes from this recipe
parse_options "$@"
[ -n "$lang" ] || usage_error "--lang is required (e.g. --lang de or --lang \"de fr es it\")"

source "$here/../common.sh"
cd "$here"

nested_stages 1 2 ../../data_prep/commonvoice.sh --langs "$lang" --cv_root "$cv_root" --data data
nested_stages 3 6 ../asr.sh --langs "$lang" "${asr_opts[@]}"
