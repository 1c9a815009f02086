"""``sdme synth``: a synthetic SDME corpus with controlled semantic deviation, written built.

What it is for: testing models, the trainer and the benchmark under known conditions — how
often each modality deviates from the clip's emotion, how imbalanced the classes are, how noisy
and how long the feature sequences are — with ground-truth relevance, at any scale (a
CMU-MOSEI-sized corpus is generated in bounded memory). It is not emotion data: no model
trained on it learns anything about people.

Generative process (every random draw comes from ``numpy.random.default_rng`` seeded by
``(seed, stream, index...)``, so a seed fixes the corpus and a clip's content does not depend on
how the clips are chunked):

1. **Speakers and videos.** Clips are grouped into videos (1 + Poisson(``clips_per_video`` - 1)
   clips each) and videos into speakers (1 + Poisson(``videos_per_speaker`` - 1) videos each),
   in order, until there are ``n`` clips. Each clip gets a start time (durations uniform in
   2–10 s, back to back within its video).
2. **True emotion.** ``label`` ~ the class prior: explicit ``class_weights``, or a Zipf law
   p_k ∝ (k + 1)^-``imbalance`` over the taxonomy order (``imbalance`` = 0: balanced; 1: the
   first class is 7x as frequent as the seventh of seven).
3. **Expressed emotion per modality.** Modality m expresses the true emotion, or with
   probability ``deviation_rate[m]`` another one, uniform over the other classes (a
   semantically irrelevant signal). With probability ``missing_rate`` a modality is missing
   (length 0; never all three), as a clip without a face or an audio track would be.
   *Structured deviation* (all off by default; each documented in :class:`SynthConfig`), after
   patterns reported for real affective data — display rules that make people mask or tone
   down some felt emotions in some channels (Ekman & Friesen, 1969, "The repertoire of
   nonverbal behavior"; Matsumoto, 1990), the smile as the most common mask (Ekman, Friesen &
   O'Sullivan, 1988, "Smiles when lying"), and low-intensity expressions being the ones that
   observers of a single channel misread:

   a. *Expressivity*: each (clip, modality) gets an expressivity ``a`` uniform in
      ``[1 - expressivity[m], 1]``; the modality's prototype is scaled by ``a`` and its noise by
      ``2 - a`` (a weaker, noisier signal), and its chance of deviating rises to
      ``deviation_rate[m] + expressivity_coupling * (1 - a)``.
   b. *Mask emotions*: a modality that deviates by chance shows, with probability
      ``mask_rate[m]``, one of ``mask_classes`` (uniformly, other than the true emotion)
      instead of a uniformly drawn class.
   c. *Display rules*: ``(modality, felt, shown, p)``: in a clip whose true emotion is
      ``felt``, the modality shows ``shown`` with probability ``p`` (e.g. anger worded
      politely: the text shows neutral; sadness masked by a smile: the face shows happiness).

   Their draws come from a stream of their own, so a corpus that does not use them is the one
   the generator made before they existed (same bytes, same fingerprint).
4. **Unimodal votes.** ``annotators`` simulated annotators per present modality each vote the
   expressed emotion with probability ``annotator_accuracy``, else a uniformly drawn other
   class. ``label_<m>``, ``relevance_<m>`` and ``deviation`` are then computed from the votes by
   ``sdme.relevance`` like any corpus's. With the defaults (one annotator, accuracy 1) they are
   the ground truth: ``label_<m>`` is the expressed emotion and ``relevance_<m>`` is 1.0 when
   it equals ``label``, else 0.0.
5. **Features.** Modality m has a prototype direction per class (random unit vectors times
   ``separation``, drawn once per seed) and each speaker a style offset (a random direction of
   norm ``speaker_effect``). A clip's sequence has a length uniform in ``seq_len[m]`` and step
   t = prototype[expressed] + speaker offset + ``noise`` · z_t, where z is a smooth random walk
   around 0: an AR(1) process z_0 = e_0, z_t = ρ z_{t-1} + sqrt(1 - ρ²) e_t with e ~ N(0, I)
   and ρ = ``smoothness`` (unit variance at every step).
6. **Splits.** Speaker- and video-disjoint, stratified by label (``sdme.splits``).

Rows are generated ``chunk_size`` clips at a time and streamed to parquet shards by
``sdme.built.write_built_dataset`` (the one writer of built datasets); the dataset card says the
corpus is synthetic and records every parameter. The corpus is the built source ``synth``
(``sdme/sources/synth.py``: ``sdme import synth``, alias ``sdme synth``), whose command-line
options are :class:`SynthConfig`'s fields (their ``help`` metadata). The module is a little over
600 lines because the process, its parameters, presets and the card that documents them are
kept together: the card states what the code does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdme.built import (
    FEAT,
    LENGTH,
    BuildInfo,
    ClipEvent,
    Counts,
    ExtractorRecord,
    FeatureRecord,
    Policy,
    SourceRecord,
    Written,
    clip_row,
    dataset_features,
    utc_now,
    write_built_dataset,
)
from sdme.relevance import compute_relevance
from sdme.schema import DEFAULT_TAXONOMY, MODALITIES, SPLITS, CorpusManifest, RawClip
from sdme.splits import DEFAULT_RATIOS, assign_splits

GENERATOR_NAME = "sdme-synth"
GENERATOR_VERSION = "1"
LICENSE = "CC0-1.0"
#: CMU-MOSEI's feature sizes in MMSA's files (BERT text, COVAREP audio, Facet vision) and its
#: padded sequence lengths (text 50 tokens, audio 500 and vision 375 frames in MMSA's configs).
MOSEI_DIMS: dict[str, int] = {"text": 768, "audio": 74, "vision": 35}
MOSEI_SEQ_LEN: dict[str, tuple[int, int]] = {"text": (10, 50), "audio": (100, 500),
                                             "vision": (75, 375)}
MOSEI_CLIPS = 23_453

# Independent random streams (the second entry of every seed tuple).
_STREAM_META, _STREAM_PROTOTYPES, _STREAM_SPEAKERS, _STREAM_FEATURES = 0, 1, 2, 3
_STREAM_STRUCTURE = 4

#: The structured-deviation parameters and their "off" values. They are left out of the
#: parameter record (and so of the fingerprint) when off, so that corpora made without them
#: keep the fingerprint they had before these parameters existed.
STRUCTURE_OFF: dict[str, Any] = {"display_rules": (), "mask_classes": (), "mask_rate": None,
                                 "expressivity": None, "expressivity_coupling": 0.0}


class SynthError(ValueError):
    """Invalid generator parameters."""


def _option(default: Any, help: str, **meta: Any) -> Any:
    """A :class:`SynthConfig` field whose metadata carries its command-line help (a callable
    default is a factory)."""
    if callable(default):
        return field(default_factory=default, metadata={"help": help, **meta})
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of the synthetic corpus (module docstring).

    Each field's ``help`` metadata says what it is; it is also the help of the command-line
    option of the same name (``sdme import synth --deviation-rate ...``). Per-modality fields
    take one value for every modality or ``text=...,audio=...,vision=...``
    (``sdme.config.parse_text``).
    """

    n: int = _option(1000, "Number of clips.")
    taxonomy: tuple[str, ...] = _option(
        DEFAULT_TAXONOMY, "Emotion categories in label order, comma-separated (default: the "
        "7-class SDME taxonomy).")
    imbalance: float = _option(1.0, "Zipf exponent of the class prior (0: balanced).")
    class_weights: tuple[float, ...] | None = _option(
        None, "Explicit class prior, comma-separated, one per class (overrides --imbalance).")
    deviation_rate: Mapping[str, float] = _option(
        lambda: {m: 0.2 for m in MODALITIES},
        "Probability that a modality expresses another emotion: one value, or "
        "text=P,audio=P,vision=P (default: 0.2).", keys=MODALITIES)
    missing_rate: float = _option(0.0, "Probability that a modality is missing from a clip.")
    noise: float = _option(1.0, "Scale of the random walk around the class prototype.")
    separation: float = _option(2.0, "Norm of the class prototypes.")
    smoothness: float = _option(0.9, "AR(1) coefficient of the random walk, in [0, 1).")
    speaker_effect: float = _option(0.5, "Norm of each speaker's style offset.")
    seq_len: Mapping[str, tuple[int, int]] = _option(
        lambda: dict(MOSEI_SEQ_LEN),
        "Length range per modality, e.g. text=10:50,audio=100:500,vision=75:375 (the "
        "CMU-MOSEI-like default).", keys=MODALITIES)
    dims: Mapping[str, int] = _option(
        lambda: dict(MOSEI_DIMS),
        "Feature size per modality, e.g. text=768,audio=74,vision=35 (the default).",
        keys=MODALITIES)
    annotators: int = _option(1, "Simulated annotators per modality.")
    annotator_accuracy: float = _option(
        1.0, "Probability that an annotator votes the emotion the modality expresses.")
    clips_per_video: float = _option(7.0, "Mean clips per source video.")
    videos_per_speaker: float = _option(3.0, "Mean videos per speaker.")
    split_ratios: Mapping[str, float] = _option(
        lambda: dict(DEFAULT_RATIOS),
        "Target share of clips per split, e.g. train=0.7,validation=0.15,test=0.15.",
        keys=SPLITS)
    seed: int = _option(0, "Seed of everything.")
    display_rules: tuple[tuple[str, str, str, float], ...] = _option(
        (), "Structured deviation (3c): display rules as YAML, [[modality, felt class, shown "
        "class, probability], ...]; at most one rule per (modality, felt class).")
    mask_classes: tuple[str, ...] = _option(
        (), "Classes a deviating modality tends to show (3b), comma-separated.")
    mask_rate: Mapping[str, float] | None = _option(
        None, "Per modality, the probability that a chance deviation shows a mask class (3b): "
        "one value, or text=P,audio=P,vision=P (default: never).", keys=MODALITIES)
    expressivity: Mapping[str, float] | None = _option(
        None, "Per modality, the spread of per-clip expressivity in [0, 1) (3a): one value, or "
        "text=S,audio=S,vision=S (default: every clip fully expressive).", keys=MODALITIES)
    expressivity_coupling: float = _option(
        0.0, "How much a deviation's chance rises as a modality's expressivity falls (3a).")

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise SynthError("invalid synth parameters: " + "; ".join(problems))

    def problems(self) -> list[str]:
        out = []
        k = len(self.taxonomy)
        if self.n < 3:
            out.append(f"n must be >= 3 (one clip per split at least), got {self.n}")
        if k < 2 or len(set(self.taxonomy)) != k:
            out.append(f"taxonomy needs >= 2 distinct classes, got {list(self.taxonomy)}")
        if self.class_weights is not None and (
                len(self.class_weights) != k or min(self.class_weights) < 0
                or sum(self.class_weights) <= 0):
            out.append(f"class_weights needs {k} non-negative weights, not all 0, got "
                       f"{list(self.class_weights)}")
        if self.imbalance < 0:
            out.append(f"imbalance must be >= 0, got {self.imbalance}")
        for name, mapping in (("deviation_rate", self.deviation_rate), ("seq_len", self.seq_len),
                              ("dims", self.dims)):
            if set(mapping) != set(MODALITIES):
                out.append(f"{name} needs exactly the modalities {list(MODALITIES)}, got "
                           f"{sorted(mapping)}")
        if out:
            return out
        for m in MODALITIES:
            if not 0 <= self.deviation_rate[m] <= 1:
                out.append(f"deviation_rate[{m}] must be in [0, 1]")
            lo, hi = self.seq_len[m]
            if not 1 <= lo <= hi:
                out.append(f"seq_len[{m}] must be 1 <= min <= max, got ({lo}, {hi})")
            if self.dims[m] < 1:
                out.append(f"dims[{m}] must be >= 1")
        for name in ("missing_rate", "annotator_accuracy"):
            if not 0 <= getattr(self, name) <= 1:
                out.append(f"{name} must be in [0, 1]")
        if not 0 <= self.smoothness < 1:
            out.append(f"smoothness must be in [0, 1), got {self.smoothness}")
        for name in ("noise", "separation", "speaker_effect"):
            if getattr(self, name) < 0:
                out.append(f"{name} must be >= 0")
        if self.annotators < 1:
            out.append("annotators must be >= 1")
        if self.clips_per_video < 1 or self.videos_per_speaker < 1:
            out.append("clips_per_video and videos_per_speaker must be >= 1")
        return out + self._structure_problems()

    def _structure_problems(self) -> list[str]:
        out = []
        names = set(self.taxonomy)
        seen = set()
        for rule in self.display_rules:
            if len(rule) != 4:
                out.append(f"display rule {rule!r}: expected (modality, felt, shown, p)")
                continue
            m, felt, shown, p = rule
            if m not in MODALITIES or felt not in names or shown not in names or felt == shown:
                out.append(f"display rule {tuple(rule)!r}: needs a modality of "
                           f"{list(MODALITIES)} and two different classes of the taxonomy")
            if not 0 <= p <= 1:
                out.append(f"display rule {tuple(rule)!r}: probability must be in [0, 1]")
            if (m, felt) in seen:
                out.append(f"more than one display rule for ({m}, {felt})")
            seen.add((m, felt))
        unknown = [c for c in self.mask_classes if c not in names]
        if unknown:
            out.append(f"mask_classes {unknown} are not classes of the taxonomy")
        for name, high in (("mask_rate", 1.0), ("expressivity", 0.999)):
            mapping = getattr(self, name)
            if mapping is None:
                continue
            if set(mapping) != set(MODALITIES):
                out.append(f"{name} needs exactly the modalities {list(MODALITIES)}")
            elif not all(0 <= mapping[m] <= high for m in MODALITIES):
                out.append(f"{name} values must be in [0, {high:g}]")
        if self.mask_rate is not None and any(self.mask_rate.values()) and \
                not self.mask_classes:
            out.append("mask_rate (--mask-rate) needs mask_classes (--mask-classes): the "
                       "classes a deviating modality's mask shows")
        if self.expressivity_coupling < 0:
            out.append("expressivity_coupling must be >= 0")
        return out

    @property
    def structured(self) -> bool:
        """Whether any structured-deviation mechanism is on."""
        return any(not _is_off(getattr(self, k), v) for k, v in STRUCTURE_OFF.items())

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["taxonomy"] = list(self.taxonomy)
        data["class_weights"] = list(self.class_weights) if self.class_weights else None
        for key in ("deviation_rate", "dims", "split_ratios"):
            data[key] = {m: getattr(self, key)[m] for m in getattr(self, key)}
        data["seq_len"] = {m: list(self.seq_len[m]) for m in self.seq_len}
        for key, off in STRUCTURE_OFF.items():
            value = getattr(self, key)
            if _is_off(value, off):
                del data[key]  # see STRUCTURE_OFF
            elif isinstance(value, Mapping):
                data[key] = {m: value[m] for m in value}
            else:
                data[key] = [list(v) if isinstance(v, tuple) else v for v in value] \
                    if isinstance(value, tuple) else value
        return data

    def fingerprint(self) -> str:
        """sha256 of the canonical parameter JSON (with the generator version)."""
        blob = json.dumps({"generator": GENERATOR_NAME, "version": GENERATOR_VERSION,
                           "config": self.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def class_prior(self) -> np.ndarray:
        if self.class_weights is not None:
            weights = np.asarray(self.class_weights, dtype=np.float64)
        else:
            weights = (np.arange(len(self.taxonomy)) + 1.0) ** -self.imbalance
        return weights / weights.sum()


#: Named, fully spelled-out parameter sets (``sdme synth --preset NAME``). Every parameter is
#: written here, so that a change of :class:`SynthConfig`'s defaults does not change a preset.
#: ``benchmark`` is the corpus of the SDME benchmark task ``sdme-synth-discrete@1`` (which pins
#: its dataset fingerprint): 2,400 clips of the 7-class taxonomy with a moderately imbalanced
#: prior (Zipf exponent 0.5: the first class about 2.6x as frequent as the last), modalities
#: that deviate with probability 0.2 (text), 0.3 (audio) and 0.4 (vision), short sequences of
#: small feature vectors (so that five seeds of one model train in minutes on two CPU cores)
#: and ground-truth relevance (one faithful simulated annotator per modality); no structured
#: deviation. ``structured`` (dataset ``synth-structured``) adds every structured-deviation
#: mechanism: 3,600 clips (so that the test split has over 500), chance deviation 0.1 / 0.15 /
#: 0.2, display rules (text: anger and disgust worded neutrally; audio: fear in a controlled,
#: neutral voice; vision: sadness masked by a smile, fear shown as surprise), chance deviations
#: showing neutral or happiness half of the time, per-clip expressivity spreads 0.5 / 0.5 / 0.6
#: with coupling 0.5, class prototypes of norm 4, and shorter sequences.
PRESETS: dict[str, dict[str, Any]] = {
    "benchmark": {
        "n": 2400,
        "taxonomy": DEFAULT_TAXONOMY,
        "imbalance": 0.5,
        "class_weights": None,
        "deviation_rate": {"text": 0.2, "audio": 0.3, "vision": 0.4},
        "missing_rate": 0.0,
        "noise": 1.0,
        "separation": 2.0,
        "smoothness": 0.9,
        "speaker_effect": 0.5,
        "seq_len": {"text": (8, 20), "audio": (20, 50), "vision": (10, 30)},
        "dims": {"text": 32, "audio": 16, "vision": 16},
        "annotators": 1,
        "annotator_accuracy": 1.0,
        "clips_per_video": 7.0,
        "videos_per_speaker": 3.0,
        "split_ratios": {"train": 0.7, "validation": 0.15, "test": 0.15},
        "seed": 0,
        "display_rules": (),
        "mask_classes": (),
        "mask_rate": None,
        "expressivity": None,
        "expressivity_coupling": 0.0,
    },
    "structured": {
        "n": 3600,
        "taxonomy": DEFAULT_TAXONOMY,
        "imbalance": 0.5,
        "class_weights": None,
        "deviation_rate": {"text": 0.1, "audio": 0.15, "vision": 0.2},
        "missing_rate": 0.0,
        "noise": 1.0,
        "separation": 4.0,
        "smoothness": 0.9,
        "speaker_effect": 0.5,
        "seq_len": {"text": (6, 16), "audio": (12, 30), "vision": (8, 20)},
        "dims": {"text": 32, "audio": 16, "vision": 16},
        "annotators": 1,
        "annotator_accuracy": 1.0,
        "clips_per_video": 7.0,
        "videos_per_speaker": 3.0,
        "split_ratios": {"train": 0.7, "validation": 0.15, "test": 0.15},
        "seed": 0,
        "display_rules": (("text", "anger", "neutral", 0.5),
                          ("text", "disgust", "neutral", 0.3),
                          ("audio", "fear", "neutral", 0.3),
                          ("vision", "sadness", "happiness", 0.5),
                          ("vision", "fear", "surprise", 0.3)),
        "mask_classes": ("neutral", "happiness"),
        "mask_rate": {"text": 0.5, "audio": 0.5, "vision": 0.5},
        "expressivity": {"text": 0.5, "audio": 0.5, "vision": 0.6},
        "expressivity_coupling": 0.5,
    },
}

#: The built dataset name each preset is written to by ``sdme synth --preset NAME``.
PRESET_DATASETS: dict[str, str] = {"benchmark": "synth", "structured": "synth-structured"}


def _is_off(value: Any, off: Any) -> bool:
    if value is None or off is None:
        return value is None or (isinstance(value, Mapping) and not any(value.values()))
    if isinstance(off, tuple):
        return len(value) == 0
    return value == off


def preset_config(name: str) -> SynthConfig:
    """The :class:`SynthConfig` of a named preset (:data:`PRESETS`).

    Raises:
        SynthError: Unknown preset.
    """
    if name not in PRESETS:
        raise SynthError(f"unknown synth preset {name!r}; known: {', '.join(PRESETS)}")
    values = PRESETS[name]
    return SynthConfig(**{k: dict(v) if isinstance(v, dict) else v for k, v in values.items()})


# --- the clip plan (metadata only; cheap to hold for every clip) --------------------------------

@dataclass(frozen=True)
class ClipPlan:
    """Everything about one clip but its features."""

    index: int
    clip: RawClip
    speaker: int
    expressed: dict[str, int]
    lengths: dict[str, int]
    expressivity: dict[str, float] = field(default_factory=dict)  # empty: all 1 (step 3a)


def _other_class(rng: np.random.Generator, k: int, avoid: int) -> int:
    return (avoid + 1 + int(rng.integers(k - 1))) % k


class _Structure:
    """The structured-deviation draws of step 3 (a-c), from their own random stream."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        index = {name: c for c, name in enumerate(config.taxonomy)}
        self.rules = {(m, index[felt]): (index[shown], float(p))
                      for m, felt, shown, p in config.display_rules}
        self.masks = [index[c] for c in config.mask_classes]
        self.mask_rate = config.mask_rate or {}
        self.spread = config.expressivity or {}

    def apply(self, clip: int, j: int, modality: str, y: int, expressed: int,
              chance: float) -> tuple[int, float]:
        """(expressed class, expressivity) of one modality of one clip.

        ``expressed`` and ``chance`` are step 3's chance deviation and the uniform draw that
        decided it.
        """
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, _STREAM_STRUCTURE, clip, j])
        a = 1.0 - self.spread.get(modality, 0.0) * float(rng.random())
        deviates = chance < min(1.0, cfg.deviation_rate[modality]
                                + cfg.expressivity_coupling * (1.0 - a))
        if deviates and expressed == y:  # made to deviate by its low expressivity
            expressed = _other_class(rng, len(cfg.taxonomy), y)
        if deviates and float(rng.random()) < self.mask_rate.get(modality, 0.0):
            masks = [c for c in self.masks if c != y]
            if masks:
                expressed = masks[int(rng.integers(len(masks)))]
        rule = self.rules.get((modality, y))
        if rule is not None and float(rng.random()) < rule[1]:
            expressed = rule[0]
        return expressed, a


def plan_clips(config: SynthConfig) -> list[ClipPlan]:
    """Speakers, videos, labels, expressed emotions, votes and lengths of every clip."""
    rng = np.random.default_rng([config.seed, _STREAM_META])
    k = len(config.taxonomy)
    prior = config.class_prior()
    labels = rng.choice(k, size=config.n, p=prior)
    structure = _Structure(config) if config.structured else None
    plans: list[ClipPlan] = []
    speaker = 0
    while len(plans) < config.n:
        n_videos = 1 + int(rng.poisson(config.videos_per_speaker - 1))
        for v in range(n_videos):
            video_id = f"syn_s{speaker:05d}_v{v:02d}"
            n_clips = 1 + int(rng.poisson(config.clips_per_video - 1))
            start = 0.0
            for _ in range(n_clips):
                i = len(plans)
                if i >= config.n:
                    break
                y = int(labels[i])
                duration = float(rng.uniform(2.0, 10.0))
                present = [m for m in MODALITIES if rng.random() >= config.missing_rate]
                if not present:
                    present = [MODALITIES[int(rng.integers(len(MODALITIES)))]]
                expressed, lengths, votes, expressivity = {}, {}, {}, {}
                for j, m in enumerate(MODALITIES):
                    chance = rng.random()
                    deviates = chance < config.deviation_rate[m]
                    expressed[m] = _other_class(rng, k, y) if deviates else y
                    if structure is not None:
                        expressed[m], expressivity[m] = structure.apply(
                            i, j, m, y, expressed[m], chance)
                    lo, hi = config.seq_len[m]
                    length = int(rng.integers(lo, hi + 1))
                    lengths[m] = length if m in present else 0
                    ballots = []
                    for _ in range(config.annotators):
                        faithful = rng.random() < config.annotator_accuracy
                        vote = expressed[m] if faithful else _other_class(rng, k, expressed[m])
                        ballots.append(config.taxonomy[vote])
                    votes[m] = tuple(ballots) if m in present else ()
                clip = RawClip(
                    clip_id=f"syn{i:06d}", video_id=video_id, speaker_id=f"syn_s{speaker:05d}",
                    start=round(start, 3), end=round(start + duration, 3),
                    text=f"synthetic utterance {i}", language="",
                    label=config.taxonomy[y], votes_text=votes["text"],
                    votes_audio=votes["audio"], votes_vision=votes["vision"])
                start += duration
                plans.append(ClipPlan(i, clip, speaker, expressed, lengths, expressivity))
        speaker += 1
    return plans


# --- features ------------------------------------------------------------------------------------

def _unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    raw = rng.standard_normal((rows, dim))
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    return raw / np.where(norms > 0, norms, 1.0)


def class_prototypes(config: SynthConfig) -> dict[str, np.ndarray]:
    """``[classes, dim]`` prototype matrix per modality (norm ``separation``)."""
    out = {}
    for j, m in enumerate(MODALITIES):
        rng = np.random.default_rng([config.seed, _STREAM_PROTOTYPES, j])
        out[m] = (config.separation * _unit_rows(rng, len(config.taxonomy), config.dims[m])
                  ).astype(np.float32)
    return out


def speaker_offset(config: SynthConfig, speaker: int, modality: str) -> np.ndarray:
    rng = np.random.default_rng([config.seed, _STREAM_SPEAKERS, speaker,
                                 MODALITIES.index(modality)])
    return (config.speaker_effect * _unit_rows(rng, 1, config.dims[modality])[0]
            ).astype(np.float32)


def chunk_features(config: SynthConfig, plans: Sequence[ClipPlan], modality: str,
                   prototypes: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The ``[T_i, dim]`` sequences of one modality for a chunk of clips (module docstring)."""
    j = MODALITIES.index(modality)
    dim = config.dims[modality]
    lengths = [p.lengths[modality] for p in plans]
    steps = max(lengths + [1])
    z = np.zeros((len(plans), steps, dim), dtype=np.float32)
    for row, plan in enumerate(plans):
        if lengths[row]:
            rng = np.random.default_rng([config.seed, _STREAM_FEATURES, plan.index, j])
            z[row, : lengths[row]] = rng.standard_normal((lengths[row], dim), dtype=np.float32)
    rho = np.float32(config.smoothness)
    innovation = np.float32(math.sqrt(1.0 - config.smoothness ** 2))
    if rho:
        for t in range(1, steps):
            z[:, t] *= innovation
            z[:, t] += rho * z[:, t - 1]
    z *= np.float32(config.noise)
    strength = np.ones(len(plans), dtype=np.float32)
    if config.structured:  # step 3a: a weaker (scaled by a), noisier (2 - a) signal
        strength = np.asarray([p.expressivity.get(modality, 1.0) for p in plans],
                              dtype=np.float32)
        z *= (2.0 - strength)[:, None, None]
    # (x * 1.0 is exact: a corpus without expressivity keeps its bytes)
    centers = np.stack([strength[r] * prototypes[modality][p.expressed[modality]]
                        + speaker_offset(config, p.speaker, modality)
                        for r, p in enumerate(plans)])
    z += centers[:, None, :]
    return [z[row, : lengths[row]] for row in range(len(plans))]


def _rows(config: SynthConfig, plans: Sequence[ClipPlan], chunk_size: int,
          prototypes: Mapping[str, np.ndarray], progress: Any) -> Iterator[dict[str, Any]]:
    for lo in range(0, len(plans), chunk_size):
        chunk = plans[lo: lo + chunk_size]
        feats = {m: chunk_features(config, chunk, m, prototypes) for m in MODALITIES}
        for r, plan in enumerate(chunk):
            row = clip_row(plan.clip, config.taxonomy)
            for m in MODALITIES:
                row[FEAT[m]] = feats[m][r]
                row[LENGTH[m]] = plan.lengths[m]
            yield row
        progress.update(len(chunk))


# --- the corpus ----------------------------------------------------------------------------------

@dataclass
class SynthReport:
    """What :func:`synthesize` wrote.

    Attributes:
        out_dir: The built dataset folder.
        counts: Rows per split.
        deviation: Clips per deviation level (0..3).
        label_counts: Clips per class.
        timings: Seconds per stage.
    """

    out_dir: Path
    counts: dict[str, int]
    deviation: dict[int, int]
    label_counts: dict[str, int]
    timings: dict[str, float]

    def summary(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        return (f"synthesised {sum(self.counts.values())} clips ({counts}) -> {self.out_dir}\n"
                f"  labels: {self.label_counts}\n  deviation: {self.deviation}\n"
                f"  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))


def _manifest(config: SynthConfig) -> CorpusManifest:
    protocol = {
        "annotators_per_modality": config.annotators,
        "annotator_accuracy": config.annotator_accuracy,
        "description": ("simulated: each annotator sees one modality and votes the emotion it "
                        "expresses with probability annotator_accuracy, otherwise another "
                        "class (sdme.synth, step 4)"),
    }
    return CorpusManifest(
        name="synth", version=GENERATOR_VERSION, license=LICENSE, taxonomy=config.taxonomy,
        annotation_protocol=protocol,
        description=(f"A **synthetic** corpus made by `sdme synth` (generator "
                     f"{GENERATOR_NAME} v{GENERATOR_VERSION}): {config.n} clips whose text, "
                     "audio and vision feature sequences are random walks around per-class "
                     "prototypes, with a known, controlled rate of semantic deviation per "
                     "modality. It contains no recording of any person. Use it to test "
                     "models, the trainer and the benchmark under known conditions, and to "
                     "measure how methods cope with deviation, class imbalance, noise and "
                     "sequence length; results on it say nothing about real emotion data."),
        citation="Generated data; cite the SDME toolkit.")


def _structure_text(config: SynthConfig) -> str:
    """Step 3's structured-deviation sentences for the card (empty when none is on)."""
    if not config.structured:
        return ""
    parts = []
    if config.expressivity:
        spread = ", ".join(f"{m} {config.expressivity[m]:g}" for m in MODALITIES)
        parts.append(f"each (clip, modality) has an expressivity a uniform in [1 - s, 1] (s: "
                     f"{spread}) that scales its prototype by a and its noise by 2 - a, and "
                     f"raises its chance of deviating by {config.expressivity_coupling:g} x "
                     f"(1 - a)")
    if config.mask_rate and config.mask_classes:
        rates = ", ".join(f"{m} {config.mask_rate[m]:g}" for m in MODALITIES)
        parts.append(f"a modality that deviates by chance shows a mask emotion "
                     f"({', '.join(config.mask_classes)}) with probability {rates}")
    if config.display_rules:
        rules = "; ".join(f"{m}: {felt} shown as {shown} with probability {p:g}"
                          for m, felt, shown, p in config.display_rules)
        parts.append(f"display rules: {rules}")
    return "\n   Structured deviation (`sdme.synth` step 3): " + "; ".join(parts) + "."


def _card_sections(config: SynthConfig) -> dict[str, str]:
    dev = ", ".join(f"{m} {config.deviation_rate[m]:.0%}" for m in MODALITIES)
    prior = ", ".join(f"{t} {p:.3f}" for t, p in zip(config.taxonomy, config.class_prior(),
                                                      strict=True))
    lens = ", ".join(f"{m} {config.seq_len[m][0]}-{config.seq_len[m][1]} steps x "
                     f"{config.dims[m]}" for m in MODALITIES)
    creation = f"""Generated by `sdme synth` (`sdme.synth`, generator {GENERATOR_NAME}
v{GENERATOR_VERSION}, seed {config.seed}; every parameter is in `build_info.json` under
`generator`). The same parameters and seed give the same tables.

1. Speakers and videos: about {config.clips_per_video:g} clips per video and
   {config.videos_per_speaker:g} videos per speaker (Poisson counts).
2. True emotion (`label`) drawn from the class prior: {prior}.
3. Each modality expresses the true emotion or, with probability {dev}, another class drawn
   uniformly (a semantically irrelevant signal); a modality is missing with probability
   {config.missing_rate:g}.{_structure_text(config)}
4. Features: per-class prototype directions of norm {config.separation:g} per modality, plus a
   speaker style offset of norm {config.speaker_effect:g}, plus {config.noise:g} x a
   unit-variance AR(1) random walk (coefficient {config.smoothness:g}); lengths uniform in
   {lens}.
5. Splits are speaker- and video-disjoint and stratified by label (`sdme.splits`)."""
    annotations = f"""Taxonomy (`label` ClassLabel order): {', '.join(config.taxonomy)}.

The unimodal votes are **simulated**: {config.annotators} annotator(s) per modality, each voting
the emotion the modality expresses with probability {config.annotator_accuracy:g}, otherwise
another class. `label_m`, `relevance_m` and `deviation` are computed from the votes by
`sdme.relevance`, exactly as for a real corpus (majority vote; share of votes equal to `label`;
number of deviating modalities).""" + ("""
With one annotator of accuracy 1 they are the ground truth: `label_m` is the emotion the
modality expresses and `relevance_m` is 1.0 when it equals `label`, else 0.0.""" if (
        config.annotators == 1 and config.annotator_accuracy == 1.0) else "")
    limitations = """- Synthetic data: the features are random walks around random prototypes, not
  measurements of people. Use it to test code and to study methods under controlled deviation,
  imbalance and noise; do not report results on it as emotion-recognition results.
- Deviation here is independent across modalities and of the speaker; in real corpora it is
  neither. All three modalities can deviate at once (the clip is then unlearnable)."""
    if config.structured:
        limitations = limitations.replace(
            "Deviation here is independent across modalities and of the speaker",
            "Deviation here depends on the class (display rules), on what masks are common and "
            "on each modality's expressivity, but it is independent across modalities and of "
            "the speaker")
    description = """This is a **synthetic** corpus in SDME's built form, generated by the SDME
toolkit (`sdme synth`). Each row is one simulated clip: a true emotion (`label`), per-modality
relevance fields that say which modalities express it, and text, audio and vision feature
sequences whose content follows the emotion each modality expresses. No person was recorded."""
    return {"description": description, "creation": creation, "annotations": annotations,
            "limitations": limitations,
            "license": f"{LICENSE}: generated data, no rights reserved."}


def synthesize(out_dir: str | os.PathLike, config: SynthConfig | None = None, *,
               chunk_size: int = 64, shard_rows: int | None = None,
               shard_bytes: int | None = None, progress: bool = False) -> SynthReport:
    """Generates the synthetic corpus and writes it as a built SDME dataset.

    Args:
        out_dir: The built dataset folder (replaced whole once complete).
        config: Generator parameters (default: ``SynthConfig()``).
        chunk_size: Clips generated at once (memory grows with it).
        shard_rows: Most rows per parquet shard (default: the writer's).
        shard_bytes: Most feature bytes per parquet shard (default: the writer's).
        progress: Show a progress bar and print the summary to stderr.

    Returns:
        The report (the provenance is in ``build_info.json``).

    Raises:
        SynthError: Invalid parameters, or too few speakers for the splits.
    """
    from tqdm.auto import tqdm

    from sdme import __version__
    from sdme.splits import SplitError

    config = config or SynthConfig()
    if chunk_size < 1:
        raise SynthError("chunk_size must be >= 1")
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    plans = plan_clips(config)
    timings["plan"] = time.perf_counter() - t_start

    t = time.perf_counter()
    clips = [p.clip for p in plans]
    try:
        assignment = assign_splits(clips, ratios=config.split_ratios, seed=config.seed)
    except SplitError as exc:
        speakers = len({c.speaker_id for c in clips})
        raise SynthError(
            f"cannot make speaker-disjoint splits of {config.n} clips: with about "
            f"{config.clips_per_video:g} clips per video and {config.videos_per_speaker:g} "
            f"videos per speaker they come from only {speakers} speaker(s); raise n or lower "
            f"clips_per_video / videos_per_speaker ({exc})") from exc
    timings["split"] = time.perf_counter() - t

    features = dataset_features(config.taxonomy, config.dims)
    prototypes = class_prototypes(config)
    bar = tqdm(total=len(plans), disable=not progress, desc="synth", unit="clip",
               file=sys.stderr)
    relevance = [compute_relevance(c, config.taxonomy) for c in clips]
    deviation = {level: sum(r.deviation == level for r in relevance) for level in range(4)}
    missing = [ClipEvent(p.clip.clip_id, m, "synthetic_missing", "drawn missing (missing_rate)",
                         "missing")
               for p in plans for m in MODALITIES if p.lengths[m] == 0]
    extractors = {}
    for m in MODALITIES:
        params = {"seq_len": list(config.seq_len[m]), "noise": config.noise,
                  "separation": config.separation, "smoothness": config.smoothness,
                  "speaker_effect": config.speaker_effect,
                  "deviation_rate": config.deviation_rate[m]}
        extractors[m] = ExtractorRecord(
            name="synth", version=GENERATOR_VERSION, dim=config.dims[m], params=params,
            fingerprint=hashlib.sha256(json.dumps({"modality": m, "dim": config.dims[m],
                                                   **params}, sort_keys=True).encode()
                                       ).hexdigest())
    t = time.perf_counter()

    def provenance(written: Written) -> BuildInfo:
        bar.close()
        timings["generate_write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        return BuildInfo(
            sdme_version=__version__, created=utc_now(),
            source=SourceRecord(name="synth", version=GENERATOR_VERSION, license=LICENSE,
                                fingerprint=config.fingerprint(), extra={"synthetic": True}),
            generator={"name": GENERATOR_NAME, "version": GENERATOR_VERSION,
                       "config": config.to_dict()},
            extractors=extractors,
            features={m: FeatureRecord.of(m, config.dims[m]) for m in MODALITIES},
            taxonomy=list(config.taxonomy),
            languages=[],
            relevance={"source": "votes", "annotators": config.annotators,
                       "annotator_accuracy": config.annotator_accuracy},
            counts=Counts(raw_clips=len(plans), rows=len(plans), splits=written.counts,
                          dropped=0,
                          missing={m: sum(e.modality == m for e in missing) for m in MODALITIES},
                          deviation={str(k): v for k, v in deviation.items()}),
            policy=Policy(dropped=[], missing=["synthetic_missing"],
                          description="no clip is dropped; a modality drawn missing "
                                      "(missing_rate) has length 0 and no votes"),
            split=assignment.report.to_dict(),
            data_files=written.data_files,
            dropped=[],
            missing=missing,
            build={"seed": config.seed, "chunk_size": chunk_size,
                   "shard_rows": written.shard_rows, "shard_bytes": written.shard_bytes},
            timings={k: round(v, 3) for k, v in timings.items()},
        )

    splits = ((split, _rows(config, [p for p in plans if assignment.splits[p.clip.clip_id] ==
                                     split], chunk_size, prototypes, bar))
              for split in assignment.present())
    try:
        info = write_built_dataset(out_dir, features=features, splits=splits,
                                   provenance=provenance, manifest=_manifest(config),
                                   sections=_card_sections(config), shard_rows=shard_rows,
                                   shard_bytes=shard_bytes)
    finally:
        bar.close()

    report = SynthReport(out_dir=Path(out_dir), counts=dict(info.counts.splits),
                         deviation=deviation,
                         label_counts={t: sum(c.label == t for c in clips)
                                       for t in config.taxonomy},
                         timings=info.timings)
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


__all__ = ["GENERATOR_VERSION", "MOSEI_CLIPS", "MOSEI_DIMS", "MOSEI_SEQ_LEN", "PRESETS",
           "PRESET_DATASETS", "STRUCTURE_OFF",
           "ClipPlan", "SynthConfig", "SynthError", "SynthReport", "chunk_features",
           "class_prototypes", "plan_clips", "preset_config", "synthesize"]
