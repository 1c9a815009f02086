"""MMSA feature files (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2): import as built SDME datasets,
and export built SDME datasets back to that format.

MMSA (Yu et al., https://github.com/thuiar/MMSA, MIT license) publishes the four corpora as
pre-extracted features in pickles: ``aligned_50.pkl`` / ``unaligned_50.pkl`` (CMU-MOSI,
CMU-MOSEI), ``unaligned_39.pkl`` (CH-SIMS) and ``sims_unaligned.pkl`` (CH-SIMS v2). Each is a
dict ``{"train", "valid", "test"}`` of dicts of arrays over the N clips of the split:

=======================  ==================================================================
``raw_text``             (N,) transcripts
``text``                 (N, L, 768) BERT features, zero-padded
``text_bert``            (N, 3, L) BERT input ids, attention mask, segment ids (optional)
``audio``, ``vision``    (N, Ta, Da), (N, Tv, Dv), zero-padded
``audio_lengths``        (N,) valid audio steps (``vision_lengths`` likewise; absent in
                         aligned files)
``id``                   (N,) ``"<video>$_$<clip>"``
``regression_labels``    (N,) sentiment score: [-3, 3] (MOSI/MOSEI) or [-1, 1] (SIMS)
``regression_labels_T``  unimodal scores for text, audio (``_A``), vision (``_V``) (SIMS)
=======================  ==================================================================

These files hold features, not media, so this importer writes a *built* dataset directly
(``sdme.writer``) rather than delivering a raw corpus: it is not a download source of
``sdme.sources``'s registry. The mapping, written into every card and ``build_info.json``:

- **Safety.** The pickle is read with ``sdme.safe_pickle`` (numpy arrays and plain containers
  only; anything else is refused before it runs). Its sha256 is checked against
  :data:`KNOWN_FILES`; a mismatch is a warning naming the file. The published hashes are not
  recorded yet (``sha256=None``), so every file is reported *unverified* until they are.
- **Rows.** One per clip. ``clip_id`` is MMSA's ``id``; ``video_id`` is its part before
  ``$_$``, and so is ``speaker_id`` (the corpora have one speaker per source video, or, for the
  SIMS corpora, no speaker ids: the video stands in for the speaker). ``start``/``end`` are
  null (not in the files). Splits are MMSA's (``valid`` becomes ``validation``).
- **Lengths.** ``text_len`` = the position of the last 1 in the ``text_bert`` attention mask
  (plus one), else the padded length L; ``audio_len``/``vision_len`` = ``audio_lengths`` /
  ``vision_lengths`` (clipped to the padded length), else the padded length (aligned files: the
  padding is kept, as MMSA feeds it). A length of 0 marks the modality missing for that clip.
  ``text_tokens`` keeps ``text_bert`` as ``[text_len, 3]`` rows (ids, mask, segment).
- **Non-finite values** (CMU-MOSEI's audio has ``-inf``) inside the kept sequences are counted
  per split and modality, printed, and recorded in ``build_info.json`` (``nonfinite``); the
  policy is ``zero`` by default (replace them with 0 and keep the clip), or ``drop`` (drop the
  clip, recorded with its reason) or ``error`` (refuse the file). The default is ``zero``
  because MOSEI, the largest corpus, cannot be imported otherwise; the report says how many
  values were replaced.
- **Labels.** ``score`` = ``regression_labels`` (float32). ``label`` = the 3-class sentiment
  (``negative``, ``neutral``, ``positive``) derived from the score by ``sdme.scores``:
  sign of the score for MOSI/MOSEI, MMSA's (-0.1, 0.1] neutral bin for SIMS.
- **Relevance.** CH-SIMS / v2 unimodal scores go to ``score_text/score_audio/score_vision``
  and, by ``sdme.scores.score_relevance``, to ``label_<m>`` (the discretised unimodal score),
  ``relevance_<m>`` = clip(1 - |score_m - score| / range, 0, 1) and ``deviation`` (modalities
  whose label differs from ``label``). MOSI/MOSEI have no unimodal labels: the relevance fields
  are null. ``votes_<m>`` stay empty: no votes are invented.

Export (:func:`export_mmsa`) writes the same structure from any built dataset: features
zero-padded to the longest sequence of each modality over all splits, ``audio_lengths`` /
``vision_lengths`` (and ``text_lengths``, an SDME addition MMSA ignores), ``text_bert`` when the
dataset has ``text_tokens``, ``regression_labels`` (and ``_T/_A/_V``) when it has scores,
``classification_labels`` (the ``label`` index) always, and ``classification_labels_T/A/V``
(indices of ``label_<m>``) when every clip has them. Importing an exported file gives the same
tables back.

Corpora: CMU-MOSI (Zadeh et al., 2016), CMU-MOSEI (Zadeh et al., 2018), CH-SIMS (Yu et al.,
2020), CH-SIMS v2 (Liu et al., 2022); each under its own terms, for research use.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdme.schema import MODALITIES, CorpusManifest, RawClip, sha256_file
from sdme.scores import SENTIMENT_TAXONOMY, discretise, get_scale, score_relevance

SPLIT_NAMES: dict[str, str] = {"train": "train", "valid": "validation", "test": "test"}
ID_SEPARATOR = "$_$"
NONFINITE_POLICIES = ("zero", "drop", "error")
UNIMODAL_KEYS: dict[str, str] = {"text": "T", "audio": "A", "vision": "V"}
_FEATURE_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "vision": "vision"}
_CHECK_CHUNK = 256


class MMSAError(ValueError):
    """A file that is not a usable MMSA feature pickle, or a dataset that cannot be exported."""


@dataclass(frozen=True)
class Corpus:
    """One of the corpora MMSA publishes.

    Attributes:
        name: Short name (``--name``).
        title: Full name.
        scale: Score scale of ``sdme.scores`` (``mosi`` or ``sims``).
        language: BCP-47 tag of the transcripts.
        unimodal: Whether the files carry unimodal scores (``regression_labels_T/A/V``).
        features: What MMSA's documentation says each modality's features are.
        license: License text for the card.
        citation: The corpus paper.
    """

    name: str
    title: str
    scale: str
    language: str
    unimodal: bool
    features: dict[str, str]
    license: str
    citation: str


_LICENSE = ("other: research use under the corpus's own terms (see the corpus authors' release "
            "and MMSA's data notes)")
CORPORA: dict[str, Corpus] = {
    "mosi": Corpus(
        "mosi", "CMU-MOSI", "mosi", "en", False,
        {"text": "BERT (bert-base-uncased) token features", "audio": "COVAREP acoustic features",
         "vision": "Facet facial expression features"}, _LICENSE,
        "Zadeh, Zellers, Pincus, Morency (2016). Multimodal Sentiment Intensity Analysis in "
        "Videos: Facial Gestures and Verbal Messages. IEEE Intelligent Systems 31(6)."),
    "mosei": Corpus(
        "mosei", "CMU-MOSEI", "mosi", "en", False,
        {"text": "BERT (bert-base-uncased) token features", "audio": "COVAREP acoustic features",
         "vision": "Facet facial expression features"}, _LICENSE,
        "Zadeh, Liang, Poria, Cambria, Morency (2018). Multimodal Language Analysis in the "
        "Wild: CMU-MOSEI Dataset and Interpretable Dynamic Fusion Graph. ACL 2018."),
    "chsims": Corpus(
        "chsims", "CH-SIMS", "sims", "zh", True,
        {"text": "BERT (bert-base-chinese) token features", "audio": "LibROSA acoustic features",
         "vision": "OpenFace 2.0 facial features"}, _LICENSE,
        "Yu, Xu, Meng, Zhu, Ma, Wu, Zou, Yang (2020). CH-SIMS: A Chinese Multimodal Sentiment "
        "Analysis Dataset with Fine-grained Annotation of Modality. ACL 2020."),
    "chsims2": Corpus(
        "chsims2", "CH-SIMS v2.0", "sims", "zh", True,
        {"text": "BERT (bert-base-chinese) token features", "audio": "OpenSMILE acoustic features",
         "vision": "OpenFace 2.0 facial features"}, _LICENSE,
        "Liu, Yuan, Mao, Yu, Jia, Xu, Wang, Xu (2022). Make Acoustic and Visual Cues Matter: "
        "CH-SIMS v2.0 Dataset and AV-Mixup Consistent Module. ICMI 2022."),
}


@dataclass(frozen=True)
class KnownFile:
    """A file MMSA publishes, with what is expected of it.

    Attributes:
        corpus: Corpus name.
        name: File name.
        sha256: Published sha256, or None while it has not been recorded.
        dims: Feature size (text, audio, vision) in MMSA's configs.
    """

    corpus: str
    name: str
    sha256: str | None
    dims: tuple[int, int, int]


# The sha256 values must be filled in from MMSA's release notes (they are not recorded here yet:
# until they are, every import reports the file as unverified). Feature sizes are MMSA's
# ``config_regression.json`` values.
KNOWN_FILES: dict[tuple[str, str], KnownFile] = {
    (f.corpus, f.name): f for f in (
        KnownFile("mosi", "aligned_50.pkl", None, (768, 5, 20)),
        KnownFile("mosi", "unaligned_50.pkl", None, (768, 5, 20)),
        KnownFile("mosei", "aligned_50.pkl", None, (768, 74, 35)),
        KnownFile("mosei", "unaligned_50.pkl", None, (768, 74, 35)),
        KnownFile("chsims", "unaligned_39.pkl", None, (768, 33, 709)),
        KnownFile("chsims2", "sims_unaligned.pkl", None, (768, 25, 177)),
    )
}


def get_corpus(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise MMSAError(f"unknown MMSA corpus {name!r}; known: {', '.join(CORPORA)}") from None


# --- reading and checking the pickle ------------------------------------------------------------

def verify_file(path: Path, corpus: str) -> tuple[str, bool, list[str]]:
    """(sha256, verified, warnings) of an MMSA file against :data:`KNOWN_FILES`."""
    digest = sha256_file(path)
    known = KNOWN_FILES.get((corpus, path.name))
    if known is None:
        names = ", ".join(f.name for f in KNOWN_FILES.values() if f.corpus == corpus)
        return digest, False, [f"{path}: unknown file name for {corpus} (MMSA publishes "
                               f"{names}); its content is unverified"]
    if known.sha256 is None:
        return digest, False, [f"{path}: unverified: no published sha256 is recorded for "
                               f"{corpus}/{path.name} (sha256 {digest})"]
    if digest != known.sha256:
        return digest, False, [f"{path}: sha256 {digest} differs from the published "
                               f"{known.sha256} for {corpus}/{path.name}: the file is modified, "
                               "corrupt or another release"]
    return digest, True, []


def _array(split: Mapping[str, Any], key: str, path: Path, split_name: str,
           ndim: int | None = None) -> np.ndarray:
    if key not in split:
        raise MMSAError(f"{path}: split {split_name!r} has no {key!r} array "
                        f"(keys: {', '.join(sorted(map(str, split)))})")
    value = np.asarray(split[key])
    if ndim is not None and value.ndim != ndim:
        raise MMSAError(f"{path}: {split_name}[{key!r}] has shape {value.shape}, expected "
                        f"{ndim} dimensions")
    return value


@dataclass
class _Split:
    """One split of the pickle, checked, with per-clip lengths and non-finite counts."""

    name: str  # SDME split name
    source: str  # MMSA key
    ids: list[str]
    texts: list[str]
    scores: np.ndarray
    unimodal: dict[str, np.ndarray]
    feats: dict[str, np.ndarray]
    lengths: dict[str, np.ndarray]
    tokens: np.ndarray | None
    nonfinite: dict[str, np.ndarray] = field(default_factory=dict)  # per clip


def _lengths(split: Mapping[str, Any], key: str, steps: int, n: int, path: Path,
             split_name: str) -> np.ndarray:
    if key not in split:
        return np.full(n, steps, dtype=np.int64)
    raw = np.asarray(split[key]).reshape(-1)
    if raw.shape[0] != n:
        raise MMSAError(f"{path}: {split_name}[{key!r}] has {raw.shape[0]} entries for {n} "
                        "clips")
    if not np.all(np.isfinite(raw.astype(np.float64))) or np.any(raw < 0):
        raise MMSAError(f"{path}: {split_name}[{key!r}] has negative or non-finite lengths")
    return np.minimum(raw.astype(np.int64), steps)


def _text_lengths(split: Mapping[str, Any], steps: int, n: int, path: Path,
                  split_name: str) -> tuple[np.ndarray, np.ndarray | None]:
    if "text_lengths" in split:  # written by export_mmsa
        lengths = _lengths(split, "text_lengths", steps, n, path, split_name)
        tokens = None
        if "text_bert" in split:
            tokens = _array(split, "text_bert", path, split_name, 3)
        return lengths, tokens
    if "text_bert" not in split:
        return np.full(n, steps, dtype=np.int64), None
    tokens = _array(split, "text_bert", path, split_name, 3)
    if tokens.shape[0] != n or tokens.shape[1] != 3:
        raise MMSAError(f"{path}: {split_name}['text_bert'] has shape {tokens.shape}, expected "
                        f"({n}, 3, L)")
    mask = tokens[:, 1, :] != 0
    last = np.where(mask.any(axis=1), mask.shape[1] - np.argmax(mask[:, ::-1], axis=1), 0)
    return np.minimum(last.astype(np.int64), steps), tokens


def _read_split(data: Mapping[str, Any], key: str, path: Path) -> _Split:
    split = data[key]
    if not isinstance(split, Mapping):
        raise MMSAError(f"{path}: data[{key!r}] is a {type(split).__name__}, expected a dict of "
                        "arrays")
    ids = [str(v) for v in _array(split, "id", path, key).reshape(-1).tolist()]
    n = len(ids)
    feats = {}
    for m in MODALITIES:
        feats[m] = _array(split, _FEATURE_KEYS[m], path, key, 3)
        if feats[m].shape[0] != n:
            raise MMSAError(f"{path}: {key}[{m!r}] has {feats[m].shape[0]} clips, 'id' has {n}")
        if not np.issubdtype(feats[m].dtype, np.number):
            raise MMSAError(f"{path}: {key}[{m!r}] has dtype {feats[m].dtype}, not numbers")
    scores = _array(split, "regression_labels", path, key).reshape(-1).astype(np.float32)
    if scores.shape[0] != n:
        raise MMSAError(f"{path}: {key}['regression_labels'] has {scores.shape[0]} values for "
                        f"{n} clips")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise MMSAError(f"{path}: {key}['regression_labels'] is not finite for clip(s) "
                        f"{[ids[i] for i in bad[:5]]}")
    unimodal = {}
    for m, suffix in UNIMODAL_KEYS.items():
        name = f"regression_labels_{suffix}"
        if name in split:
            values = np.asarray(split[name]).reshape(-1).astype(np.float32)
            if values.shape[0] != n:
                raise MMSAError(f"{path}: {key}[{name!r}] has {values.shape[0]} values for {n} "
                                "clips")
            unimodal[m] = values
    if "raw_text" in split:
        texts = [str(t) for t in np.asarray(split["raw_text"]).reshape(-1).tolist()]
        if len(texts) != n:
            raise MMSAError(f"{path}: {key}['raw_text'] has {len(texts)} entries for {n} clips")
    else:
        texts = [""] * n
    text_len, tokens = _text_lengths(split, feats["text"].shape[1], n, path, key)
    lengths = {
        "text": text_len,
        "audio": _lengths(split, "audio_lengths", feats["audio"].shape[1], n, path, key),
        "vision": _lengths(split, "vision_lengths", feats["vision"].shape[1], n, path, key),
    }
    return _Split(SPLIT_NAMES[key], key, ids, texts, scores, unimodal, feats, lengths, tokens)


def _count_nonfinite(split: _Split) -> None:
    """Non-finite values per clip inside the kept part of each sequence (after float32 cast)."""
    n = len(split.ids)
    for m in MODALITIES:
        array, lengths = split.feats[m], split.lengths[m]
        counts = np.zeros(n, dtype=np.int64)
        steps = np.arange(array.shape[1])
        for lo in range(0, n, _CHECK_CHUNK):
            block = array[lo: lo + _CHECK_CHUNK].astype(np.float32, copy=False)
            bad = (~np.isfinite(block)).sum(axis=2)
            valid = steps[None, :] < lengths[lo: lo + _CHECK_CHUNK, None]
            counts[lo: lo + _CHECK_CHUNK] = (bad * valid).sum(axis=1)
        split.nonfinite[m] = counts


def _split_video(clip_id: str) -> str | None:
    video, sep, clip = clip_id.rpartition(ID_SEPARATOR)
    return video if sep and video and clip else None


# --- import --------------------------------------------------------------------------------------

@dataclass
class ImportReport:
    """What :func:`import_mmsa` wrote.

    Attributes:
        out_dir: The built dataset folder.
        corpus: Corpus name.
        source: The pickle.
        sha256: Its sha256.
        verified: Whether it matched a published hash.
        counts: Rows per split.
        nonfinite: ``{split: {modality: {"values": n, "clips": n}}}`` found inside kept sequences.
        policy: What was done with them (``zero``, ``drop``, ``error``).
        dropped: Clips dropped, with reasons.
        missing: (clip, modality) sequences of length 0.
        warnings: Verification and format warnings.
        timings: Seconds per stage.
    """

    out_dir: Path
    corpus: str
    source: Path
    sha256: str
    verified: bool
    counts: dict[str, int]
    nonfinite: dict[str, dict[str, dict[str, int]]]
    policy: str
    dropped: list[dict[str, str]]
    missing: list[dict[str, str]]
    warnings: list[str]
    timings: dict[str, float]

    def nonfinite_lines(self) -> list[str]:
        lines = []
        for split, per_m in self.nonfinite.items():
            for m, c in per_m.items():
                if c["values"]:
                    lines.append(f"{split}/{m}: {c['values']} non-finite value(s) in "
                                 f"{c['clips']} clip(s)")
        return lines

    def summary(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        lines = [f"imported {self.corpus} from {self.source}: {sum(self.counts.values())} clips "
                 f"({counts}) -> {self.out_dir}",
                 f"  sha256 {self.sha256} ({'verified' if self.verified else 'UNVERIFIED'})"]
        lines += [f"  warning: {w}" for w in self.warnings]
        found = self.nonfinite_lines()
        if found:
            action = {"zero": "REPLACED WITH 0 (clips kept)",
                      "drop": "clips DROPPED"}.get(self.policy, self.policy)
            lines.append(f"  NON-FINITE feature values (NaN/inf), policy {self.policy!r}: "
                         f"{action}:")
            lines += [f"    {line}" for line in found]
        if self.dropped:
            lines.append(f"  dropped {len(self.dropped)} clip(s)")
        if self.missing:
            lines.append(f"  {len(self.missing)} empty modality sequence(s) kept as missing")
        lines.append("  timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return "\n".join(lines)


def _card_sections(corpus: Corpus, path: Path, sha: str, verified: bool, policy: str,
                   nonfinite_lines: Sequence[str]) -> dict[str, str]:
    scale = get_scale(corpus.scale)
    features = "\n".join(f"- {m}: {corpus.features[m]}" for m in MODALITIES)
    found = "\n".join(f"  - {line}" for line in nonfinite_lines) or "  - none found"
    creation = f"""Imported by `sdme import mmsa` (`sdme.sources.mmsa`) from MMSA's published
