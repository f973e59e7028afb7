#!/usr/bin/env bash
# AutoDFP recipe: data-free structured pruning of a trained multilingual model, no fine-tuning, four methods
# (uniform L1-norm pruning, uniform pruning with Neuron-Merging-like folding, the SAC agent, and random search
# in the agent's environment as its ablation) at several preserved ratios of the model's parameters and MACs (both
# within the ratio; or --budget params|flops|latency), each pruned model decoded on every language's test set,
# and one table.
#   stage 1  re-save the dense model through the same code path (reference for PER and decoding speed); with
#            --budget latency, first measure the per-layer latency table on this CPU -> exp/latency.json
#   stage 2  prune: every method x ratio (asrprune autodfp); search times are in each summary
#   stage 3  decode every model on test_<lang> (greedy CTC, PER; one thread, so decoding times compare) and write
#            the table -> exp/autodfp/RESULTS.md and RESULTS.json (asrprune autodfp-table)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

stage=1
stop_stage=3
checkpoint=../mini/exp/multi/checkpoints/best.ckpt
data=../mini/data
langs="de fr es it"
ratios="0.8 0.6 0.5"
methods="l1 merge agent random"
episodes=150
budget=params+flops
exp=exp/autodfp
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --checkpoint) checkpoint=$2; shift 2 ;;
    --data) data=$2; shift 2 ;;
    --langs) langs=$2; shift 2 ;;
    --ratios) ratios=$2; shift 2 ;;
    --methods) methods=$2; shift 2 ;;
    --episodes) episodes=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; echo "options: --stage N --stop_stage N --checkpoint CKPT (default $checkpoint)" \
      "--data DIR (default $data) --langs \"de fr es it\" --ratios \"0.8 0.6 0.5\"" \
      "--methods \"l1 merge agent random\" --episodes N (agent/random search, default $episodes)" \
      "--budget params+flops|params|flops|latency --exp DIR (default $exp)"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

source "$here/../common.sh"
cd "$here"
# One thread everywhere: the search is deterministic per seed, and decoding times of dense and pruned models
# compare on a machine that may be running other jobs.
export OMP_NUM_THREADS=1

models=(dense)
for r in $ratios; do for m in $methods; do models+=("${m}_${r}"); done; done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: latency table ($exp/latency.json, if --budget latency) and dense reference from $checkpoint"
  asrprune autodfp --checkpoint "$checkpoint" --method l1 --preserve 1.0 --budget "$budget" \
    --latency-table "$exp/latency.json" --out "$exp/dense.ckpt"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for r in $ratios; do
    for m in $methods; do
      log "stage 2: $m at preserved $budget ratio $r"
      asrprune autodfp --checkpoint "$checkpoint" --method "$m" --preserve "$r" --budget "$budget" \
        --latency-table "$exp/latency.json" --episodes "$episodes" --out "$exp/${m}_${r}.ckpt"
    done
  done
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: decode every model on test_{${langs// /,}} (greedy, PER; skips finished ones) and write the table"
  asrprune autodfp-table --data "$data" --decode-dir "$exp/decode" --langs "$langs" --out "$exp/RESULTS.md" \
    $(for n in "${models[@]}"; do echo "$exp/$n.ckpt"; done)
fi
