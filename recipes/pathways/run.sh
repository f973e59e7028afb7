#!/usr/bin/env bash
# Pathways recipe: unstructured pruning of the mini recipe's dense multilingual model (de/fr/es/it) with every
# masking method at 50/70/90 % sparsity over several training seeds, then tables with mean ± std over seeds, paired
# bootstrap confidence intervals against the best DAP variant, and two plots.
#   stage 0  larger held-out test sets (--test_utts per language from --test_speakers held-out speakers): the dense
#            model's synthetic corpus again (same synth seed and train/dev sizes, so the same sentences and speakers;
#            ../../data_prep/synth.sh into corpora/) with a larger test split, whose sentences and speakers are
#            disjoint from train/dev; --comparison_data gets test_/lang_<lang> from it and links train_/dev_<lang>
#            to --data, so every method trains on the data of today. --test_utts 0: no stage 0, test on --data.
#   stage 1  per seed of --seeds (training seed, --set seed=N; runs in <exp>/seed<N>/, a run with a result.json is
#            skipped, so a stopped run resumes where it stopped): dense reference (first seed only: no training);
#            per sparsity: monolingual OMP, LTH, LSP (per-language IMP), adaptive masking; multilingual LAP, static
#            ASR pathways, Dynamic ASR Pathways (middle-sparsity masks, saliency); at --compare_sparsity (70 %) also
#            DAP's other criteria and initialisations (--dap_compare_runs). Sparsities not in --seed_sparsities run
#            with the first seed only. Within a seed all methods get the same data, batches and budgets.
#   stage 2  results/results_seeds.md|json: PER/WER per language and averaged, mean ± std over seeds; paired
#            bootstrap 95 % CIs (test utterances resampled, pooled over seeds) of each method's difference to the best
#            DAP variant per sparsity, and of OMP/LSP/LTH's to adaptive masking (per-utterance counts cached as
#            decode_test_<lang>/utt_errors.<metric>.tsv); results/metric_vs_sparsity_seeds.png (mean ± std);
#            results/seed<first>/: the single-seed table and plots (results.md, wer_vs_sparsity.png,
#            mask_overlap.png) of the first seed
#   stage 3  pathways meet JoinAP: the new language --unseen (pl) on the first seed's DAP model at --compare_sparsity,
#            its pathway the union of the others' or the closest language's: zero-shot, few-shot with the pathway
#            fixed, few-shot growing it (asrprune prune grow), beside the dense model; results/unseen_<lang>.md. Needs
#            a data folder with lang_/dev_/test_<unseen> and train_<unseen>_fewshot (recipes/crosslingual stages 1-2
#            and 5).
# Every method is resumable and reuses finished prerequisite stages of its seed (LSP masks for static pathways, ...).
# --dry_run true prints what stages 0-2 would run (skipping finished runs) without running or installing anything.
# Time on the 2-core CPU machine, measured (benchmarks/results/pathways_seeds): stage 1 with --sparsities "0.7 0.9"
# --methods "omp lsp adaptive lap static" --dap_compare_runs "" and three seeds (37 runs) took 94.5 min, about 2.6 min
# per run including start-up, export and decoding 4 x 400 test utterances; stage 2 24 s. The defaults (LTH, 50 % for
# the first seed, four more DAP runs at 70 % per seed: 62 runs) take about 2.7 h at that rate (an estimate); stage 0
# roughly 15-30 min (espeak for 4 x 1100 utterances); stage 3 about 25 min.
# A stopped run loses at most its current method's current training stage.
# --budget_scale 0.05 gives a few-minute end-to-end check. A GPU run would use --method_config conf/pathways_gpu.yaml
# (2000 steps, 3 IMP rounds, ΔT 50; trainer.accelerator auto picks the GPU), --seeds "0 1 2 3 4", --seed_sparsities
# "0.5 0.7 0.9" and --test_utts 1000 (and a larger model and corpus for conclusions beyond synthetic data).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 0 "first stage to run"
option stop_stage 3 "last stage to run"
option dense_checkpoint ../mini/exp/multi/checkpoints/best.ckpt "the dense multilingual model"
option data ../mini/data "folder of its data directories (train_/dev_<lang> are trained on)"
option langs "de fr es it" "its languages"
option test_utts 400 "stage 0: test utterances per language of the comparison (0: no stage 0, test on --data)"
option test_speakers 8 "stage 0: held-out test speakers per language (the corpus default; per-voice PER varies 3x)"
option corpora corpora "stage 0: folder of the re-synthesised corpus"
option_list synth_opt "stage 0: more asrprune synth FLAGs, as the dense model's corpus was made (--train-utts=N)"
option comparison_data data "stage 0 writes, stages 1-2 read: larger test_/lang_<lang>, links to --data's train_/dev_"
# 70 % first: the operating point of the DAP comparison and the mini recipe
option sparsities "0.7 0.5 0.9" "sparsities of stage 1"
option seeds "0 1 2" "training seeds of stage 1, one folder <exp>/seed<N> each"
option seed_sparsities "0.7 0.9" "sparsities that get every seed (the others: the first seed only)"
option methods "omp lth lsp adaptive lap static" "masking methods of stage 1 (besides DAP)"
option dap_runs "middle:saliency" "DAP runs (init:criterion) at every sparsity"
option dap_compare_runs "middle:magnitude middle:scores lap:saliency lsp:saliency" \
  "further DAP runs (init:criterion), only at --compare_sparsity"
