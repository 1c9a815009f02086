"""The built source ``synth``: the synthetic controlled-deviation corpus of ``sdme.synth``.

``sdme import synth`` (alias ``sdme synth``) generates it: every :class:`~sdme.synth.SynthConfig`
field is an option (``--n``, ``--deviation-rate text=0.3,audio=0.2,vision=0.4``, ...), or
``--preset NAME`` fixes all of them at once (``sdme.synth.PRESETS``; ``benchmark`` is the
dataset of the task ``sdme-synth-discrete``, ``structured`` that of ``sdme-synth-structured``;
both fingerprints are pinned) and then
excludes every other generator option. The generator, its parameters and its card are in
``sdme/synth.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sdme.sources import SourceCard, register_source
from sdme.synth import (
    LICENSE,
    PRESET_DATASETS,
    SynthConfig,
    SynthError,
    SynthReport,
    preset_config,
    synthesize,
)


@dataclass(frozen=True)
class SynthOptions(SynthConfig):
    """Options of ``sdme import synth``: the generator parameters, or a named preset."""

    preset: str | None = field(default=None, metadata={
        "help": "A fixed, named parameter set (sdme.synth.PRESETS): 'benchmark' makes the "
                "dataset 'synth' of the task sdme-synth-discrete, 'structured' the dataset "
                "'synth-structured' (structured deviation) of the task sdme-synth-structured. "
                "Excludes the other generator options."})


@contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """A small corpus: 60 clips of short, narrow sequences, some modalities missing, three
    simulated annotators per modality."""
    yield {"n": 60, "dims": {"text": 5, "audio": 3, "vision": 2},
           "seq_len": {"text": (1, 3), "audio": (2, 4), "vision": (1, 2)},
           "missing_rate": 0.1, "annotators": 3, "annotator_accuracy": 0.8,
           "clips_per_video": 2.0, "videos_per_speaker": 1.0, "seed": 4}


CARD = SourceCard(
    title="SDME synthetic controlled-deviation corpus",
    summary="Generate a synthetic corpus with controlled semantic deviation, as a built "
            "dataset.",
    homepage="sdme/synth.py (the generator and its documented process)",
    license=f"{LICENSE} (generated data, no rights reserved)",
    obtain="Nothing to obtain: generated locally by `sdme import synth` (alias `sdme synth`); "
           "the same parameters and seed give the same tables.",
    citation="Generated data; cite the SDME toolkit.")


#: Where a corpus made from explicit parameters goes by default: not a preset's folder, so that
#: generating one never overwrites the dataset a pinned task reads.
CUSTOM_DATASET = "synth-custom"


def dataset_name(options: Any) -> str:
    """synth-custom, or the folder of the preset's dataset (synth, synth-structured)."""
    return PRESET_DATASETS.get(options.get("preset") or "", CUSTOM_DATASET)


@register_source("synth", kind="built", options=SynthOptions, card=CARD, fixture=fixture,
                 dataset_name=dataset_name)
def deliver(target: str | os.PathLike, *, preset: str | None = None, progress: bool = False,
            **params: Any) -> SynthReport:
    """Generates the corpus into ``target`` from ``params`` (:class:`SynthConfig` fields) or
    from ``preset``.

    Raises:
        SynthError: Invalid parameters, an unknown preset, or a preset given with other
            parameters.
    """
    from sdme.config import ConfigError, from_mapping

    if preset is not None:
        if params:
            given = ", ".join("--" + name.replace("_", "-") for name in params)
            raise SynthError(f"--preset {preset} fixes every generator parameter; drop {given}")
        config = preset_config(preset)
    else:
        try:
            config = from_mapping(SynthConfig, params, what="synth")
        except ConfigError as exc:
            raise SynthError(str(exc)) from None
    return synthesize(target, config, progress=progress)


__all__ = ["SynthOptions", "deliver"]
