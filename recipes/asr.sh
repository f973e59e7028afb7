#!/usr/bin/env bash
# Generic stages shared by every recipe (the role of ESPnet's egs2/TEMPLATE/asr1/asr.sh). A recipe's run.sh
# prepares data/<split>_<lang>/ and data/lang_<lang>/lexicon.txt in its stages 1-2 (with ../data_prep/<corpus>.sh),
# then calls this:
#   stage 3  shared phone inventory of the training languages' lexicons -> $tokens
#   stage 4  fill the feature cache (if the config has one), then train one model on train_<lang> of every
#            language (resumes from $exp/checkpoints/last.ckpt)
#   stage 5  decode each test set: greedy CTC (PER) and lexicon beam search (WER; CER for zh)
#   stage 6  report: one ESPnet-style table of every test set -> $exp/RESULTS.md
# Run from the recipe folder (paths are relative to it).
set -euo pipefail

source "$(dirname "$0")/parse_options.sh"
option stage 3 "first stage to run"
option stop_stage 6 "last stage to run"
option langs "" "training languages, e.g. \"de fr\" (required)"
option train_config conf/train.yaml "training config"
option exp "" "experiment folder (default: exp/<config name>_<langs>)"
option data data "folder of the Kaldi data directories"
option tokens "" "phone inventory file (default: <data>/phones_<langs>.txt)"
option test_sets "" "test sets to decode (default: test_<lang> of every language)"
option_list train_opt "KEY=VALUE, passed to asrprune dump-features and train as --set KEY=VALUE"
option_list decode_opt "FLAG passed to asrprune decode, e.g. --decode_opt --beam-size=100"
parse_options "$@"
[ -n "$langs" ] || usage_error "--langs is required"
[ -n "$exp" ] || exp=exp/$(basename "$train_config" .yaml)_$(echo $langs | tr ' ' '_')
[ -n "$tokens" ] || tokens=$data/phones_$(echo $langs | tr ' ' '_').txt
[ -n "$test_sets" ] || test_sets=$(for l in $langs; do printf 'test_%s ' "$l"; done)

source "$(dirname "$0")/common.sh"
each() { local pattern=$1; shift; for l in $langs; do printf "${pattern} " "$l"; done; }

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "stage 3: phone inventory of $langs -> $tokens"
  asrprune make-inventory --lexicons $(each "$data/lang_%s/lexicon.txt") --out "$tokens"
fi
if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "stage 4: dump features for $train_config"
  asrprune dump-features --config "$train_config" --train $(each "$data/train_%s") --dev $(each "$data/dev_%s") \
    "${train_opt[@]/#/--set=}"
  log "stage 4: train $exp"
  asrprune train --config "$train_config" --tokens "$tokens" --exp "$exp" \
    --train $(each "$data/train_%s") --dev $(each "$data/dev_%s") "${train_opt[@]/#/--set=}"
fi
if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  for set in $test_sets; do
    lang=${set##*_}
    log "stage 5: decode $set"
    asrprune decode --checkpoint "$exp/checkpoints/best.ckpt" --data "$data/$set" \
      --lexicon "$data/lang_$lang/lexicon.txt" --out "$exp/decode_$set" "${decode_opt[@]}"
  done
fi
if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  log "stage 6: report"
  asrprune report --out "$exp/RESULTS.md" $(for set in $test_sets; do echo "$exp/decode_$set"; done)
  cat "$exp/RESULTS.md"
fi
