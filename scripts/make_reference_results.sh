#!/usr/bin/env bash
# Regenerates the shipped reference results, benchmark/data/reference/ (never written by hand):
#   1. `python -m benchmark reference make`: for every task of benchmark.tasks.REFERENCE_TASKS
#      (its dataset made first) and every registered model, `benchmark run` with the defaults
#      (the protocol's 5 seeds, gzipped predictions) and `benchmark submit --replace` into the
#      store, which re-checks every number from the predictions;
#   2. `python -m benchmark reference check`: every shipped file re-verified against the local
#      dataset, and none stale (model config, train config, task version, missing model);
#   3. the page of the reference results, rendered by headless Chromium to docs/leaderboard.png
#      (the picture the README shows).
# Usage: bash scripts/make_reference_results.sh [options of `reference make`, e.g. --device cuda]
# Resumable: the runs keep their finished seeds in $SDME_DATA_DIR/reference-runs (default
# ~/.cache/sdme/reference-runs); run it again after an interruption. Then commit
# benchmark/data/reference/ and docs/leaderboard.png.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(bash "$repo/scripts/bootstrap.sh")"
export PATH="$bin:$PATH"
cd "$repo"
main_task="$(python -c 'from benchmark.tasks import DEFAULT_TASK; print(DEFAULT_TASK)')"

python -m benchmark reference make "$@"
python -m benchmark reference check
site="$(mktemp -d)"
trap 'rm -rf "$site"' EXIT
python -m benchmark leaderboard --store "$site/none" --out "$site" --task "$main_task"
python -m benchmark screenshot --html "$site/index.html" --out docs/leaderboard.png
du -sh benchmark/data/reference
