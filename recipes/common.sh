# Sourced by every recipe script: installs what is missing (../bootstrap.sh, a no-op when up to date), puts the
# asrprune command on PATH, and defines log() (time of day and seconds since the script started). When
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
