set -e
cd recipes/mini   # of the calibration-1 clone (commit caebad4), after its recipe run
start=$(date +%s)
../../.venv/bin/asrprune train --config conf/train.yaml --tokens data/phones.txt --exp exp/multi2000 --train data/train_de data/train_fr data/train_es data/train_it --dev data/dev_de data/dev_fr data/dev_es data/dev_it --set trainer.max_steps=2000 --set trainer.val_check_interval=500
for s in test_de test_fr test_es test_it transfer_de transfer_fr transfer_es transfer_it; do
  l=${s#*_}
  ../../.venv/bin/asrprune decode --checkpoint exp/multi2000/checkpoints/best.ckpt --data data/$s -o exp/multi2000/decode_$s --lexicon data/lang_$l/lexicon.txt
done
echo $(( $(date +%s) - start )) > exp/multi2000/wall
