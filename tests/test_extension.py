"""Adding an extension costs one file: a model, a metric, a task, a source or an extractor dropped
into a temporary copy of the packages is registered, shows up where users look (the CLI lists),
and is picked up by its registry's contract test with no other edit (issue #9).

One copy of the three packages and the tests gets one throwaway file per registry; one Python
process checks the registries and the command lines, and one ``pytest --collect-only`` checks that
the contract tests parametrized over the registries now include each new entry.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

THROWAWAY: dict[str, str] = {
    "baselines/models/throwaway_model.py": '''
        """A throwaway model: the mean of each modality's steps, concatenated, one linear layer."""
        import torch
        from torch import nn

        from baselines.models.base import EmotionModel, ModelConfig, ModelOutput, register_model
        from baselines.models.blocks import masked_mean, modality_input, model_modalities


        class ThrowawayModel(EmotionModel):
            config_class = ModelConfig

            def __init__(self, config):
                super().__init__(config)
                self.modalities = model_modalities(config)
                self.head = nn.Linear(sum(config.input_dims[m] for m in self.modalities),
                                      config.out_dim)

            def forward(self, batch):
                pooled = [masked_mean(*modality_input(batch, m, self.config.input_dims[m]))
                          for m in self.modalities]
                return ModelOutput(logits=self.head(torch.cat(pooled, dim=-1)))


        register_model("throwaway_model", ThrowawayModel, description="mean pooling, linear")
    ''',
    "sdme/metrics/throwaway_metric.py": '''
        """A throwaway metric: the share of clips classified wrongly."""
        import numpy as np

        from sdme.metrics import register_metric


        @register_metric("throwaway_error_rate", task_type="discrete", higher_is_better=False,
                         description="share of clips classified wrongly")
        def throwaway_error_rate(y_true, y_pred, num_classes):
            return float(np.mean(np.asarray(y_true) != np.asarray(y_pred)))
    ''',
    "benchmark/tasks/throwaway_task.py": '''
        """A throwaway task on the sample corpus, scored by the throwaway metric too."""
        from benchmark.tasks import Task, register_task

        register_task(Task(
            name="throwaway-task", version=1, dataset="sample",
            description="A task declared in one record.", task_type="discrete",
            metrics=("accuracy", "throwaway_error_rate"), main_score="accuracy",
            source="sample"))
    ''',
    "sdme/sources/throwaway_source.py": '''
        """A throwaway raw source: some of the bundled sample's clips as a corpus of their own."""
        from contextlib import contextmanager
        from dataclasses import dataclass, field

        from sdme.sources import SourceCard, register_source
        from sdme.sources.sample import SUBSET_CLIPS, write_subset


        @dataclass(frozen=True)
        class ThrowawayOptions:
            clips: int = field(default=2, metadata={"help": "How many clips to take."})


        @contextmanager
        def fixture(workdir):
            yield {"clips": 2}


        CARD = SourceCard(title="Throwaway", summary="Two clips of the sample.",
                          homepage="(none)", license="as the sample", obtain="ships with sdme",
                          citation="(none)")


        @register_source("throwaway_source", kind="raw", options=ThrowawayOptions, card=CARD,
                         fixture=fixture)
        def deliver(target, clips=2, *, progress=False):
            return write_subset(target, SUBSET_CLIPS[:clips], name="throwaway_source")
    ''',
    "sdme/features/throwaway_extractor.py": '''
        """A throwaway audio extractor: RMS energy of 100 ms frames of the 16 kHz waveform."""
        import numpy as np

        from sdme.features import Extractor, ExtractorInfo, register_extractor
        from sdme.media.audio import load_audio
        from sdme.schema import clip_audio_path


        @register_extractor("audio", "throwaway_rms")
        class ThrowawayRMS(Extractor):
            def __init__(self, params=None, device="cpu"):
                self.device = str(device)
                self.info = ExtractorInfo(name="throwaway_rms", version="1", modality="audio",
                                          dim=1, params={"frame_ms": 100})

            def extract(self, raw_dir, clip):
                samples = load_audio(clip_audio_path(raw_dir, clip.clip_id)).samples.numpy()
                frames = samples[: len(samples) // 1600 * 1600].reshape(-1, 1600)
                return np.sqrt((frames ** 2).mean(axis=1, keepdims=True)).astype(np.float32)
    ''',
}

CHECK = '''
import json, sys
from click.testing import CliRunner

import baselines
from benchmark.__main__ import main as benchmark_main
from benchmark.tasks import get_task
from sdme.cli import main as sdme_main
from sdme.features import list_extractors
from sdme.metrics import METRICS
from sdme.sources import list_sources, source_command

model = baselines.create_model("throwaway_model", input_dims={"text": 4}, num_classes=3)
print(json.dumps({
    "model": "throwaway_model" in baselines.list_models() and model.model_name,
    "metric": "throwaway_error_rate" in METRICS,
    "task": get_task("throwaway-task").key,
    "source": "throwaway_source" in list_sources() and source_command("throwaway_source"),
    "extractor": "throwaway_rms" in list_extractors("audio")["audio"],
    "sdme_list": CliRunner().invoke(sdme_main, ["list"]).output,
    "sdme_download_help": CliRunner().invoke(sdme_main, ["download", "--help"]).output,
    "benchmark_list": CliRunner().invoke(benchmark_main, ["list"]).output,
}))
'''


@pytest.fixture(scope="module")
def extended_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("extended")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("sdme", "baselines", "benchmark", "tests"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for relative, source in THROWAWAY.items():
        (root / relative).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return root


def _run(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_one_file_registers_and_reaches_the_command_lines(extended_copy):
    import json

    proc = _run(extended_copy, "-c", CHECK)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["model"] == "throwaway_model"
    assert found["metric"] is True
    assert found["task"] == "throwaway-task@1"
    assert found["source"] == ("sdme download throwaway_source && "
                               "sdme build throwaway_source")
    assert found["extractor"] is True
    assert "throwaway_source" in found["sdme_list"]
    assert "throwaway_rms" in found["sdme_list"]
    assert "throwaway_source" in found["sdme_download_help"]
    assert "throwaway-task" in found["benchmark_list"]
    assert "throwaway_model" in found["benchmark_list"]


@pytest.mark.slow
def test_contract_tests_cover_the_new_file_without_test_edits(extended_copy):
    """The registry-wide contract tests run on the new entries, and pass."""
    proc = _run(extended_copy, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider",
                "tests/test_models.py", "tests/test_metrics.py", "tests/test_sources.py",
                "tests/test_extractors.py", "-k", "throwaway")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    collected = proc.stdout  # -rA lists every test that ran, by id
    assert "PASSED tests/test_models.py::test_forward_backward[throwaway_model-full]" in collected
    assert "test_metrics.py::" in collected and "throwaway_error_rate" in collected
    assert "PASSED tests/test_sources.py::test_fixture_delivers_through_its_command_and_" \
           "validates[throwaway_source]" in collected
    assert "PASSED tests/test_extractors.py::test_extractor_contract[audio/throwaway_rms]" \
           in collected
