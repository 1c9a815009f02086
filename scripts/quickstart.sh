#!/usr/bin/env bash
# The main job on the embedded default: fetch the bundled sample corpus, validate it, build the
# dataset, run the benchmark protocol for mren on it, submit the results and render the
# leaderboard. Usage: bash scripts/quickstart.sh
# (SDME_DATA_DIR chooses where data goes; default ~/.cache/sdme. Re-running reuses the
# feature cache and replaces the results.)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(bash "$repo/scripts/bootstrap.sh")"
export PATH="$bin:$PATH"
data="$(python -c 'from sdme.paths import data_dir; print(data_dir())')"

sdme download
sdme validate --raw sample
sdme build sample --workers 2
sdme validate --built sample
python -m benchmark run --model mren
python -m benchmark submit "$data/results/mren/sdme-sample-discrete.json"
python -m benchmark leaderboard
echo
echo "Leaderboard: open file://$data/leaderboard/index.html (Markdown: $data/leaderboard/index.md)"
