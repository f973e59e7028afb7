#!/usr/bin/env bash
# Pathways recipe: unstructured pruning of the mini recipe's dense multilingual model (de/fr/es/it) with every
# masking method at 50/70/90 % sparsity, then one table and two plots.
#   stage 1  dense reference, then per sparsity: monolingual OMP, LTH, LSP (per-language IMP), adaptive masking;
#            multilingual LAP, static ASR pathways, Dynamic ASR Pathways (middle-sparsity masks, saliency);
#            at --compare_sparsity (70 %) also DAP's other criteria and initialisations (--dap_compare_runs)
#   stage 2  results/results.md (PER/WER per language, steps, training time, sizes, mask sparsity/overlap),
#            results/wer_vs_sparsity.png, results/mask_overlap.png
#   stage 3  pathways meet JoinAP: the new language --unseen (pl) on the DAP model at --compare_sparsity, its pathway
#            the union of the others' or the closest language's: zero-shot, few-shot with the pathway fixed, few-shot
#            growing it (asrprune prune grow), beside the dense model; results/unseen_<lang>.md. Needs a data folder
#            with lang_/dev_/test_<unseen> and train_<unseen>_fewshot (recipes/crosslingual stages 1-2 and 5).
# Every method is resumable and reuses finished prerequisite stages (LSP masks for static pathways, ...).
# --budget_scale 0.05 gives a few-minute end-to-end check; stages 1-2 took 80 min on 2 CPU cores, stage 3 25 min
# (machine shared).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 3 "last stage to run"
option dense_checkpoint ../mini/exp/multi/checkpoints/best.ckpt "the dense multilingual model"
option data ../mini/data "folder of its data directories"
option langs "de fr es it" "its languages"
# 70 % first: the operating point of the DAP comparison and the mini recipe
option sparsities "0.7 0.5 0.9" "sparsities of stage 1"
option methods "omp lth lsp adaptive lap static" "masking methods of stage 1 (besides DAP)"
option dap_runs "middle:saliency" "DAP runs (init:criterion) at every sparsity"
option dap_compare_runs "middle:magnitude middle:scores lap:saliency lsp:saliency" \
  "further DAP runs (init:criterion), only at --compare_sparsity"
option compare_sparsity 0.7 "the sparsity of the DAP comparison and of stage 3"
option budget_scale 1.0 "scales every method's training steps"
option heatmap_sparsity 0.7 "the sparsity of the mask-overlap plot"
option exp exp "output folder of the runs"
option results results "output folder of the tables and plots"
option_list set "KEY=VALUE for the fine-tuning config (--set data.feature_cache=dump)"
option unseen pl "stage 3: the new language"
option unseen_data ../crosslingual/data "stage 3: folder with lang_/dev_/test_<unseen> and train_<unseen>_fewshot"
option unseen_model dap_middle_saliency "stage 3: which pruned model at --compare_sparsity gets the new language"
option fewshot_config ../crosslingual/conf/finetune.yaml "stage 3: the few-shot fine-tuning config"
option_list fewshot_set \
  "stage 3: KEY=VALUE for the few-shot config (after --set data.feature_cache=../crosslingual/dump)"
parse_options "$@"

source "$here/../common.sh"
cd "$here"
common=(--dense-checkpoint "$dense_checkpoint" --data "$data" --langs $langs --train-config conf/finetune.yaml
        --config conf/pathways.yaml --budget-scale "$budget_scale" --exp "$exp" "${set[@]/#/--set=}")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: dense reference"
  asrprune prune run --method dense "${common[@]}"
  for s in $sparsities; do
    for m in $methods; do
      log "stage 1: $m at sparsity $s"
      asrprune prune run --method "$m" --sparsity "$s" "${common[@]}"
    done
    runs=$dap_runs
    [ "$s" = "$compare_sparsity" ] && runs="$dap_runs $dap_compare_runs"
    for run in $runs; do
      log "stage 1: dap (init ${run%%:*}, criterion ${run##*:}) at sparsity $s"
      asrprune prune run --method dap --init "${run%%:*}" --criterion "${run##*:}" --sparsity "$s" "${common[@]}"
    done
  done
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: table and plots"
  asrprune prune report --exp "$exp" --out "$results" --heatmap-sparsity "$heatmap_sparsity"
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  l=$unseen
  # The pruned model's folder, named by the code that writes it (asrprune/pruning/masking/runner.py).
  pruned=$(python - "$exp" "$unseen_model" "$compare_sparsity" <<'PY'
import sys
from pathlib import Path

from asrprune.pruning.masking.runner import method_dir

print(method_dir(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
PY
  )/checkpoints/last.ckpt
  u="$exp/unseen_$l"
  decode() {  # decode CHECKPOINT OUT: PER and lexicon WER on the new language's test set
    asrprune decode --checkpoint "$1" --data "$unseen_data/test_$l" --lexicon "$unseen_data/lang_$l/lexicon.txt" \
      --out "$2"
  }
  fewshot=(--train "$unseen_data/train_${l}_fewshot" --dev "$unseen_data/dev_$l"
           --set data.feature_cache=../crosslingual/dump "${fewshot_set[@]/#/--set=}")
  for start in dense union closest; do
    log "stage 3: $l from the $start model: zero-shot, few-shot"
    if [ "$start" = dense ]; then from=$dense_checkpoint pathway=(); else from=$pruned pathway=(--pathway "$start"); fi
    [ -f "$u/$start/zero_shot.ckpt" ] || asrprune add-language --checkpoint "$from" --lang "$l" \
      --lexicon "$unseen_data/lang_$l/lexicon.txt" "${pathway[@]}" --out "$u/$start/zero_shot.ckpt"
    [ -f "$u/$start/decode_zero_shot/results.json" ] || decode "$u/$start/zero_shot.ckpt" "$u/$start/decode_zero_shot"
    asrprune train --config "$fewshot_config" --init "$u/$start/zero_shot.ckpt" --exp "$u/$start/few_shot" \
      "${fewshot[@]}"
    [ -f "$u/$start/decode_few_shot/results.json" ] || \
      decode "$u/$start/few_shot/checkpoints/last.ckpt" "$u/$start/decode_few_shot"
    if [ "$start" != dense ]; then
      log "stage 3: $l from the $start pathway, grown during few-shot fine-tuning"
      asrprune prune grow --checkpoint "$u/$start/zero_shot.ckpt" --lang "$l" --train-config "$fewshot_config" \
        --exp "$u/$start/grown" "${fewshot[@]}"
      [ -f "$u/$start/decode_grown/results.json" ] || \
        decode "$u/$start/grown/checkpoints/last.ckpt" "$u/$start/decode_grown"
    fi
  done
  asrprune prune unseen-table --exp "$u" --lang "$l" --out "$results/unseen_$l.md"
fi
log "pathways recipe done"
