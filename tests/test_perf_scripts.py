"""The measuring scripts of ``perf/`` run end to end on a small dataset (their figures are only
meaningful at scale; here they must run, write their JSON and check what they claim to check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sdme.synth import SynthConfig, synthesize

REPO = Path(__file__).resolve().parents[1]


def test_bench_run_times_every_stage_of_a_real_run(tmp_path):
    dataset = tmp_path / "small"
    synthesize(dataset, SynthConfig(n=90, dims={"text": 8, "audio": 5, "vision": 4},
                                    seq_len={"text": (2, 6), "audio": (3, 9), "vision": (2, 5)},
                                    clips_per_video=3, videos_per_speaker=2))
    before = sorted(p.relative_to(dataset) for p in dataset.rglob("*"))
    out = tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SDME_DATA_DIR": str(tmp_path / "data"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "perf" / "bench_run.py"), "--dataset",
                           str(dataset), "--threads", "1", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    seconds, calls = figures["seconds"], figures["calls"]
    assert calls["train_epoch"] == 1 and calls["robustness"] == 1 and calls["validation"] >= 1
    assert seconds["train_epoch"] > 0 and seconds["total"] >= sum(
        seconds[s] for s in ("train_epoch", "validation", "robustness"))
    assert figures["one_time_imports_s"] > 0
    assert figures["disk"]["hf_cache_bytes"] == 0 and not figures["disk"]["arrow_files"]
    assert not figures["disk"]["dataset_folder_changed"]
    assert set(figures["goals"]) == {"run_at_most_1.5x_epoch", "peak_rss_below_1.5gb",
                                     "no_copy_on_disk"}
    assert figures["goals"]["no_copy_on_disk"] is True
    assert "run / train epoch:" in done.stdout and "test + robustness" in done.stdout
    assert sorted(p.relative_to(dataset) for p in dataset.rglob("*")) == before