option compare_sparsity 0.7 "the sparsity of the DAP comparison and of stage 3"
option method_config conf/pathways.yaml "method settings: steps, IMP rounds, ΔT, ... (GPU: conf/pathways_gpu.yaml)"
option budget_scale 1.0 "scales every method's training steps"
option heatmap_sparsity 0.7 "the sparsity of the mask-overlap plot"
option bootstrap_resamples 2000 "stage 2: paired bootstrap resamples (seeded, deterministic)"
option other_load "not recorded" "stage 2: what else ran during stage 1 (recorded; train min depends on it)"
option exp exp "output folder of the runs"
option results results "output folder of the tables and plots"
option dry_run false "true: print what stages 0-2 would run, run nothing"
option_list set "KEY=VALUE for the fine-tuning config (--set data.feature_cache=dump)"
option unseen pl "stage 3: the new language"
option unseen_data ../crosslingual/data "stage 3: folder with lang_/dev_/test_<unseen> and train_<unseen>_fewshot"
option unseen_model dap_middle_saliency "stage 3: which pruned model at --compare_sparsity gets the new language"
option fewshot_config ../crosslingual/conf/finetune.yaml "stage 3: the few-shot fine-tuning config"
option_list fewshot_set \
  "stage 3: KEY=VALUE for the few-shot config (after --set data.feature_cache=../crosslingual/dump)"
parse_options "$@"
case "$dry_run" in true|false) ;; *) usage_error "--dry_run is true or false, got '$dry_run'" ;; esac
read -r -a seed_list <<< "$seeds"
[ "${#seed_list[@]}" -ge 1 ] || usage_error "--seeds needs at least one seed"
for n in "${seed_list[@]}"; do [[ "$n" =~ ^[0-9]+$ ]] || usage_error "--seeds: '$n' is not a non-negative integer"; done
first_seed=${seed_list[0]}

if [ "$dry_run" = true ]; then  # nothing is installed or run: only the plan is printed
  log() { echo "[dry run] $*"; }
  run() { echo "would run: $*"; }
else
  source "$here/../common.sh"
  run() { "$@"; }
fi
cd "$here"
test_data=$data
[ "$test_utts" -gt 0 ] && test_data=$comparison_data

