#!/usr/bin/env bash
# Create .venv with asrprune and the exact package versions of requirements/lock.txt, and make sure espeak-ng is
# installed. Idempotent: a second run with an unchanged lock, setup.cfg and pyproject.toml does nothing (it checks a
# stamp file holding their hash). A changed lock reinstalls: `uv pip sync` adds, upgrades and removes packages until
# the venv holds exactly what the lock lists. How to refresh the lock: README.md, "Refreshing the lock".
set -euo pipefail
cd "$(dirname "$0")"
venv=.venv
stamp=$venv/.asrprune-installed
lock=requirements/lock.txt
uv_pin=requirements/uv.txt
# The stamp covers this script too: a changed way of installing (e.g. the bytecode below) redoes the sync.
want=$(sha256sum setup.cfg pyproject.toml "$lock" "$uv_pin" bootstrap.sh | sha256sum | cut -c1-16)

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
# A venv synced from a lock without pip in it (before pip joined the lock) has no pip: bring it back first.
$venv/bin/python -m pip --version >/dev/null 2>&1 || $venv/bin/python -m ensurepip -q
# uv installs the lock several times faster than pip (README, "Install time"); it is itself pinned, with hashes,
# and bootstrapped from pip so that this script stays the only set-up step.
$venv/bin/python -m pip install -q --disable-pip-version-check --require-hashes -r "$uv_pin"
echo "bootstrap: installing the locked environment into $venv (first time: a few minutes, ~5 GB with torch)"
# sync leaves exactly what the lock lists (uv is in it), then asrprune goes in without dependencies: they are all in
# the lock, and tests/project/test_lock.py fails if setup.cfg asks for something the lock does not satisfy.
# --compile-bytecode writes every package's .pyc now: uv does not by default, and where PYTHONDONTWRITEBYTECODE is
# set (it is on this project's machines) Python then compiles torch, scipy and Lightning from source in every
# process, 5-10 s of each recipe command's start-up (README, "Install time").
$venv/bin/uv pip sync -q --python $venv/bin/python --require-hashes --compile-bytecode "$lock"
$venv/bin/uv pip install -q --python $venv/bin/python --no-deps -e .
echo "$want" > "$stamp"
echo "bootstrap: done"
