# Sourced by every recipe and data_prep/ script after its options are parsed (../parse_options.sh, so that --help
# answers without this): installs what is missing (../bootstrap.sh, a no-op when up to date), puts the asrprune
# command on PATH, and defines log() (time of day and seconds since the script started) and nested_stages(). When
# RECIPE_TIMES names a file, log() also appends "<unix seconds><TAB><message>" to it, so a recipe's stage times
# (across nested scripts such as ../asr.sh) can be read back afterwards (benchmarks/recipe_record.py).
asrprune_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$asrprune_root/bootstrap.sh"
export PATH="$asrprune_root/.venv/bin:$PATH"
recipe_start=$(date +%s)
log() {
  echo "[$(date +%H:%M:%S) +$(( $(date +%s) - recipe_start ))s] $*"
  if [ -n "${RECIPE_TIMES:-}" ]; then printf '%s\t%s\n' "$(date +%s)" "$*" >> "$RECIPE_TIMES"; fi
}

# nested_stages FIRST LAST SCRIPT [ARGS...]: run the stages FIRST..LAST of SCRIPT (numbered as this script's own
# stages FIRST..LAST) that lie within this script's --stage..--stop_stage: SCRIPT gets ARGS and the overlap as
# --stage/--stop_stage; nothing runs when there is no overlap.
nested_stages() {
  local first=$(( stage > $1 ? stage : $1 )) last=$(( stop_stage < $2 ? stop_stage : $2 ))
  shift 2
  if [ "$first" -le "$last" ]; then "$@" --stage "$first" --stop_stage "$last"; fi
}
