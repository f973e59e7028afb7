#!/usr/bin/env bash
# Create .venv with asrprune and its dependencies, and make sure espeak-ng is installed.
# Idempotent: a second run with an unchanged setup.cfg does nothing (it checks a stamp file).
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv
stamp=$venv/.asrprune-installed
want=$(sha256sum setup.cfg pyproject.toml | sha256sum | cut -c1-16)

if ! command -v espeak-ng >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing espeak-ng with apt-get"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "bootstrap: espeak-ng is missing. Install it (Debian/Ubuntu: sudo apt-get install espeak-ng;" \
         "macOS: brew install espeak-ng) and run this again." >&2
    exit 1
  fi
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python=${PYTHON:-python3}
[ -x $venv/bin/python ] || "$python" -m venv $venv
# pip >= 25 refuses espnet's dependency ci_sdr (a direct URL dependency in one of its extras); 24.x installs it.
$venv/bin/pip install -q --disable-pip-version-check "pip>=23,<25"
echo "bootstrap: installing asrprune and dependencies into $venv (first time: a few minutes, ~5 GB with torch)"
$venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
echo "$want" > "$stamp"
echo "bootstrap: done"
