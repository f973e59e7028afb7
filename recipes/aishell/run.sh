#!/usr/bin/env bash
# AISHELL-1 recipe (Mandarin, language code zh): phone CTC over IPA phones with Chao tone letters; scored as CER
# with whitespace removed (ESPnet/icefall convention).
#   stages 1-2  download OpenSLR 33 into --db (unless there), import it into data/: ../../data_prep/aishell.sh
#   stages 3-6  inventory, train, decode, report: see ../asr.sh (GPU config: conf/train.yaml)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 6 "last stage to run"
option db downloads "folder holding (or to hold) data_aishell/"
option url https://www.openslr.org/resources/33/data_aishell.tgz "where stage 1 downloads the corpus from"
pass_through asr_opts ../asr.sh langs    # --langs comes from this recipe
parse_options "$@"

source "$here/../common.sh"
cd "$here"

nested_stages 1 2 ../../data_prep/aishell.sh --db "$db" --url "$url" --data data
nested_stages 3 6 ../asr.sh --langs zh "${asr_opts[@]}"
