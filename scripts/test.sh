#!/usr/bin/env bash
# Runs the test suite (slow cases included) in the project's environment.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(bash "$repo/scripts/bootstrap.sh")"
cd "$repo"
# Tests never touch the user's data dir.
export SDME_DATA_DIR="${SDME_TEST_DATA_DIR:-$(mktemp -d)}"
exec "$bin/python" -m pytest -x -q "$@"
