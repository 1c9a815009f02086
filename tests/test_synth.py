"""``sdme synth``: the generative process does what its docstring says, deterministically, and
writes a dataset that validates and loads like any built one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdme.config import ConfigError, field_hints, parse_text
from sdme.schema import MODALITIES
from sdme.synth import (
    SynthConfig,
    SynthError,
    class_prototypes,
    plan_clips,
    synthesize,
)
from sdme.validate_built import errors, validate_built

REPO = Path(__file__).resolve().parents[1]
SMALL = {"dims": {"text": 12, "audio": 6, "vision": 4},
         "seq_len": {"text": (2, 6), "audio": (3, 8), "vision": (1, 5)},
         "clips_per_video": 3.0, "videos_per_speaker": 2.0}


def small(**overrides) -> SynthConfig:
    return SynthConfig(**{"n": 120, **SMALL, **overrides})


def tables(out: Path) -> dict[str, pa.Table]:
    found: dict[str, list[Path]] = {}
    for path in sorted((out / "data").glob("*.parquet")):
        found.setdefault(path.name.split("-")[0], []).append(path)
    return {s: pa.concat_tables([pq.read_table(p) for p in ps]) for s, ps in found.items()}


def all_rows(out: Path) -> list[dict]:
    return [r for t in tables(out).values() for r in t.to_pylist()]


def test_small_corpus_validates_and_loads(tmp_path):
    import datasets

    config = small(missing_rate=0.1, annotators=3, annotator_accuracy=0.8)
    report = synthesize(tmp_path / "syn", config)
    assert errors(validate_built(tmp_path / "syn")) == []
    assert sum(report.counts.values()) == 120 and set(report.counts) == {"train", "validation",
                                                                          "test"}
    ds = datasets.load_dataset(str(tmp_path / "syn"), cache_dir=str(tmp_path / "hf"))
    assert ds["train"].features["label"].names == list(config.taxonomy)
    row = ds["train"].with_format("numpy")[0]
    assert row["audio_feat"].shape == (row["audio_len"], 6)
    rows = all_rows(tmp_path / "syn")
    assert any(0 < (r["relevance_text"] or 0) < 1 for r in rows)  # shares of 3 simulated votes
    assert all(len(r["votes_audio"]) in (0, 3) for r in rows)
    info = json.loads((tmp_path / "syn" / "build_info.json").read_text())
    missing = {(e["clip_id"], e["modality"]) for e in info["missing"]}
    assert missing == {(r["clip_id"], m) for r in rows for m in MODALITIES if r[f"{m}_len"] == 0}
    assert missing and all(r["votes_" + m] == [] for r in rows for m in MODALITIES
                           if (r["clip_id"], m) in missing)
    assert info["source"]["synthetic"] is True and info["generator"]["config"]["n"] == 120
    card = (tmp_path / "syn" / "README.md").read_text()
    assert "**synthetic**" in card and "simulated" in card and "`sdme synth`" in card


def test_ground_truth_relevance_and_deviation_rates(tmp_path):
    config = small(n=900, deviation_rate={"text": 0.05, "audio": 0.3, "vision": 0.6}, seed=3)
    synthesize(tmp_path / "syn", config)
    rows = all_rows(tmp_path / "syn")
    plans = {p.clip.clip_id: p for p in plan_clips(config)}
    for m, rate in config.deviation_rate.items():
        deviating = [r[f"label_{m}"] != config.taxonomy[r["label"]] for r in rows]
        assert abs(np.mean(deviating) - rate) < 0.05, m  # binomial sd ~0.016 at n=900
        for r in rows:  # one faithful annotator: fields are the ground truth
            assert r[f"label_{m}"] == config.taxonomy[plans[r["clip_id"]].expressed[m]]
            assert r[f"relevance_{m}"] == (1.0 if r[f"label_{m}"] ==
                                           config.taxonomy[r["label"]] else 0.0)
    assert Counter(r["deviation"] for r in rows)[0] > 0


def test_class_prior_follows_imbalance_or_weights():
    config = SynthConfig(n=4000, imbalance=1.5, **SMALL)
    counts = Counter(p.clip.label for p in plan_clips(config))
    expected = config.class_prior() * 4000
    for k, name in enumerate(config.taxonomy):
        assert abs(counts[name] - expected[k]) < 4 * np.sqrt(expected[k]) + 5
    assert counts[config.taxonomy[0]] > 5 * counts[config.taxonomy[-1]]
    weighted = SynthConfig(n=600, class_weights=(0, 1, 0, 0, 0, 0, 1), **SMALL)
    assert {p.clip.label for p in plan_clips(weighted)} == {"happiness", "disgust"}
    balanced = Counter(p.clip.label for p in plan_clips(SynthConfig(n=7000, imbalance=0,
                                                                    **SMALL)))
    assert max(balanced.values()) < 1.15 * min(balanced.values())


def test_features_follow_the_expressed_emotion(tmp_path):
    config = small(n=300, noise=0.5, speaker_effect=0.3, separation=3.0,
                   deviation_rate={m: 0.3 for m in MODALITIES},
                   seq_len={"text": (20, 30), "audio": (20, 30), "vision": (20, 30)})
    synthesize(tmp_path / "syn", config)
    prototypes = class_prototypes(config)
    for m in MODALITIES:
        hits = []
        for r in all_rows(tmp_path / "syn"):
            mean = np.asarray(r[f"{m}_feat"], dtype=np.float32).mean(axis=0)
            nearest = int(np.argmin(np.linalg.norm(prototypes[m] - mean, axis=1)))
            hits.append(config.taxonomy[nearest] == r[f"label_{m}"])
        assert np.mean(hits) > 0.95, m
    # Lengths stay inside the configured ranges.
    for r in all_rows(tmp_path / "syn"):
        assert all(20 <= r[f"{m}_len"] <= 30 for m in MODALITIES)


def test_smooth_random_walk():
    config = small(n=60, smoothness=0.95, separation=0.0, speaker_effect=0.0,
                   seq_len={"text": (400, 400), "audio": (400, 400), "vision": (400, 400)})
    from sdme.synth import chunk_features

    plans = plan_clips(config)[:20]
    feats = np.stack(chunk_features(config, plans, "audio", class_prototypes(config)))
    assert abs(feats.std() - 1.0) < 0.05  # unit variance at every step
    lag1 = np.mean(feats[:, 1:] * feats[:, :-1]) / feats.var()
    assert abs(lag1 - 0.95) < 0.02


def test_same_seed_same_bytes_and_chunking_does_not_matter(tmp_path):
    config = small(missing_rate=0.05)
    synthesize(tmp_path / "a", config, chunk_size=64)
    synthesize(tmp_path / "b", config, chunk_size=7, shard_rows=1000)
    names = sorted(p.name for p in (tmp_path / "a" / "data").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b" / "data").iterdir())
    for name in names:
        assert (tmp_path / "a" / "data" / name).read_bytes() == \
            (tmp_path / "b" / "data" / name).read_bytes(), name
    synthesize(tmp_path / "c", small(missing_rate=0.05, seed=1))
    assert not tables(tmp_path / "a")["train"].equals(tables(tmp_path / "c")["train"])


def test_splits_are_speaker_disjoint_and_shards_bounded(tmp_path):
    synthesize(tmp_path / "syn", small(n=200), shard_rows=30)
    speakers = {s: set(t.column("speaker_id").to_pylist())
                for s, t in tables(tmp_path / "syn").items()}
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["validation"]
    for path in (tmp_path / "syn" / "data").glob("*.parquet"):
        meta = pq.ParquetFile(path).metadata
        assert meta.num_rows <= 30
    info = json.loads((tmp_path / "syn" / "build_info.json").read_text())
    assert len(info["data_files"]["train"]) == -(-info["counts"]["splits"]["train"] // 30)


# ----------------------------------------------------------------------------- structured deviation


def _shown(config: SynthConfig) -> list[tuple[str, dict[str, str], dict[str, float]]]:
    names = config.taxonomy
    return [(p.clip.label, {m: names[e] for m, e in p.expressed.items()}, p.expressivity)
            for p in plan_clips(config)]


def test_display_rules_show_the_rule_class_for_the_felt_class():
    config = small(n=1500, imbalance=0, deviation_rate={m: 0.0 for m in MODALITIES},
                   display_rules=(("text", "anger", "neutral", 1.0),
                                  ("vision", "sadness", "happiness", 0.5)))
    clips = _shown(config)
    anger = [shown for label, shown, _ in clips if label == "anger"]
    sad = [shown for label, shown, _ in clips if label == "sadness"]
    assert anger and all(s["text"] == "neutral" and s["vision"] == "anger" for s in anger)
    smiling = np.mean([s["vision"] == "happiness" for s in sad])
    assert 0.4 < smiling < 0.6 and all(s["vision"] in ("sadness", "happiness") for s in sad)
    others = [shown for label, shown, _ in clips if label not in ("anger", "sadness")]
    assert all(v == label for (label, shown, _) in clips if label not in ("anger", "sadness")
               for v in shown.values()) and others


def test_mask_emotions_are_what_deviating_modalities_show():
    config = small(n=800, deviation_rate={"text": 0.0, "audio": 0.0, "vision": 1.0},
                   mask_classes=("neutral", "happiness"),
                   mask_rate={"text": 1.0, "audio": 1.0, "vision": 0.8})
    shown = [(label, s["vision"]) for label, s, _ in _shown(config)]
    assert all(v != label for label, v in shown)  # vision always deviates
    masked = np.mean([v in ("neutral", "happiness") for _, v in shown])
    assert masked > 0.8  # 0.8 masked + the chance draws that land on a mask class
    # A clip whose true class is a mask class shows the other mask.
    assert all(v != "neutral" for label, v in shown if label == "neutral")


def test_low_expressivity_is_weaker_noisier_and_deviates_more(tmp_path):
    config = small(n=1200, deviation_rate={m: 0.1 for m in MODALITIES},
                   expressivity={m: 0.9 for m in MODALITIES}, expressivity_coupling=0.8,
                   speaker_effect=0.0, smoothness=0.0,
                   seq_len={"text": (30, 30), "audio": (30, 30), "vision": (30, 30)})
    clips = _shown(config)
    a = np.array([e["audio"] for _, _, e in clips])
    deviates = np.array([s["audio"] != label for label, s, _ in clips])
    assert a.min() >= 0.1 and a.max() <= 1.0
    low, high = deviates[a < 0.4].mean(), deviates[a > 0.8].mean()
    assert low > high + 0.3  # rate 0.1 + 0.8 (1 - a): ~0.66 vs ~0.17
    from sdme.synth import chunk_features

    plans = plan_clips(config)[:300]
    feats = chunk_features(config, plans, "audio", class_prototypes(config))
    strength = np.array([np.linalg.norm(f.mean(0)) for f in feats])
    spread = np.array([f.std(0).mean() for f in feats])
    a = np.array([p.expressivity["audio"] for p in plans])
    assert np.corrcoef(a, strength)[0, 1] > 0.7  # the prototype scaled by a
    assert np.corrcoef(a, spread)[0, 1] < -0.9  # the noise scaled by 2 - a


def test_structure_off_is_the_corpus_made_before_it_existed(tmp_path):
    """Structured options at their off values change no byte and no fingerprint."""
    base = small(missing_rate=0.05)
    off = small(missing_rate=0.05, mask_rate={m: 0.0 for m in MODALITIES},
                expressivity={m: 0.0 for m in MODALITIES}, mask_classes=())
    assert not off.structured and off.to_dict() == base.to_dict()
    assert off.fingerprint() == base.fingerprint()
    assert "display_rules" not in base.to_dict()
    synthesize(tmp_path / "a", base)
    synthesize(tmp_path / "b", off)
    for path in sorted((tmp_path / "a" / "data").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / "data" / path.name).read_bytes()
    on = small(missing_rate=0.05, expressivity={m: 0.5 for m in MODALITIES})
    assert on.structured and on.fingerprint() != base.fingerprint()
    assert on.to_dict()["expressivity"] == {m: 0.5 for m in MODALITIES}


def test_structured_corpus_is_written_and_described(tmp_path):
    config = small(n=150, display_rules=(("text", "anger", "neutral", 0.5),),
                   mask_classes=("neutral",), mask_rate={m: 0.5 for m in MODALITIES},
                   expressivity={m: 0.5 for m in MODALITIES}, expressivity_coupling=0.3)
    synthesize(tmp_path / "syn", config)
    assert errors(validate_built(tmp_path / "syn")) == []
    card = (tmp_path / "syn" / "README.md").read_text()
    assert "Structured deviation" in card and "text: anger shown as neutral" in card
    info = json.loads((tmp_path / "syn" / "build_info.json").read_text())
    assert info["generator"]["config"]["display_rules"] == [["text", "anger", "neutral", 0.5]]


def test_bad_structure_parameters_are_clear_errors():
    for options, message in (
            ({"display_rules": (("face", "anger", "neutral", 0.5),)}, "display rule"),
            ({"display_rules": (("text", "anger", "anger", 0.5),)}, "two different classes"),
            ({"display_rules": (("text", "anger", "neutral", 1.5),)}, "probability"),
            ({"mask_classes": ("calm",)}, r"mask_classes \['calm'\] are not"),
            ({"mask_rate": {m: 0.5 for m in MODALITIES}},
             r"mask_rate \(--mask-rate\) needs mask_classes \(--mask-classes\)"),
            ({"expressivity": {"text": 0.5}}, "expressivity needs exactly the modalities"),
            ({"expressivity_coupling": -1.0}, "expressivity_coupling must be >= 0")):
        with pytest.raises(SynthError, match=message):
            small(**options)


def test_bad_parameters_are_clear_errors():
    with pytest.raises(SynthError, match=r"deviation_rate\[audio\] must be in \[0, 1\]"):
        small(deviation_rate={"text": 0.1, "audio": 1.5, "vision": 0.1})
    with pytest.raises(SynthError, match="class_weights needs 7"):
        small(class_weights=(1.0, 2.0))
    # The command-line text of per-modality options (sdme.config.parse_text).
    hints = field_hints(SynthConfig)

    def cli(name: str, text: str) -> object:
        return parse_text(text, hints[name], name, keys=MODALITIES)

    with pytest.raises(SynthError, match="deviation_rate needs exactly the modalities"):
        small(deviation_rate=cli("deviation_rate", "text=0.1,audio=0.2"))
    with pytest.raises(ConfigError, match="unknown deviation_rate option 'face'"):
        cli("deviation_rate", "text=0.1,audio=0.2,face=0.1")
    with pytest.raises(ConfigError, match="'audio0.2'.*is not KEY=VALUE"):
        cli("deviation_rate", "text=0.1,audio0.2,vision=0.1")
    assert cli("seq_len", "text=2:5,audio=7,vision=1:1") == {
        "text": (2, 5), "audio": (7, 7), "vision": (1, 1)}
    assert cli("deviation_rate", "0.25") == {m: 0.25 for m in MODALITIES}
    assert cli("dims", "text=5,audio=3,vision=2") == {"text": 5, "audio": 3, "vision": 2}
    with pytest.raises(ConfigError, match="option 'dims\\[text\\]'"):
        cli("dims", "text=five,audio=3,vision=2")
    with pytest.raises(SynthError, match="only 1 speaker"):
        synthesize("/nonexistent/never-written", SynthConfig(n=5, **SMALL))


def test_cli_synth(tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    result = CliRunner().invoke(main, [
        "synth", "--n", "60", "--deviation-rate", "text=0,audio=0.5,vision=1",
        "--imbalance", "0", "--seq-len", "text=1:2,audio=2:3,vision=1:1",
        "--dims", "text=5,audio=3,vision=2", "--clips-per-video", "2",
        "--videos-per-speaker", "1", "--seed", "4", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "built" / "synth-custom"  # never a pinned task's folder
    rows = all_rows(out)
    assert len(rows) == 60 and errors(validate_built(out)) == []
    assert all(r["deviation"] >= 1 and r["label_text"] == ["neutral", "happiness", "sadness",
                                                           "anger", "surprise", "fear",
                                                           "disgust"][r["label"]]
               for r in rows)
    bad = CliRunner().invoke(main, ["synth", "--n", "10", "--deviation-rate", "2",
                                    "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "deviation_rate[text] must be in [0, 1]" in bad.output


@pytest.mark.slow
def test_memory_stays_bounded_at_scale(tmp_path):
    """3000 clips of CMU-MOSEI-sized features (~640 MB of float32) in well under that."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking (pytest) process.
    code = ("import sys; from sdme.synth import SynthConfig, synthesize; "
            "synthesize(sys.argv[1], SynthConfig(n=3000)); "
            "print([line.split()[1] for line in open('/proc/self/status') "
            "if line.startswith('VmHWM:')][0])")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big")], env=env,
                          capture_output=True, text=True, timeout=600, check=True)
    peak_mb = int(done.stdout.split()[-1]) / 1024
    data_mb = sum(p.stat().st_size for p in (tmp_path / "big" / "data").iterdir()) / 2**20
    assert data_mb > 500
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB for {data_mb:.0f} MB of shards"
