#!/usr/bin/env bash
# Pathways recipe: unstructured pruning of the mini recipe's dense multilingual model (de/fr/es/it) with every
# masking method at 50/70/90 % sparsity, then one table and two plots.
#   stage 1  dense reference, then per sparsity: monolingual OMP, LTH, LSP (per-language IMP), adaptive masking;
#            multilingual LAP, static ASR pathways, Dynamic ASR Pathways (initialisations x criteria)
#   stage 2  results/results.md (PER/WER per language, steps, training time, sizes, mask sparsity/overlap),
#            results/wer_vs_sparsity.png, results/mask_overlap.png
# Every method is resumable and reuses finished prerequisite stages (LSP masks for static pathways, ...).
# --budget_scale 0.05 gives a few-minute end-to-end check; the full table is sized for ~2 h on 2 CPU cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

stage=1
stop_stage=2
dense_checkpoint=../mini/exp/multi/checkpoints/best.ckpt
data=../mini/data
langs="de fr es it"
sparsities="0.5 0.7 0.9"
methods="omp lth lsp adaptive lap static"
dap_runs="middle:saliency middle:magnitude middle:scores lap:saliency lsp:saliency"   # init:criterion
budget_scale=1.0
heatmap_sparsity=0.7
exp=exp
results=results
sets=()                 # --set KEY=VALUE for the fine-tuning config, e.g. --set data.feature_cache=dump
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --dense_checkpoint) dense_checkpoint=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --langs) langs=$2; shift 2 ;;
    --sparsities) sparsities=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --dap_runs) dap_runs=$2; shift 2 ;;
    --budget_scale) budget_scale=$2; shift 2 ;;
    --heatmap_sparsity) heatmap_sparsity=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; echo "options: --stage --stop_stage --dense_checkpoint --data --langs --sparsities"\
      "--methods --dap_runs --budget_scale --heatmap_sparsity --exp --results --set KEY=VALUE"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 1 ;;
  esac
done

source "$here/../common.sh"
cd "$here"
common=(--dense-checkpoint "$dense_checkpoint" --data "$data" --langs $langs --train-config conf/finetune.yaml
        --config conf/pathways.yaml --budget-scale "$budget_scale" --exp "$exp" "${sets[@]}")

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: dense reference"
  asrprune prune run --method dense "${common[@]}"
  for s in $sparsities; do
    for m in $methods; do
      log "stage 1: $m at sparsity $s"
      asrprune prune run --method "$m" --sparsity "$s" "${common[@]}"
    done
    for run in $dap_runs; do
      log "stage 1: dap (init ${run%%:*}, criterion ${run##*:}) at sparsity $s"
      asrprune prune run --method dap --init "${run%%:*}" --criterion "${run##*:}" --sparsity "$s" "${common[@]}"
    done
  done
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: table and plots"
  asrprune prune report --exp "$exp" --out "$results" --heatmap-sparsity "$heatmap_sparsity"
fi
log "pathways recipe done"
