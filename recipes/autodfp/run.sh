#!/usr/bin/env bash
# AutoDFP recipe: data-free structured pruning of a trained multilingual model, no fine-tuning, four methods
# (uniform L1-norm pruning, uniform pruning with asrprune autodfp's default reconstruction, the least-squares refit
# but for conv channels ("merge"), the SAC agent, and random search in the agent's environment as its ablation) at
# several preserved ratios of the model's parameters, MACs and CPU latency (all three within the ratio, every layer
# a multiple of 16 units; or --budget params|flops|latency or another + of them), each pruned model decoded on every
# language's test set, and one table. About 20 min for the searches of one seed on the 2-core machine (README).
#   stage 1  re-save the dense model through the same code path (reference for PER and decoding speed); with
#            a latency budget (the default), first measure the per-layer latency table in the whole model on this
#            CPU (one thread, about 4 min; run it with nothing else running), at the widths --width_multiple allows
#            -> exp/latency.json
#   stage 2  prune: every method x ratio (asrprune autodfp), the searches (agent, random) once per seed of --seeds
#            (<method>_<ratio>_s<seed>); search times are in each summary
#   stage 3  decode every model on test_<lang> (greedy CTC, PER; one thread, so decoding times compare) and write
#            the table -> exp/autodfp/RESULTS.md and RESULTS.json (asrprune autodfp-table), and with several
#            seeds RESULTS_seeds.md: mean PER per method and ratio, mean ± std over the search seeds, and
#            RESULTS_bootstrap.md: agent - random, agent - l1, merge - l1, agent - merge in mean PER with 95 % paired
#            bootstrap intervals over the test utterances (search seeds pooled)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 3 "last stage to run"
option checkpoint ../mini/exp/multi/checkpoints/best.ckpt "the trained multilingual model"
option data ../mini/data "folder of its test_<lang> data directories"
option langs "de fr es it" "test languages"
option ratios "0.8 0.6 0.5" "preserved ratios of the budget"
option methods "l1 merge agent random" "pruning methods"
option episodes 150 "episodes of the agent's (and random) search"
option seeds "0" "search seeds of agent and random (e.g. \"0 1 2\"); l1 and merge are deterministic"
option budget params+flops+latency "what the ratio preserves: params, flops, latency or several joined by +"
option width_multiple 16 "every layer keeps a multiple of this many units or all (16: on the latency table's grid)"
option latency_frames 400 "input lengths (frames) the latency table times, e.g. \"150 250 350 450\""
option exp exp/autodfp "output folder"
parse_options "$@"

source "$here/../common.sh"
cd "$here"
# One thread everywhere: the search is deterministic per seed, and decoding times of dense and pruned models
# compare on a machine that may be running other jobs.
export OMP_NUM_THREADS=1

models=(dense)
# model names and their seeds: the searches once per seed, the uniform methods once
runs=()
for r in $ratios; do
  for m in $methods; do
    case $m in agent|random) for s in $seeds; do runs+=("$m $r $s ${m}_${r}_s${s}"); done ;;
                         *) runs+=("$m $r 0 ${m}_${r}") ;;
    esac
  done
done
for run in "${runs[@]}"; do models+=("${run##* }"); done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: latency table ($exp/latency.json, with a latency budget) and dense reference from $checkpoint"
  asrprune autodfp --checkpoint "$checkpoint" --method l1 --preserve 1.0 --budget "$budget" \
    --width-multiple "$width_multiple" --latency-frames $latency_frames --latency-table "$exp/latency.json" \
    --out "$exp/dense.ckpt"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for run in "${runs[@]}"; do
    read -r m r s name <<< "$run"
    log "stage 2: $m at preserved $budget ratio $r, seed $s"
    asrprune autodfp --checkpoint "$checkpoint" --method "$m" --preserve "$r" --budget "$budget" \
      --width-multiple "$width_multiple" --latency-frames $latency_frames --latency-table "$exp/latency.json" \
      --episodes "$episodes" --seed "$s" --out "$exp/$name.ckpt"
  done
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: decode every model on test_{${langs// /,}} (greedy, PER; skips finished ones) and write the table"
  asrprune autodfp-table --data "$data" --decode-dir "$exp/decode" --langs "$langs" --out "$exp/RESULTS.md" \
    $(for n in "${models[@]}"; do echo "$exp/$n.ckpt"; done)
fi