# run_dir SEED_EXP NAME SPARSITY: the folder asrprune prune run writes NAME at SPARSITY to (method_dir of
# asrprune/pruning/masking/runner.py: <exp>/dense, else <exp>/sparsity<percent>/<name>); the shell checks its
# result.json so that a finished run is skipped without starting Python.
run_dir() {
  if [ "$2" = dense ]; then echo "$1/dense"; return; fi
  echo "$1/sparsity$(awk -v s="$3" 'BEGIN{printf "%d", s*100+0.5}')/$2"
}
# prune_run SEED_EXP SEED NAME SPARSITY ARGS...: asrprune prune run ARGS unless NAME's result.json exists.
prune_run() {
  local seed_exp=$1 seed=$2 name=$3 s=$4
  shift 4
  if [ -f "$(run_dir "$seed_exp" "$name" "$s")/result.json" ]; then
    echo "skip: $name at sparsity $s, seed $seed (result.json exists)"
    return
  fi
  log "stage 1: $name at sparsity $s, seed $seed"
  run asrprune prune run "$@" --dense-checkpoint "$dense_checkpoint" --data "$test_data" --langs $langs \
    --train-config conf/finetune.yaml --config "$method_config" --budget-scale "$budget_scale" --exp "$seed_exp" \
    "${set[@]/#/--set=}" --set="seed=$seed"
}

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ] && [ "$test_utts" -gt 0 ]; then
  if [ -f "$comparison_data/.complete" ]; then
    echo "skip: stage 0 ($comparison_data/.complete exists)"
  else
    log "stage 0: $test_utts test utterances per language from $test_speakers held-out speakers into $comparison_data"
    run ../../data_prep/synth.sh --langs "$langs" --corpora "$corpora" --data "$corpora/data" \
      --synth_opt="--test-utts=$test_utts" --synth_opt="--test-speakers=$test_speakers" "${synth_opt[@]/#/--synth_opt=}"
    src=$(cd "$data" 2>/dev/null && pwd || echo "$data")  # absolute, so that the links hold from $comparison_data
    if [ "$dry_run" = false ]; then
      for l in $langs; do
        [ -d "$src/train_$l" ] && [ -d "$src/dev_$l" ] || { echo "$0: no $data/{train,dev}_$l (--data)" >&2; exit 1; }
      done
    fi
    run mkdir -p "$comparison_data"
    for l in $langs; do
      run rm -rf "$comparison_data/test_$l" "$comparison_data/lang_$l"
      run cp -r "$corpora/data/test_$l" "$corpora/data/lang_$l" "$comparison_data/"
      run ln -sfn "$src/train_$l" "$comparison_data/train_$l"
      run ln -sfn "$src/dev_$l" "$comparison_data/dev_$l"
    done
    run touch "$comparison_data/.complete"
  fi
fi
if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  for seed in "${seed_list[@]}"; do
    seed_exp=$exp/seed$seed
    log "stage 1: seed $seed into $seed_exp"
    [ "$seed" = "$first_seed" ] && prune_run "$seed_exp" "$seed" dense 0 --method dense
    for s in $sparsities; do
      if [ "$seed" != "$first_seed" ] && [[ " $seed_sparsities " != *" $s "* ]]; then continue; fi
      for m in $methods; do
        prune_run "$seed_exp" "$seed" "$m" "$s" --method "$m" --sparsity "$s"
      done
      runs=$dap_runs
      [ "$s" = "$compare_sparsity" ] && runs="$dap_runs $dap_compare_runs"
      for r in $runs; do
        prune_run "$seed_exp" "$seed" "dap_${r%%:*}_${r##*:}" "$s" --method dap --init "${r%%:*}" \
          --criterion "${r##*:}" --sparsity "$s"
      done
    done
  done
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "stage 2: tables over seeds ${seed_list[*]} and bootstrap CIs -> $results/results_seeds.md"
  run python - "$exp" "$results" "$test_data" "$bootstrap_resamples" "$other_load" <<'PY'
import sys
from pathlib import Path

from asrprune.benchmarking.provenance import provenance
from asrprune.pruning.masking.report import write_seed_report

summary = write_seed_report(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), resamples=int(sys.argv[4]),
                            provenance=provenance(other_load=sys.argv[5]))
print(f"{len(summary['runs'])} runs over seeds {summary['seeds']} -> {sys.argv[2]}/results_seeds.md")
PY
  log "stage 2: table and plots of seed $first_seed -> $results/seed$first_seed"
  run asrprune prune report --exp "$exp/seed$first_seed" --out "$results/seed$first_seed" \
    --heatmap-sparsity "$heatmap_sparsity"
fi
[ "$dry_run" = true ] && exit 0
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  l=$unseen
  # The pruned model's folder, named by the code that writes it (asrprune/pruning/masking/runner.py).
  pruned=$(python - "$exp/seed$first_seed" "$unseen_model" "$compare_sparsity" <<'PY'
import sys
from pathlib import Path

from asrprune.pruning.masking.runner import method_dir

print(method_dir(Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])))
PY
  )/checkpoints/last.ckpt
  u="$exp/seed$first_seed/unseen_$l"
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