feature file `{path.name}` (sha256 `{sha}`, {'verified against the published hash' if verified
else '**unverified**: no published hash matched'}). The features are MMSA's, not re-extracted:

{features}

Sequence lengths: `text_len` from the BERT attention mask (`text_bert`), `audio_len` /
`vision_len` from `audio_lengths` / `vision_lengths`; where the file has no lengths (aligned
files), the padded length is kept. Splits are MMSA's (`valid` is `validation`); `video_id` and
`speaker_id` are the part of MMSA's `id` before `$_$` (no speaker ids are published: the source
video stands in for the speaker). `start`/`end` are not in the files (null).

Non-finite feature values (NaN, inf) inside the kept sequences, policy `{policy}`
({'replaced with 0, clips kept' if policy == 'zero' else 'clips dropped'
  if policy == 'drop' else 'import refused'}):
{found}"""
    unimodal = (f"""`score_text`, `score_audio`, `score_vision` are the corpus's unimodal scores
(`regression_labels_T/A/V`). They map to the relevance fields (`sdme.scores.score_relevance`):

- `label_m`: the unimodal score discretised by the rule above;
- `relevance_m` = clip(1 - |score_m - score| / {scale.range:g}, 0, 1) (1: the modality carries
  exactly the clip's sentiment);
- `deviation`: how many modalities have `label_m` different from `label`.

`votes_m` are empty: the corpus publishes scores, not votes, and none are invented."""
                if corpus.unimodal else
                """The corpus has no unimodal annotations: `label_m`, `relevance_m` and
`deviation` are null, and `votes_m` are empty (they are never invented).""")
    annotations = f"""`score` is the corpus's sentiment score (`regression_labels`, range
[{scale.low:g}, {scale.high:g}]); continuous tasks use it. `label` (ClassLabel: negative, neutral,
positive) is derived from it so that discrete tasks work too: {scale.rule}.

