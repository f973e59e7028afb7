#!/usr/bin/env bash
# Re-resolve requirements/lock.txt from setup.cfg's ranges (and uv.txt from uv.in), with hashes, for the machines
# this project runs on: CPython 3.11 on x86-64 Linux. Run it from the repository root, then follow README.md,
# "Refreshing the lock" (bootstrap, tests, the mini recipe) before committing the new lock.
# Extra arguments go to `uv pip compile`, e.g. --upgrade-package lightning.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || ./bootstrap.sh
target=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-header)
.venv/bin/uv pip compile "${target[@]}" "$@" requirements/uv.in -o requirements/uv.txt
.venv/bin/uv pip compile "${target[@]}" "$@" --extra test setup.cfg requirements/uv.in -o requirements/lock.txt
