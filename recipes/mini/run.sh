#!/usr/bin/env bash
# Mini recipe: synthesise a small de/fr/es/it corpus in CommonVoice format, prepare Kaldi data directories with
# IPA phone transcripts, train one multilingual phone-CTC conformer, decode every language's test set and score.
# Runs on one 2-core CPU machine in minutes. Each stage is resumable; --stage/--stop_stage select stages.
#   stage 1  synthesise the corpus (espeak-ng)      stage 4  train (resumes from exp/.../last.ckpt)
#   stage 2  import it (CommonVoice importer)        stage 5  decode test sets (greedy PER, lexicon WER)
#   stage 3  shared phone inventory                  stage 6  report: one table of every language
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

stage=1
stop_stage=6
langs="de fr es it"
train_config=conf/train.yaml
exp=exp/multi_flat
train_args=()          # extra --set overrides for training, e.g. --train_set trainer.max_steps=300
synth_args=()          # extra flags for asrprune synth

while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --langs) langs=$2; shift 2 ;;
    --train_config) train_config=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --train_set) train_args+=(--set "$2"); shift 2 ;;
    --synth_arg) synth_args+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; echo "options: --stage N --stop_stage N --langs \"de fr es it\"" \
      "--train_config FILE --exp DIR --train_set KEY=VALUE --synth_arg FLAG"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

"$root/bootstrap.sh"
export PATH="$root/.venv/bin:$PATH"
cd "$here"
start=$(date +%s)
log() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - start ))s] $*"; }

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: synthesise corpus ($langs)"
  asrprune synth --out corpora --langs "${langs// /,}" "${synth_args[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for l in $langs; do
    log "stage 2: import CommonVoice-format corpus: $l"
    asrprune prep-commonvoice --release corpora/cv-corpus-synth-1.0 --lang "$l" --out data
  done
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: shared phone inventory"
  asrprune make-inventory --lexicons $(for l in $langs; do echo data/lang_$l/lexicon.txt; done) --out data/phones.txt
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: train $exp"
  asrprune train --config "$train_config" --tokens data/phones.txt --exp "$exp" \
    --train $(for l in $langs; do echo data/train_$l; done) \
    --dev $(for l in $langs; do echo data/dev_$l; done) "${train_args[@]}"
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  for l in $langs; do
    log "stage 5: decode test_$l"
    asrprune decode --checkpoint "$exp/checkpoints/best.ckpt" --data data/test_$l \
      --lexicon data/lang_$l/lexicon.txt --out "$exp/decode_test_$l"
  done
fi
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: report"
  asrprune report --out "$exp/RESULTS.md" $(for l in $langs; do echo "$exp/decode_test_$l"; done)
  cat "$exp/RESULTS.md"
fi
log "done"