{unimodal}"""
    limitations = f"""- {corpus.title} clips are monologues or film/TV excerpts collected for
  sentiment research; the scores are annotators' perception of expressed sentiment.
- The features come from MMSA's extraction pipeline; their extractors have their own biases
  (face tracking, speech features and text encoders work less well for some groups and
  conditions).
- `label` is a derived 3-class view of the score, not an annotation."""
    description = f"""This is {corpus.title} in SDME's built form, imported from MMSA's feature
file `{path.name}` by the SDME toolkit (`sdme import mmsa`; `sdme export mmsa` writes it back).
Each row is one clip with its transcript, its sentiment `score`, a 3-class `label` derived from
the score, the per-modality relevance fields of SDME{' (from the unimodal scores)'
if corpus.unimodal else ' (null: the corpus has no unimodal annotations)'} and MMSA's text,
audio and vision feature sequences."""
    return {"description": description, "creation": creation, "annotations": annotations,
            "limitations": limitations,
            "license": f"{corpus.license}. MMSA's code is MIT-licensed; the data is not."}


def import_mmsa(path: str | os.PathLike, name: str, out_dir: str | os.PathLike, *,
                nonfinite: str = "zero", shard_rows: int | None = None,
                shard_bytes: int | None = None, progress: bool = False) -> ImportReport:
    """Imports an MMSA feature pickle as a built SDME dataset (module docstring).

    Args:
        path: The pickle (``aligned_50.pkl``, ``unaligned_50.pkl``, ``unaligned_39.pkl``,
            ``sims_unaligned.pkl``).
        name: ``mosi``, ``mosei``, ``chsims`` or ``chsims2``.
        out_dir: The built dataset folder (replaced whole once complete).
        nonfinite: ``zero`` (replace NaN/inf with 0), ``drop`` (drop the clip) or ``error``.
        shard_rows: Most rows per parquet shard (default: the writer's).
        shard_bytes: Most feature bytes per parquet shard (default: the writer's).
        progress: Print the summary to stderr.

    Returns:
        The report (also in ``build_info.json``).

    Raises:
        MMSAError: Not an MMSA pickle (the message names the file and what is wrong), an unknown
            corpus, or non-finite values under ``nonfinite="error"``.
        sdme.safe_pickle.UnsafePickleError: The pickle names a global outside the allow-list.
    """
    from sdme import __version__, safe_pickle
    from sdme.build import dataset_features
    from sdme.card import render_card
    from sdme.splits import SplitError, assign_splits
    from sdme.writer import DEFAULT_SHARD_BYTES, DEFAULT_SHARD_ROWS, BuiltDatasetWriter

    corpus = get_corpus(name)
    if nonfinite not in NONFINITE_POLICIES:
        raise MMSAError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    path = Path(path)
    if not path.is_file():
        raise MMSAError(f"{path}: no such file")
    timings: dict[str, float] = {}
    t = t_start = time.perf_counter()
    sha, verified, warnings = verify_file(path, corpus.name)
    timings["verify"] = time.perf_counter() - t

    t = time.perf_counter()
    data = safe_pickle.load(path)
    if not isinstance(data, Mapping):
        raise MMSAError(f"{path}: top level is a {type(data).__name__}, expected a dict with "
                        "train/valid/test")
    keys = [k for k in SPLIT_NAMES if k in data]
    if "train" not in keys:
        raise MMSAError(f"{path}: no 'train' split (top-level keys: "
                        f"{', '.join(sorted(map(str, data)))}); expected train, valid, test")
    splits = [_read_split(data, k, path) for k in keys]
    timings["read"] = time.perf_counter() - t

    dims = {m: int(splits[0].feats[m].shape[2]) for m in MODALITIES}
    for s in splits[1:]:
        for m in MODALITIES:
            if s.feats[m].shape[2] != dims[m]:
                raise MMSAError(f"{path}: {m} features are {dims[m]}-d in train but "
                                f"{s.feats[m].shape[2]}-d in {s.source}")
    known = KNOWN_FILES.get((corpus.name, path.name))
    if known is not None and tuple(dims[m] for m in MODALITIES) != known.dims:
        warnings.append(f"{path}: feature sizes {dims} differ from MMSA's {known.dims} for "
                        f"{corpus.name}/{path.name}")
    unimodal = sorted({m for s in splits for m in s.unimodal}, key=MODALITIES.index)
    for s in splits:
        if sorted(s.unimodal, key=MODALITIES.index) != unimodal:
            raise MMSAError(f"{path}: unimodal labels {sorted(s.unimodal)} in {s.source} differ "
                            f"from the other splits' {unimodal}")
    if corpus.unimodal and not unimodal:
        warnings.append(f"{path}: {corpus.title} normally has unimodal labels "
                        "(regression_labels_T/A/V); none found, relevance fields are null")

    t = time.perf_counter()
    for s in splits:
        _count_nonfinite(s)
    nonfinite_counts = {s.name: {m: {"values": int(s.nonfinite[m].sum()),
                                     "clips": int((s.nonfinite[m] > 0).sum())}
                                 for m in MODALITIES} for s in splits}
    timings["check"] = time.perf_counter() - t
    total_bad = sum(c["values"] for per in nonfinite_counts.values() for c in per.values())
    if total_bad and nonfinite == "error":
        found = "; ".join(f"{s}/{m}: {c['values']} in {c['clips']} clip(s)"
                          for s, per in nonfinite_counts.items() for m, c in per.items()
                          if c["values"])
        raise MMSAError(f"{path}: {total_bad} non-finite feature value(s) ({found}); rerun "
                        "with --nonfinite zero (replace with 0) or --nonfinite drop")

    scale = get_scale(corpus.scale)
    dropped: list[dict[str, str]] = []
    missing: list[dict[str, str]] = []
    clips: list[RawClip] = []
    keep: dict[str, np.ndarray] = {}
    no_separator = 0
    for s in splits:
        mask = np.ones(len(s.ids), dtype=bool)
        for i, clip_id in enumerate(s.ids):
            bad = {m: int(s.nonfinite[m][i]) for m in MODALITIES if s.nonfinite[m][i]}
            if bad and nonfinite == "drop":
                mask[i] = False
                dropped.append({"clip_id": clip_id, "modality": next(iter(bad)),
                                "reason": "nonfinite",
                                "detail": f"{path.name} {s.source}: non-finite feature values "
                                          f"{bad}", "action": "dropped"})
                continue
            if all(s.lengths[m][i] == 0 for m in MODALITIES):
                mask[i] = False
                dropped.append({"clip_id": clip_id, "modality": "text", "reason": "empty",
                                "detail": f"{path.name} {s.source}: every sequence has length 0",
                                "action": "dropped"})
                continue
            for m in MODALITIES:
                if s.lengths[m][i] == 0:
                    missing.append({"clip_id": clip_id, "modality": m,
                                    "reason": "empty_in_source",
                                    "detail": f"{path.name} {s.source}: {m} length is 0",
                                    "action": "missing"})
            video = _split_video(clip_id)
            if video is None:
                no_separator += 1
                video = clip_id
            clips.append(RawClip(clip_id=clip_id, video_id=video, speaker_id=video, start=0.0,
                                 end=0.0, text="", language=corpus.language,
                                 label=discretise(s.scores[i], scale), split=s.name))
        keep[s.name] = mask
    if no_separator:
        warnings.append(f"{path}: {no_separator} id(s) without {ID_SEPARATOR!r}; their video "
                        "and speaker are the id itself")
    if not clips:
        raise MMSAError(f"{path}: every clip was dropped; nothing to write")
    try:
        assignment = assign_splits(clips)
    except SplitError as exc:
        raise MMSAError(f"{path}: {exc}") from exc
    video_of = {c.clip_id: c.video_id for c in clips}

    optional = ["score"] + [f"score_{m}" for m in unimodal]
    has_tokens = all(s.tokens is not None for s in splits)
    if has_tokens:
        optional.append("text_tokens")
    features = dataset_features(SENTIMENT_TAXONOMY, dims, optional=optional)
    relevance_info = ({"source": "unimodal_scores", "scale": scale.name,
                       "columns": {m: f"score_{m}" for m in unimodal},
                       "rule": "label_m = discretised score_m; relevance_m = clip(1 - "
                               f"|score_m - score| / {scale.range:g}, 0, 1); deviation = "
                               "modalities with label_m != label"}
                      if unimodal else {"source": "none",
                                        "rule": "no unimodal annotations: fields are null"})

    def rows(s: _Split) -> Iterator[dict[str, Any]]:
        for i in np.flatnonzero(keep[s.name]):
            clip_id = s.ids[i]
            score = float(s.scores[i])
            row: dict[str, Any] = {
                "clip_id": clip_id, "video_id": video_of[clip_id],
                "speaker_id": video_of[clip_id], "start": None, "end": None,
                "text": s.texts[i], "language": corpus.language,
                "label": SENTIMENT_TAXONOMY.index(discretise(score, scale)),
                "score": score,
            }
            for m in MODALITIES:
                row[f"votes_{m}"] = []
            uni = {m: float(s.unimodal[m][i]) for m in unimodal}
            for m in unimodal:
                row[f"score_{m}"] = uni[m]
            if unimodal:
                row.update(score_relevance(score, uni, scale).as_row())
            else:
                row.update({f"label_{m}": None for m in MODALITIES})
                row.update({f"relevance_{m}": None for m in MODALITIES})
                row["deviation"] = None
            for m in MODALITIES:
                n_steps = int(s.lengths[m][i])
                feat = s.feats[m][i, :n_steps].astype(np.float32, copy=False)
                if s.nonfinite[m][i]:
                    feat = np.where(np.isfinite(feat), feat, np.float32(0.0))
                row[f"{m}_feat"] = feat
                row[f"{m}_len"] = n_steps
            if has_tokens:
                row["text_tokens"] = np.ascontiguousarray(
                    s.tokens[i, :, : row["text_len"]].T).astype(np.int32)
            yield row

    t = time.perf_counter()
    with BuiltDatasetWriter(out_dir, features, shard_rows=shard_rows or DEFAULT_SHARD_ROWS,
                            shard_bytes=shard_bytes or DEFAULT_SHARD_BYTES) as writer:
        for s in sorted(splits, key=lambda s: list(SPLIT_NAMES.values()).index(s.name)):
            writer.write_split(s.name, rows(s))
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        counts = dict(writer.counts)
        fingerprint_of = {m: hashlib.sha256(f"{sha}:{m}".encode()).hexdigest()
                          for m in MODALITIES}
        info = {
            "sdme_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "source": {"name": corpus.name, "title": corpus.title, "version": path.name,
                       "license": corpus.license, "fingerprint": sha, "file": path.name,
                       "sha256": sha, "verified": verified, "format": "mmsa-pickle"},
            "extractors": {m: {"name": f"mmsa-{corpus.name}-{m}", "version": path.name,
                               "dim": dims[m],
                               "params": {"description": corpus.features[m],
                                          "source_key": _FEATURE_KEYS[m]},
                               "fingerprint": fingerprint_of[m]} for m in MODALITIES},
            "features": {m: {"column": f"{m}_feat", "length_column": f"{m}_len",
                             "dim": dims[m]} for m in MODALITIES},
            "taxonomy": list(SENTIMENT_TAXONOMY),
            "languages": [corpus.language],
            "score": {"column": "score", "scale": scale.name, "low": scale.low,
                      "high": scale.high, "source_key": "regression_labels"},
            "label_rule": {"scale": scale.name, "rule": scale.rule},
            "relevance": relevance_info,
            "nonfinite": {"policy": nonfinite, "counts": nonfinite_counts},
            "counts": {"raw_clips": sum(len(s.ids) for s in splits),
                       "rows": sum(counts.values()), "splits": counts,
                       "dropped": len(dropped),
                       "missing": {m: sum(e["modality"] == m for e in missing)
                                   for m in MODALITIES}},
            "policy": {"dropped": ["empty"] + (["nonfinite"] if nonfinite == "drop" else []),
                       "missing": ["empty_in_source"],
                       "nonfinite": nonfinite,
                       "description": "a clip whose sequences all have length 0 is dropped"
                                      + ("; a clip with non-finite feature values is dropped"
                                         if nonfinite == "drop" else
                                         "; non-finite feature values are replaced with 0 "
                                         "(counted in 'nonfinite')")
                                      + "; a modality of length 0 is kept as missing"},
            "split": assignment.report.to_dict(),
            "data_files": writer.data_files,
            "dropped": dropped,
            "missing": missing,
            "warnings": warnings,
            "build": {"importer": "sdme.sources.mmsa", "corpus": corpus.name,
                      "shard_rows": writer.shard_rows, "shard_bytes": writer.shard_bytes},
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        report = ImportReport(out_dir=Path(out_dir), corpus=corpus.title, source=path,
                              sha256=sha, verified=verified, counts=counts,
                              nonfinite=nonfinite_counts, policy=nonfinite, dropped=dropped,
                              missing=missing, warnings=warnings,
                              timings={k: round(v, 3) for k, v in timings.items()})
        manifest = CorpusManifest(
            name=corpus.name, version=path.name, license=corpus.license,
            taxonomy=SENTIMENT_TAXONOMY,
            annotation_protocol={"score": f"sentiment score in [{scale.low:g}, {scale.high:g}]",
                                 "unimodal": "scores per modality" if unimodal else "none"},
            description=(f"{corpus.title} as published by MMSA in `{path.name}`: pre-extracted "
                         "text, audio and vision feature sequences with sentiment scores"
                         + (" and unimodal scores" if unimodal else "") + "."),
            citation=corpus.citation)
        card = render_card(manifest=manifest, features=features, build_info=info,
                           split_bytes=writer.split_bytes,
                           sections=_card_sections(corpus, path, sha, verified, nonfinite,
                                                   report.nonfinite_lines()))
        writer.commit(info, card)
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


# --- export --------------------------------------------------------------------------------------

@dataclass
class ExportReport:
    """What :func:`export_mmsa` wrote."""

    out_file: Path
    counts: dict[str, int]
    padded: dict[str, int]
    keys: list[str]

    def summary(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        pads = ", ".join(f"{m} {n}" for m, n in self.padded.items())
        return (f"exported {sum(self.counts.values())} clips ({counts}) -> {self.out_file}\n"
                f"  padded lengths: {pads}\n  keys: {', '.join(self.keys)}")


def _built_files(root: Path) -> tuple[dict[str, Any], dict[str, list[Path]], dict[str, int]]:
    """``build_info.json``, the shards of each split (checked to exist) and the feature sizes."""
    from sdme.writer import BUILD_INFO_NAME

    info_path = root / BUILD_INFO_NAME
    if not info_path.is_file():
        raise MMSAError(f"{root}: not a built SDME dataset (no {BUILD_INFO_NAME})")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    files = {s: [root / p for p in ps] for s, ps in (info.get("data_files") or {}).items()}
    if not files:
        raise MMSAError(f"{info_path}: no data_files")
    for paths_ in files.values():
        for p in paths_:
            if not p.is_file():
                raise MMSAError(f"{p}: listed in {info_path} but missing")
    try:
        dims = {m: int(info["features"][m]["dim"]) for m in MODALITIES}
    except (KeyError, TypeError, ValueError) as exc:
        raise MMSAError(f"{info_path}: no feature sizes under 'features' ({exc!r})") from exc
    if not info.get("taxonomy"):
        raise MMSAError(f"{info_path}: no 'taxonomy'")
    return info, files, dims


def export_mmsa(dataset: str | os.PathLike, out_file: str | os.PathLike, *,
                data_dir: str | os.PathLike | None = None) -> ExportReport:
    """Writes a built SDME dataset as an MMSA feature pickle (module docstring).

    Args:
        dataset: A built dataset name (under the data folder) or folder.
        out_file: The pickle to write (atomically).
        data_dir: The SDME data folder for a dataset given by name.

    Returns:
        The report.

    Raises:
        MMSAError: Not a built dataset.
        FileNotFoundError: No such dataset.
    """
    import pyarrow.parquet as pq

    from sdme.fileio import atomic_path
    from sdme.loading import resolve_built

    root = resolve_built(dataset, data_dir)
    info, files, dims = _built_files(root)
    names = pq.ParquetFile(next(iter(files.values()))[0]).schema_arrow.names
    has_score = "score" in names
    unimodal = [m for m in MODALITIES if f"score_{m}" in names]
    has_tokens = "text_tokens" in names
    pad = {m: 1 for m in MODALITIES}
    counts = {}
    label_columns = [f"label_{m}" for m in MODALITIES]
    all_labelled = True
    for split, paths_ in files.items():
        counts[split] = 0
        for p in paths_:
            table = pq.read_table(p, columns=[f"{m}_len" for m in MODALITIES] + label_columns)
            counts[split] += table.num_rows
            for m in MODALITIES:
                lengths = table.column(f"{m}_len").to_numpy()
                if len(lengths):
                    pad[m] = max(pad[m], int(lengths.max()))
            all_labelled &= all(table.column(c).null_count == 0 for c in label_columns)
    class_index = {t: i for i, t in enumerate(info["taxonomy"])}

    out: dict[str, dict[str, Any]] = {}
    for split, paths_ in files.items():
        n = counts[split]
        arrays = {m: np.zeros((n, pad[m], dims[m]), dtype=np.float32) for m in MODALITIES}
        lengths = {m: np.zeros(n, dtype=np.int64) for m in MODALITIES}
        tokens = np.zeros((n, 3, pad["text"]), dtype=np.float32) if has_tokens else None
        ids, texts, labels = [], [], np.zeros(n, dtype=np.float32)
        scores = np.zeros(n, dtype=np.float32)
        uni = {m: np.zeros(n, dtype=np.float32) for m in unimodal}
        uni_labels = {m: np.zeros(n, dtype=np.float32) for m in MODALITIES}
        i = 0
        for p in paths_:
            for batch in pq.ParquetFile(p).iter_batches(batch_size=64):
                cols = {name: batch.column(name) for name in batch.schema.names}
                for r in range(batch.num_rows):
                    ids.append(cols["clip_id"][r].as_py())
                    texts.append(cols["text"][r].as_py() or "")
                    labels[i] = cols["label"][r].as_py()
                    if has_score:
                        scores[i] = cols["score"][r].as_py()
                    for m in unimodal:
                        value = cols[f"score_{m}"][r].as_py()
                        uni[m][i] = np.nan if value is None else value
                    if all_labelled:
                        for m in MODALITIES:
                            uni_labels[m][i] = class_index[cols[f"label_{m}"][r].as_py()]
                    i += 1
                row0 = i - batch.num_rows
                for m in MODALITIES:
                    column = cols[f"{m}_feat"]
                    storage = column.storage if hasattr(column, "storage") else column
                    values = storage.flatten().flatten().to_numpy(zero_copy_only=False)
                    offsets = storage.offsets.to_numpy()
                    lens = cols[f"{m}_len"].to_numpy()
                    flat = values.reshape(-1, dims[m])
                    for r in range(batch.num_rows):
                        a, b = int(offsets[r]), int(offsets[r + 1])
                        arrays[m][row0 + r, : b - a] = flat[a:b]
                        lengths[m][row0 + r] = int(lens[r])
                if has_tokens:
                    column = cols["text_tokens"]
                    storage = column.storage if hasattr(column, "storage") else column
                    values = storage.flatten().flatten().to_numpy(zero_copy_only=False)
                    flat = values.reshape(-1, 3)
                    offsets = storage.offsets.to_numpy()
                    for r in range(batch.num_rows):
                        a, b = int(offsets[r]), int(offsets[r + 1])
                        tokens[row0 + r, :, : b - a] = flat[a:b].T
        entry: dict[str, Any] = {
            "id": np.array(ids, dtype=object),
            "raw_text": np.array(texts, dtype=object),
            "text": arrays["text"], "audio": arrays["audio"], "vision": arrays["vision"],
            "text_lengths": lengths["text"], "audio_lengths": lengths["audio"],
            "vision_lengths": lengths["vision"],
            "classification_labels": labels,
        }
        if has_tokens:
            entry["text_bert"] = tokens
        if has_score:
            entry["regression_labels"] = scores
        for m in unimodal:
            entry[f"regression_labels_{UNIMODAL_KEYS[m]}"] = uni[m]
        if all_labelled:
            for m in MODALITIES:
                entry[f"classification_labels_{UNIMODAL_KEYS[m]}"] = uni_labels[m]
        key = next(k for k, v in SPLIT_NAMES.items() if v == split)
        out[key] = entry
    out_file = Path(out_file)
    with atomic_path(out_file) as tmp, open(tmp, "wb") as fh:
        pickle.dump(out, fh, protocol=4)
    return ExportReport(out_file=out_file, counts=counts, padded=pad,
                        keys=sorted(next(iter(out.values()))))


__all__ = ["CORPORA", "KNOWN_FILES", "NONFINITE_POLICIES", "Corpus", "ExportReport",
           "ImportReport", "KnownFile", "MMSAError", "export_mmsa", "get_corpus", "import_mmsa",
           "verify_file"]
