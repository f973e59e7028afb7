#!/usr/bin/env bash
# Dev-set variant study of Dynamic ASR Pathways and adaptive masking (the variants are chosen here, on the dev sets;
# run.sh then reports the chosen ones on the test sets once). Every variant trains from the same dense model with
# the same data, batches and step budget as run.sh's methods, at --sparsity, and is scored on the dev sets: a data
# folder (<exp>/data) whose test_<lang> are links to --data's dev_<lang>, so `asrprune prune run` decodes dev where
# it would decode test. One experiment folder per variant (<exp>/<variant>/; a variant's settings are a YAML overlay
# on --method_config in <exp>/conf/<variant>.yaml), so each is resumable on its own and a finished one is skipped.
# --seed N (N > 0) trains the variants again with training seed N into <exp>/<variant>_seed<N>/: the spread over
# seeds says which differences between variants the study can see.
# Variants (name: method, then the settings it changes; the first of each method is the reference):
#   dap_saliency           dap middle:saliency with per-tensor ranking (stage 7 of the mini recipe until this study)
#   dap_saliency_accum     saliency averaged over the whole interval ΔT instead of an EMA
#   dap_saliency_cap       at most 10 % of a tensor's kept weights swapped per re-evaluation
#   dap_saliency_margin    a candidate must beat a kept weight's saliency by 20 %
#   dap_saliency_global    one ranking over all prunable tensors (exact overall sparsity)
#   dap_saliency_global_cap  global ranking and the 10 % swap cap together
#   dap_parp               dap middle:magnitude with PARP's adjust per pathway (excluded weights train from zero on
#                          their language's batches and compete by magnitude), global ranking, as PARP
#   dap_parp_weight        dap_parp with excluded weights' adjusted values starting from θ instead of zero
#   dap_parp_tensor        dap_parp with per-tensor ranking
#   dap_saliency_dt20      ΔT 20 steps instead of 10 (same budget)
#   dap_saliency_linear    a linear sparsity ramp instead of the cubic one (same budget)
#   adaptive_magnitude     monolingual adaptive masking by magnitude, per-tensor ranking, no adjust (earlier default)
#   adaptive_parp          monolingual adaptive masking with adjust and global ranking (PARP)
#   adaptive_global        monolingual adaptive masking with global ranking, without adjust
#   adaptive_fast_ramp     adaptive_parp reaching the target after 10 % of the steps, masks fixed from 60 %
#   omp                    one-shot magnitude pruning per language and fine-tuning (the baseline, for reference)
#   stage 1  train and score every variant of --variants (skipping finished ones)
#   stage 2  <exp>/dev_results.md: PER per language and PER/WER averages on dev, one row per finished variant and
#            seed, and mean ± std over seeds for variants run with several
# Time on the 2-core CPU machine: about 4-5 min per variant at the default budget (160 steps, 0.75 s per step, plus
# export and decoding), about an hour for all; a stopped study resumes at its current variant's current stage.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 2 "last stage to run"
option dense_checkpoint ../mini/exp/multi/checkpoints/best.ckpt "the dense multilingual model"
option data ../mini/data "folder of its data directories (train_/dev_<lang>, lang_<lang>)"
option langs "de fr es it" "its languages"
option sparsity 0.7 "target sparsity of every variant"
option variants "dap_saliency dap_parp dap_parp_weight dap_saliency_accum dap_saliency_cap dap_saliency_margin \
dap_saliency_global dap_parp_tensor dap_saliency_dt20 dap_saliency_linear adaptive_magnitude adaptive_parp \
dap_saliency_global_cap adaptive_global adaptive_fast_ramp omp" \
  "variants to run, in this order"
option method_config conf/pathways.yaml "the base method settings every variant overlays"
option budget_scale 1.0 "scales every variant's training steps (0.05: a few-minute check)"
option seed 0 "training seed of every variant (N > 0: folders <variant>_seed<N>)"
option exp exp_dev "output folder"
parse_options "$@"

source "$here/../common.sh"
cd "$here"

