#!/usr/bin/env bash
# Crosslingual recipe (JoinAP): train one multilingual model on de/fr/es/it per output layer (flat, joinap_linear,
# joinap_nonlinear), then recognise Polish and Mandarin zero-shot (add-language: their phones join the token list)
# and few-shot (fine-tune on a small amount of the new language), and write one table.
#   stage 1  synthesise de/fr/es/it/pl (CommonVoice format) and zh (AISHELL format)
#   stage 2  import everything into data/
#   stage 3  per output layer: train and decode de/fr/es/it (../asr.sh stages 3-5)
#   stage 4  per output layer: zero-shot pl and zh (asrprune add-language, decode)
#   stage 5  per output layer: few-shot pl and zh (asrprune train --init, decode)
#   stage 6  one table of every language x output layer x setting -> exp/RESULTS.md
# Few-shot amounts scale the JoinAP paper's 10 min of Polish and 1 h of Mandarin to the synthetic corpus:
# --fewshot_utts utterances of each new language (default 200, about 10 minutes of speech).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

stage=1
stop_stage=6
layers="flat joinap_linear joinap_nonlinear"
seen="de fr es it"
unseen="pl zh"
fewshot_utts=200
synth_opts=()
train_opts=()
finetune_opts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop_stage) stop_stage=$2; shift 2 ;;
    --layers) layers=$2; shift 2 ;;
    --fewshot_utts) fewshot_utts=$2; shift 2 ;;
    --synth_opt) synth_opts+=("$2"); shift 2 ;;
    --train_opt) train_opts+=(--train_opt "$2"); shift 2 ;;
    --finetune_opt) finetune_opts+=(--set "$2"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; echo "options: --stage N --stop_stage N --layers \"flat joinap_linear\"" \
      "--fewshot_utts N --synth_opt FLAG --train_opt KEY=VALUE (multilingual training)" \
      "--finetune_opt KEY=VALUE (few-shot fine-tuning)"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

source "$here/../common.sh"
cd "$here"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "stage 1: synthesise $seen $unseen"
  asrprune synth --out corpora --langs "$(echo $seen $unseen | tr ' ' ',')" "${synth_opts[@]}"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  for l in $seen pl; do
    log "stage 2: import $l"
    asrprune prep-commonvoice --release corpora/cv-corpus-synth-1.0 --lang "$l" --out data
  done
  log "stage 2: import zh"
  asrprune prep-aishell --root corpora/aishell-synth --out data
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for layer in $layers; do
    log "stage 3: multilingual $layer"
    ../asr.sh --stage 3 --stop_stage 5 --langs "$seen" --train_config ../mini/conf/train.yaml \
      --exp "exp/multi_$layer" --tokens data/phones_seen.txt --train_opt "model.output_layer.type=$layer" \
      "${train_opts[@]}"
  done
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  for layer in $layers; do
    for l in $unseen; do
      log "stage 4: zero-shot $l with $layer"
      asrprune add-language --checkpoint "exp/multi_$layer/checkpoints/best.ckpt" --lang "$l" \
        --lexicon "data/lang_$l/lexicon.txt" --out "exp/multi_$layer/zero_shot_$l.ckpt"
      asrprune decode --checkpoint "exp/multi_$layer/zero_shot_$l.ckpt" --data "data/test_$l" \
        --lexicon "data/lang_$l/lexicon.txt" --out "exp/multi_$layer/decode_zero_shot_test_$l"
    done
  done
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  for l in $unseen; do
    asrprune subset-data --data "data/train_$l" --utts "$fewshot_utts" --out "data/train_${l}_fewshot"
  done
  for layer in $layers; do
    for l in $unseen; do
      log "stage 5: few-shot $l with $layer"
      asrprune train --config conf/finetune.yaml --init "exp/multi_$layer/zero_shot_$l.ckpt" \
        --train "data/train_${l}_fewshot" --dev "data/dev_$l" --exp "exp/multi_$layer/few_shot_$l" \
        "${finetune_opts[@]}"
      asrprune decode --checkpoint "exp/multi_$layer/few_shot_$l/checkpoints/best.ckpt" --data "data/test_$l" \
        --lexicon "data/lang_$l/lexicon.txt" --out "exp/multi_$layer/decode_few_shot_test_$l"
    done
  done
fi
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: report"
  asrprune crosslingual-table --exp exp --layers $layers --seen $seen --unseen $unseen --out exp/RESULTS.md
  cat exp/RESULTS.md
fi
log "crosslingual recipe done in ${SECONDS} s (stages $stage-$stop_stage)"
