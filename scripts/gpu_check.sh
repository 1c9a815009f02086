#!/usr/bin/env bash
# The one prepared GPU check (issue #16): every CUDA path of SDME once, in under 8 minutes on one
# GPU. perf/gpu_check.py builds the sample corpus with MTCNN and the text encoder on CUDA and
# trains one epoch of every registered model with bf16 autocast on the synthetic benchmark corpus,
# printing per stage frames/s or samples/s, peak GPU memory and GPU utilisation; then
# perf/bench_encoders.py --device cuda runs if that script exists.
# Exit status: 0 all stages passed; 1 a CUDA path failed (each failure listed at the end);
# 2 no CUDA GPU here (nothing was checked). CI never runs it.
# Usage: bash scripts/gpu_check.sh [perf/gpu_check.py options]   (PYTHON=... to pick the python)
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="${PYTHON:-python3}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
start=$SECONDS

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no nvidia-smi on this machine: no NVIDIA GPU here, nothing was checked" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

status=0
timeout 420 "$py" perf/gpu_check.py "$@" || status=$?
case $status in
  0) ;;
  2) exit 2 ;;
  124) echo "gpu_check: perf/gpu_check.py ran past its 420 s budget: FAILED" >&2; status=1 ;;
  *) echo "gpu_check: perf/gpu_check.py FAILED (exit $status)" >&2; status=1 ;;
esac

if [ -f perf/bench_encoders.py ]; then
  left=$((470 - (SECONDS - start)))
  if [ "$left" -lt 10 ]; then
    echo "gpu_check: no time left for perf/bench_encoders.py: FAILED" >&2; status=1
  elif ! timeout "$left" "$py" perf/bench_encoders.py --device cuda; then
    echo "gpu_check: perf/bench_encoders.py --device cuda FAILED" >&2; status=1
  fi
else
  echo "gpu_check: perf/bench_encoders.py is not in this checkout: skipped"
fi
echo "gpu_check: $([ $status -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
exit $status
