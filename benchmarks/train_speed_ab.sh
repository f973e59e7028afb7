#!/usr/bin/env bash
# Training speed of the current code against a base commit (default: the last commit before the speed work), side
# by side: `asrprune train` of the mini config on the mini recipe's data, alternating base and current in each
# round, each round with its own seed (so the dev PER pairs show run-to-run noise). Prints and appends one JSON line
# per run: wall seconds of the run, utterances/s of the training steps (train_summary.json), dev PER at the end.
#   usage: benchmarks/train_speed_ab.sh [--base COMMIT] [--steps N] [--rounds R] [--out FILE.jsonl] [--other_load TEXT]
#          [--only base|current]   (one side only, e.g. to complete a round that was cut short)
#          [--first_round N]       (start at round N of R, e.g. to add round 2 to a file that holds round 1)
# Needs recipes/mini stages 1-3 and its feature cache (run.sh --stop_stage 3; asrprune dump-features ...).
# Both run in this checkout's .venv; the base code is a git worktree put first on PYTHONPATH.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
base=f2784a4 steps=300 rounds=2 out=/dev/null other_load="not stated" only="" first_round=1
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --out) out=$(realpath -m "$2"); shift 2 ;;
    --only) only=$2; shift 2 ;;
    --first_round) first_round=$2; shift 2 ;;
    --other_load) other_load=$2; shift 2 ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'git -C "$repo" worktree remove --force "$work/base" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git -C "$repo" worktree add -q "$work/base" "$base"
current=$(git -C "$repo" rev-parse HEAD)$(git -C "$repo" diff --quiet HEAD -- asrprune || echo "+uncommitted")
base_sha=$(git -C "$repo" rev-parse "$base")
cd "$repo/recipes/mini"
python=$repo/.venv/bin/python
for round in $(seq "$first_round" "$rounds"); do
  seed=$((round - 1))
  order="base current"; [ $((round % 2)) = 0 ] && order="current base"
  for code in $order; do
    [ -z "$only" ] || [ "$only" = "$code" ] || continue
    exp=$work/exp_${code}_$round
    pythonpath=""; [ "$code" = base ] && pythonpath=$work/base
    start=$(date +%s.%N)
    PYTHONPATH=$pythonpath $python -m asrprune.cli train --config conf/train.yaml --tokens data/phones.txt \
      --train data/train_{de,fr,es,it} --dev data/dev_{de,fr,es,it} --exp "$exp" \
      --set trainer.max_steps=$steps --set trainer.val_check_interval=$steps --set seed=$seed \
      --set data.feature_cache=dump > "$exp.log" 2>&1 || { tail -5 "$exp.log"; exit 1; }
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    line=$($python - "$exp/train_summary.json" "$code" "$round" "$seed" "$wall" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
print(json.dumps({"code": sys.argv[2], "round": int(sys.argv[3]), "seed": int(sys.argv[4]),
                  "wall_seconds": round(float(sys.argv[5]), 1), "utterances_per_second": summary["utterances_per_second"],
                  "dev_per": round(summary["best_dev_per"], 2), "precision": summary["precision"]}))
PY
)
    line=${line%\}}", \"steps\": $steps, \"base_commit\": \"$base_sha\", \"current_commit\": \"$current\", \"date\": \"$(date -u +%FT%TZ)\", \"machine\": \"$(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores\", \"other_load\": \"$other_load\"}"
    echo "$line"; echo "$line" >> "$out"
  done
done
