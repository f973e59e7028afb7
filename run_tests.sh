#!/usr/bin/env bash
# Install what the tests need (bootstrap.sh), then run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
./bootstrap.sh
exec .venv/bin/python -m pytest "$@"
