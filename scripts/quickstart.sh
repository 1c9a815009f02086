#!/usr/bin/env bash
# The main job. Usage: bash scripts/quickstart.sh
#   1. pipeline check: the bundled sample corpus is validated and built from its real media
#      (decoding, faces, audio, text encoder) and mren runs one seed on it: this shows the
#      pipeline works; its numbers are not a result (the page says so too);
#   2. the main task's dataset is made (benchmark.tasks.DEFAULT_TASK; `python -m benchmark
#      dataset`);
#   3. your fresh mren is trained on the main task (5 seeds) and submitted;
#   4. the leaderboard puts your mren beside the shipped reference results of every registered
#      model (benchmark/data/reference/): accuracy by deviation level, relevance AUROC and the plots.
# SDME_DATA_DIR chooses where data goes (default ~/.cache/sdme). Running it again reuses the
# feature cache and the finished seeds (an interrupted run resumes), and replaces the results.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(bash "$repo/scripts/bootstrap.sh")"
export PATH="$bin:$PATH"
cd "$repo"
data="$(python -c 'from sdme.paths import data_dir; print(data_dir())')"
main_task="$(python -c 'from benchmark.tasks import DEFAULT_TASK; print(DEFAULT_TASK)')"
sample_task=sdme-sample-discrete

echo "== 1/4 pipeline check (not a result): the bundled sample, built from its real media"
sdme download
sdme validate --raw sample
sdme build sample --workers 2
sdme validate --built sample
python -m benchmark run --model mren --task "$sample_task" --seeds 0
python -m benchmark submit "$data/results/mren/$sample_task.json" --replace

echo "== 2/4 the main task's dataset ($main_task)"
python -m benchmark dataset --task "$main_task"

echo "== 3/4 your mren on $main_task: 5 seeds"
python -m benchmark run --model mren --task "$main_task"
python -m benchmark submit "$data/results/mren/$main_task.json" --replace

echo "== 4/4 the leaderboard: your mren beside the shipped reference results"
python -m benchmark leaderboard
echo
echo "Leaderboard: open file://$data/leaderboard/index.html (Markdown: $data/leaderboard/index.md)"
