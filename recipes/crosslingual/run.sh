#!/usr/bin/env bash
# Crosslingual recipe (JoinAP): train one multilingual model on de/fr/es/it per output layer (flat, joinap_linear,
# joinap_nonlinear), then recognise Polish and Mandarin zero-shot (add-language: their phones join the token list)
# and few-shot (fine-tune on a small amount of the new language), and write one table.
#   stage 1  synthesise de/fr/es/it/pl (CommonVoice format) and zh (AISHELL format): ../../data_prep/synth.sh
#   stage 2  import everything into data/: ../../data_prep/synth.sh
#   stage 3  per output layer: train and decode de/fr/es/it (../asr.sh stages 3-5)
#   stage 4  per output layer: zero-shot pl and zh (asrprune add-language, decode)
#   stage 5  per output layer: few-shot pl and zh (asrprune train --init, decode)
#   stage 6  one table of every language x output layer x setting -> exp/RESULTS.md
# Few-shot amounts scale the JoinAP paper's 10 min of Polish and 1 h of Mandarin to the synthetic corpus:
# --fewshot_utts utterances of each new language (default 200, about 10 minutes of speech).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

seen="de fr es it"     # the multilingual model's languages
unseen="pl zh"         # the languages added zero-shot and few-shot

source "$here/../parse_options.sh"
option stage 1 "first stage to run"
option stop_stage 6 "last stage to run"
option layers "flat joinap_linear joinap_nonlinear" "output layers, one multilingual model each"
option fewshot_utts 200 "few-shot training utterances of each new language"
option_list synth_opt "FLAG for asrprune synth, e.g. --synth_opt --train-utts=300"
option_list train_opt "KEY=VALUE for the multilingual training (../asr.sh --train_opt)"
option_list finetune_opt "KEY=VALUE for the few-shot fine-tuning (asrprune train --set)"
parse_options "$@"

source "$here/../common.sh"
cd "$here"

nested_stages 1 2 ../../data_prep/synth.sh --langs "$seen $unseen" --corpora corpora --data data \
  "${synth_opt[@]/#/--synth_opt=}"
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  for layer in $layers; do
    log "stage 3: multilingual $layer"
    ../asr.sh --stage 3 --stop_stage 5 --langs "$seen" --train_config ../mini/conf/train.yaml \
      --exp "exp/multi_$layer" --tokens data/phones_seen.txt --train_opt "model.output_layer.type=$layer" \
      "${train_opt[@]/#/--train_opt=}"
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
        "${finetune_opt[@]/#/--set=}"
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
