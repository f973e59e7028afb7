#!/usr/bin/env bash
# Mini recipe (the README's main command): synthesise a small de/fr/es/it corpus in CommonVoice format, import it
# into Kaldi data directories with IPA phone transcripts, train one multilingual phone-CTC conformer, decode every
# language's test set and score it, then prune it to 70 % with Dynamic ASR Pathways. Runs on one 2-core CPU machine
# in about 30 minutes (README: the latest fresh-clone run and its stage times); every stage is resumable.
#   stage 1  synthesise the corpus with espeak-ng (corpora/): ../../data_prep/synth.sh
#   stage 2  import it with the CommonVoice importer (data/): ../../data_prep/synth.sh
#   stages 3-6  inventory, train, decode, report: see ../asr.sh
#   transfer test (--transfer_utts N per language, 0: none): stage 1 also synthesises a test set whose voices,
#            rooms, channels and noise no training clip uses (corpora/cv-corpus-synth-transfer-1.0), stage 2
#            imports it (data/transfer/test_<lang>, linked as data/transfer_<lang>), stages 5-6 decode and score
#            it beside test_<lang> and write PER(transfer)/PER(test) per language -> $exp/RESULTS_transfer.md
#   stage 7  Dynamic ASR Pathways to --sparsity (0.7) from the multilingual model in --prune_steps steps (per-language
#            masks, saliency criterion, ../pathways/conf/pathways.yaml); table of the pruned and dense models
#            per language -> $exp/pathways/results/results.md (the full comparison: ../pathways/run.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 7 "last stage to run"
option langs "de fr es it" "languages of the corpus and the model"
option exp exp/multi "experiment folder of the multilingual model (and of its pruning, <exp>/pathways/)"
option sparsity 0.7 "stage 7: target sparsity"
option prune_steps 200 "stage 7: pruning steps"
option transfer_utts 100 "transfer test utterances per language (0: no transfer test)"
option_list synth_opt "FLAG for asrprune synth, e.g. --synth_opt --train-utts=300"
pass_through asr_opts ../asr.sh    # e.g. --train_opt KEY=VALUE
parse_options "$@"

source "$here/../common.sh"
cd "$here"
mkdir -p "$exp"
export RECIPE_TIMES=${RECIPE_TIMES:-$here/$exp/recipe_times.tsv}  # stage start times (benchmarks/recipe_record.py)

nested_stages 1 2 ../../data_prep/synth.sh --langs "$langs" --corpora corpora --data data \
  --transfer_utts "$transfer_utts" "${synth_opt[@]/#/--synth_opt=}"
# The transfer test sets (data_prep/synth.sh links them as data/transfer_<lang>) are decoded beside test_<lang>.
test_sets=$(for l in $langs; do printf 'test_%s ' "$l"; done)
[ "$transfer_utts" -eq 0 ] || test_sets+=$(for l in $langs; do printf 'transfer_%s ' "$l"; done)
nested_stages 3 6 ../asr.sh --langs "$langs" --exp "$exp" --tokens data/phones.txt --test_sets "$test_sets" \
  "${asr_opts[@]}"
if [ "$transfer_utts" -gt 0 ] && [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: transfer test against the test set -> $exp/RESULTS_transfer.md"
  asrprune report --out "$exp/RESULTS_transfer.md" --ratio transfer test \
    $(for l in $langs; do echo "$exp/decode_test_$l $exp/decode_transfer_$l"; done)
  cat "$exp/RESULTS_transfer.md"
fi
if [ "$stage" -le 7 ] && [ "$stop_stage" -ge 7 ]; then
  log "stage 7: Dynamic ASR Pathways to sparsity $sparsity ($prune_steps steps) from $exp"
  prune=(--dense-checkpoint "$exp/checkpoints/best.ckpt" --data data --langs $langs --exp "$exp/pathways"
         --train-config ../pathways/conf/finetune.yaml --set data.feature_cache=dump
         --config ../pathways/conf/pathways.yaml --steps "$prune_steps")
  asrprune prune run --method dense "${prune[@]}"
  asrprune prune run --method dap --init middle --criterion saliency --sparsity "$sparsity" "${prune[@]}"
  asrprune prune report --exp "$exp/pathways" --out "$exp/pathways/results" --heatmap-sparsity "$sparsity"
  cat "$exp/pathways/results/results.md"
fi
log "mini recipe done"