# variant -> "method init criterion" and the YAML overlay on the method config
declare -A method overlay
# Each overlay sets the re-evaluation of its method in full (dap.reevaluation / adaptive.reevaluation, which override
# the base config's), so a variant means the same whatever the base config chose.
tensor="{dap: {reevaluation: {ranking: tensor}}}"
method[dap_saliency]="dap middle saliency";        overlay[dap_saliency]=$tensor
method[dap_saliency_accum]="dap middle saliency"
overlay[dap_saliency_accum]="{criteria: {saliency: {accumulate: true}}, dap: {reevaluation: {ranking: tensor}}}"
method[dap_saliency_cap]="dap middle saliency"
overlay[dap_saliency_cap]="{dap: {reevaluation: {ranking: tensor, max_swap_fraction: 0.1}}}"
method[dap_saliency_margin]="dap middle saliency"
overlay[dap_saliency_margin]="{dap: {reevaluation: {ranking: tensor, margin: 0.2}}}"
method[dap_saliency_global]="dap middle saliency"
overlay[dap_saliency_global]="{dap: {reevaluation: {ranking: global}}}"
method[dap_saliency_global_cap]="dap middle saliency"
overlay[dap_saliency_global_cap]="{dap: {reevaluation: {ranking: global, max_swap_fraction: 0.1}}}"
method[dap_parp]="dap middle magnitude"
overlay[dap_parp]="{dap: {reevaluation: {adjust: true, ranking: global}}}"
method[dap_parp_weight]="dap middle magnitude"
overlay[dap_parp_weight]="{dap: {reevaluation: {adjust: true, ranking: global, adjust_from: weight}}}"
method[dap_parp_tensor]="dap middle magnitude"
overlay[dap_parp_tensor]="{dap: {reevaluation: {adjust: true, ranking: tensor}}}"
method[dap_saliency_dt20]="dap middle saliency"
overlay[dap_saliency_dt20]="{interval: 20, dap: {reevaluation: {ranking: tensor}}}"
method[dap_saliency_linear]="dap middle saliency"
overlay[dap_saliency_linear]="{ramp_shape: linear, dap: {reevaluation: {ranking: tensor}}}"
method[adaptive_magnitude]="adaptive - -"
overlay[adaptive_magnitude]="{adaptive: {reevaluation: {adjust: false, ranking: tensor}}}"
method[adaptive_parp]="adaptive - -"
overlay[adaptive_parp]="{adaptive: {reevaluation: {adjust: true, ranking: global}}}"
method[adaptive_global]="adaptive - -"
overlay[adaptive_global]="{adaptive: {reevaluation: {adjust: false, ranking: global}}}"
method[adaptive_fast_ramp]="adaptive - -"
overlay[adaptive_fast_ramp]="{ramp_fraction: 0.1, stop_fraction: 0.6,
  adaptive: {reevaluation: {adjust: true, ranking: global}}}"
method[omp]="omp - -";                             overlay[omp]="{}"
for v in $variants; do
  [ -n "${method[$v]:-}" ] || usage_error "--variants: unknown variant '$v' (see the list at the top of $0)"
done
[ -d "$data" ] || usage_error "--data $data: no such folder (the mini recipe's data: run recipes/mini/run.sh first)"
data_abs=$(cd "$data" && pwd)
mkdir -p "$exp/data" "$exp/conf"
for l in $langs; do  # dev scored where prune run scores test
  ln -sfn "$data_abs/train_$l" "$exp/data/train_$l"
  ln -sfn "$data_abs/dev_$l" "$exp/data/dev_$l"
  ln -sfn "$data_abs/dev_$l" "$exp/data/test_$l"
  ln -sfn "$data_abs/lang_$l" "$exp/data/lang_$l"
done

[[ "$seed" =~ ^[0-9]+$ ]] || usage_error "--seed $seed: a non-negative integer"
for v in $variants; do
  [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ] || break
  run=$v seed_opt=()
  [ "$seed" -gt 0 ] && run=${v}_seed$seed seed_opt=(--set "seed=$seed")
  if compgen -G "$exp/$run/sparsity*/*/result.json" > /dev/null; then
    echo "skip: $run (result.json exists)"
    continue
  fi
  read -r m init criterion <<< "${method[$v]}"
  python - "$method_config" "${overlay[$v]}" "$exp/conf/$v.yaml" <<'PY'
import sys
import yaml
from asrprune.training.config import deep_merge
base = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
yaml.safe_dump(deep_merge(base, yaml.safe_load(sys.argv[2])), open(sys.argv[3], "w", encoding="utf-8"),
               sort_keys=False)
PY
  extra=()
  [ "$m" = dap ] && extra=(--init "$init" --criterion "$criterion")
  log "dev study: $run ($m ${extra[*]}) at sparsity $sparsity"
  asrprune prune run --method "$m" "${extra[@]}" --sparsity "$sparsity" --dense-checkpoint "$dense_checkpoint" \
    --data "$exp/data" --langs $langs --train-config conf/finetune.yaml "${seed_opt[@]}" \
    --config "$exp/conf/$v.yaml" --budget-scale "$budget_scale" --exp "$exp/$run"
done

[ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] || exit 0
log "stage 2: $exp/dev_results.md"
python - "$exp" $variants > "$exp/dev_results.md" <<'PY'
import sys
from pathlib import Path
from asrprune.pruning.masking.report import dev_study_table
print(dev_study_table(Path(sys.argv[1]), sys.argv[2:]), end="")
PY
cat "$exp/dev_results.md"
