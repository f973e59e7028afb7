#!/usr/bin/env bash
# Mini recipe (the README's main command): synthesise a small de/fr/es/it corpus in CommonVoice format, import it
# into Kaldi data directories with IPA phone transcripts, train one multilingual phone-CTC conformer, decode every
# language's test set and score it, then prune it to 70 % with Dynamic ASR Pathways. Runs on one 2-core CPU machine
# in about 35 minutes (README: the latest fresh-clone run and its stage times); every stage is resumable.
#   stage 1  synthesise the corpus with espeak-ng (corpora/)
#   stage 2  import it with the CommonVoice importer (data/)
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

stage=1
stop_stage=7
langs="de fr es it"
exp=exp/multi
sparsity=0.7
prune_steps=200
transfer_utts=100      # transfer test utterances per language (0: no transfer test)
synth_opts=()          # --synth_opt FLAG, e.g. --synth_opt --train-utts=300
asr_opts=()            # everything else goes to ../asr.sh (--train_opt KEY=VALUE, --exp DIR, ...)
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --langs) langs=$2; shift 2 ;;
    --synth_opt) synth_opts+=("$2"); shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --sparsity) sparsity=$2; shift 2 ;;
    --prune_steps) prune_steps=$2; shift 2 ;;
    --transfer_utts) transfer_utts=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; echo "options: --stage N --stop_stage N --langs \"de fr es it\" --synth_opt FLAG"\
      "--exp DIR --sparsity S --prune_steps N --transfer_utts N;"\
      "others go to ../asr.sh:"; "$here/../asr.sh" --help | tail -1; exit 0 ;;
    *) asr_opts+=("$1" "$2"); shift 2 ;;
  esac
done

source "$here/../common.sh"
cd "$here"
mkdir -p "$exp"
export RECIPE_TIMES=${RECIPE_TIMES:-$here/$exp/recipe_times.tsv}  # stage start times (benchmarks/recipe_record.py)

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: synthesise corpus ($langs)"
  asrprune synth --out corpora --langs "${langs// /,}" --transfer-test "$transfer_utts" "${synth_opts[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for l in $langs; do
    log "stage 2: import CommonVoice-format corpus: $l"
    asrprune prep-commonvoice --release corpora/cv-corpus-synth-1.0 --lang "$l" --out data
  done
fi
# --- transfer test (issue 14): import, and the test sets stages 5-6 decode --------------------------------------
transfer_sets=()
if [ "$transfer_utts" -gt 0 ]; then
  for l in $langs; do transfer_sets+=("transfer_$l"); done
  if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
    for l in $langs; do
      log "stage 2: import the transfer test (CommonVoice format): $l"
      asrprune prep-commonvoice --release corpora/cv-corpus-synth-transfer-1.0 --lang "$l" --out data/transfer \
        --splits test
      ln -sfn "transfer/test_$l" "data/transfer_$l"  # a distinct name for decode_<set> and the results table
    done
  fi
  asr_opts=(--test_sets "$(for l in $langs; do printf 'test_%s ' "$l"; done)${transfer_sets[*]}" "${asr_opts[@]}")
fi
# -----------------------------------------------------------------------------------------------------------------
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 3 ]; then
  ../asr.sh --stage $(( stage > 3 ? stage : 3 )) --stop_stage $(( stop_stage < 6 ? stop_stage : 6 )) --langs "$langs" \
    --exp "$exp" --tokens data/phones.txt "${asr_opts[@]}"
fi
if [ "${#transfer_sets[@]}" -gt 0 ] && [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
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
