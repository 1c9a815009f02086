"""MMSA's feature-pickle format (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2): the corpora and
files it covers, reading and checking a pickle, and writing one from a built dataset.

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

Reading (:func:`read_split`) checks every array's shape against the clip count and derives the
per-clip lengths: ``text`` from the last 1 in the ``text_bert`` attention mask (else the padded
length), ``audio``/``vision`` from ``audio_lengths`` / ``vision_lengths`` (clipped to the padded
length; aligned files have none: the padded length). The pickle itself is opened by
``sdme.safe_pickle`` (numpy arrays and plain containers only). The built source ``mmsa``
(``sdme/sources/mmsa.py``, ``sdme import mmsa``) maps what is read to a built dataset.

Export (:func:`export_mmsa`, ``sdme export mmsa``) writes the same structure from any built
dataset: features zero-padded to the longest sequence of each modality over all splits,
``audio_lengths`` / ``vision_lengths`` (and ``text_lengths``, an SDME addition MMSA ignores),
``text_bert`` when the dataset has ``text_tokens``, ``regression_labels`` (and ``_T/_A/_V``)
when it has scores, ``classification_labels`` (the ``label`` index) always, and
``classification_labels_T/A/V`` (indices of ``label_<m>``) when every clip has them. Importing
an exported file gives the same tables back. :func:`fake_split` writes small random splits in
this format (the source's offline fixture, and tests).

Corpora: CMU-MOSI (Zadeh et al., 2016), CMU-MOSEI (Zadeh et al., 2018), CH-SIMS (Yu et al.,
2020), CH-SIMS v2 (Liu et al., 2022); each under its own terms, for research use.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sdme.built import (
    CLIP_ID,
    FEAT,
    LABEL,
    LENGTH,
    SCORE,
    TEXT,
    TEXT_TOKENS,
    UNIMODAL_LABEL,
    UNIMODAL_SCORE,
)
from sdme.schema import MODALITIES, sha256_file

if TYPE_CHECKING:
    from sdme.built import BuildInfo

SPLIT_NAMES: dict[str, str] = {"train": "train", "valid": "validation", "test": "test"}
ID_SEPARATOR = "$_$"
NONFINITE_POLICIES = ("zero", "drop", "error")
UNIMODAL_KEYS: dict[str, str] = {"text": "T", "audio": "A", "vision": "V"}
#: The pickle's key of each modality's features.
FEATURE_KEYS: dict[str, str] = {"text": "text", "audio": "audio", "vision": "vision"}
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


#: Where the published sha256 values were read: MMSA's README, section "2. Datasets" ("SHA-256
#: for feature files"), at this commit. Only the files it lists have one; CH-SIMS v2.0's
#: ``sims_unaligned.pkl`` is not listed there, so its imports stay *unverified*.
SHA256_SOURCE = ("https://github.com/thuiar/MMSA/blob/a94e65d07fa1ae0d44e552390074b29b0898edfd/"
                 "README.md")

# Feature sizes are MMSA's ``config_regression.json`` values; sha256 values are SHA256_SOURCE's
# (its paths MOSI/Processed/..., MOSEI/Processed/..., SIMS/Processed/...).
KNOWN_FILES: dict[tuple[str, str], KnownFile] = {
    (f.corpus, f.name): f for f in (
        KnownFile("mosi", "aligned_50.pkl",
                  "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
                  (768, 5, 20)),
        KnownFile("mosi", "unaligned_50.pkl",
                  "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524",
                  (768, 5, 20)),
        KnownFile("mosei", "aligned_50.pkl",
                  "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
                  (768, 74, 35)),
        KnownFile("mosei", "unaligned_50.pkl",
                  "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f",
                  (768, 74, 35)),
        KnownFile("chsims", "unaligned_39.pkl",
                  "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f",
                  (768, 33, 709)),
        KnownFile("chsims2", "sims_unaligned.pkl", None, (768, 25, 177)),
    )
}


def get_corpus(name: str) -> Corpus:
    try:
        return CORPORA[name]
    except KeyError:
        raise MMSAError(f"unknown MMSA corpus {name!r}; known: {', '.join(CORPORA)}") from None


# --- reading and checking the pickle ------------------------------------------------------------

#: What an import says of a file: its sha256 matches the published one, differs from it, or
#: no published sha256 exists for it.
VERIFIED, CHECKSUM_DIFFERS, UNVERIFIED = "verified", "checksum differs", "unverified"


def file_status(corpus: str, name: str, digest: str) -> str:
    """:data:`VERIFIED`, :data:`CHECKSUM_DIFFERS` or :data:`UNVERIFIED` (no published hash for
    this corpus and file name) for a file's sha256."""
    known = KNOWN_FILES.get((corpus, name))
    if known is None or known.sha256 is None:
        return UNVERIFIED
    return VERIFIED if digest == known.sha256 else CHECKSUM_DIFFERS


def verify_file(path: Path, corpus: str) -> tuple[str, bool, list[str]]:
    """(sha256, verified, warnings) of an MMSA file against :data:`KNOWN_FILES`: verified when
    it equals the published sha256; a warning saying the checksum differs, or that no published
    hash exists for the file, otherwise."""
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
        return digest, False, [f"{path}: checksum differs: sha256 {digest} is not the "
                               f"published {known.sha256} for {corpus}/{path.name} "
                               f"({SHA256_SOURCE}): the file is modified, corrupt or another "
                               "release"]
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
class Split:
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


def _tokens(split: Mapping[str, Any], n: int, path: Path, split_name: str) -> np.ndarray:
    tokens = _array(split, "text_bert", path, split_name, 3)
    if not np.issubdtype(tokens.dtype, np.number):
        raise MMSAError(f"{path}: {split_name}['text_bert'] has dtype {tokens.dtype}, not numbers")
    if tokens.shape[0] != n or tokens.shape[1] != 3:
        raise MMSAError(f"{path}: {split_name}['text_bert'] has shape {tokens.shape}, expected "
                        f"({n}, 3, L)")
    return tokens


def _text_lengths(split: Mapping[str, Any], steps: int, n: int, path: Path,
                  split_name: str) -> tuple[np.ndarray, np.ndarray | None]:
    if "text_lengths" in split:  # written by export_mmsa
        lengths = _lengths(split, "text_lengths", steps, n, path, split_name)
        tokens = _tokens(split, n, path, split_name) if "text_bert" in split else None
        if tokens is not None and n and tokens.shape[2] < lengths.max():
            raise MMSAError(f"{path}: {split_name}['text_bert'] has {tokens.shape[2]} steps, "
                            f"shorter than text_lengths' {int(lengths.max())}")
        return lengths, tokens
    if "text_bert" not in split:
        return np.full(n, steps, dtype=np.int64), None
    tokens = _tokens(split, n, path, split_name)
    mask = tokens[:, 1, :] != 0
    last = np.where(mask.any(axis=1), mask.shape[1] - np.argmax(mask[:, ::-1], axis=1), 0)
    return np.minimum(last.astype(np.int64), steps), tokens


def read_split(data: Mapping[str, Any], key: str, path: Path) -> Split:
    """The split ``key`` of a loaded pickle, checked (module docstring).

    Raises:
        MMSAError: A missing or misshapen array, or values of the wrong kind (ragged lists,
            text where numbers belong), naming the file, the split and the key.
    """
    try:
        return _read_split(data, key, path)
    except MMSAError:
        raise
    except (TypeError, ValueError, OverflowError, IndexError, KeyError, AttributeError) as exc:
        detail = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise MMSAError(f"{path}: split {key!r} is not in MMSA's layout "
                        f"({type(exc).__name__}: {detail})") from None


def _read_split(data: Mapping[str, Any], key: str, path: Path) -> Split:
    split = data[key]
    if not isinstance(split, Mapping):
        raise MMSAError(f"{path}: data[{key!r}] is a {type(split).__name__}, expected a dict of "
                        "arrays")
    ids = [str(v) for v in _array(split, "id", path, key).reshape(-1).tolist()]
    n = len(ids)
    feats = {}
    for m in MODALITIES:
        feats[m] = _array(split, FEATURE_KEYS[m], path, key, 3)
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
    return Split(SPLIT_NAMES[key], key, ids, texts, scores, unimodal, feats, lengths, tokens)


def count_nonfinite(split: Split) -> None:
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


def split_video(clip_id: str) -> str | None:
    """The video part of an MMSA id (``"<video>$_$<clip>"``), None without the separator."""
    video, sep, clip = clip_id.rpartition(ID_SEPARATOR)
    return video if sep and video and clip else None



# --- small random files in the format (fixtures, tests) -----------------------------------------

def fake_split(corpus: str, split: str, n: int, rng: np.random.Generator, *,
               aligned: bool = False, steps: Mapping[str, int] | None = None
               ) -> dict[str, np.ndarray]:
    """One split of a random MMSA pickle with the corpus's real feature sizes: padded arrays,
    lengths (the first clip without a vision track, unless ``aligned``), BERT ids and mask,
    ids ``"<split>vid<k>$_$<j>"`` (two clips per video), transcripts, scores on the corpus's
    grid (the first one 0) and, for the SIMS corpora, unimodal scores.

    Args:
        corpus: ``mosi``, ``mosei``, ``chsims`` or ``chsims2``.
        split: ``train``, ``valid`` or ``test``.
        n: Clips.
        rng: The random source.
        aligned: All modalities padded to the text length, without length arrays.
        steps: Padded length per modality (default text 9, audio 12, vision 7).
    """
    info = get_corpus(corpus)
    known = next(f for f in KNOWN_FILES.values() if f.corpus == corpus)
    dims = dict(zip(MODALITIES, known.dims, strict=True))
    steps = dict(steps or {"text": 9, "audio": 12, "vision": 7})
    if aligned:
        steps = {m: steps["text"] for m in MODALITIES}
    grid = (np.round(np.arange(-1.0, 1.01, 0.2), 1) if info.scale == "sims"
            else np.arange(-9, 10) / 3.0)
    data: dict[str, np.ndarray] = {}
    lengths = {m: rng.integers(2, steps[m] + 1, size=n) for m in MODALITIES}
    if not aligned:
        lengths["vision"][0] = 0  # a clip without a face track
    for m in MODALITIES:
        array = np.zeros((n, steps[m], dims[m]), dtype=np.float32)
        for i in range(n):
            array[i, : lengths[m][i]] = rng.standard_normal((lengths[m][i], dims[m]))
        data[FEATURE_KEYS[m]] = array
    bert = np.zeros((n, 3, steps["text"]), dtype=np.float32)
    for i in range(n):
        bert[i, 0, : lengths["text"][i]] = rng.integers(100, 30000, size=lengths["text"][i])
        bert[i, 1, : lengths["text"][i]] = 1
    data["text_bert"] = bert
    if not aligned:
        data["audio_lengths"] = lengths["audio"].astype(np.int64)
        data["vision_lengths"] = lengths["vision"].astype(np.int64)
    data["raw_text"] = np.array([f"{corpus} {split} utterance {i}" for i in range(n)])
    data["id"] = np.array([f"{split}vid{i // 2}{ID_SEPARATOR}{i % 2}" for i in range(n)])
    scores = rng.choice(grid, size=n)
    scores[0] = 0.0  # neutral by both rules
    data["regression_labels"] = scores.astype(np.float32)
    if info.unimodal:
        for key in UNIMODAL_KEYS.values():
            data[f"regression_labels_{key}"] = rng.choice(grid, size=n).astype(np.float32)
    return data


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


def _built_files(root: Path) -> tuple[BuildInfo, dict[str, list[Path]], dict[str, int]]:
    """The provenance, the shards of each split (checked to exist) and the feature sizes."""
    from sdme.built import BUILD_INFO_NAME, BuildInfo, BuildInfoError

    info_path = root / BUILD_INFO_NAME
    if not info_path.is_file():
        raise MMSAError(f"{root}: not a built SDME dataset (no {BUILD_INFO_NAME})")
    try:
        info = BuildInfo.load(info_path)
    except BuildInfoError as exc:
        raise MMSAError(str(exc)) from None
    files = {s: [root / p for p in ps] for s, ps in info.data_files.items()}
    if not files:
        raise MMSAError(f"{info_path}: no data_files")
    for paths_ in files.values():
        for p in paths_:
            if not p.is_file():
                raise MMSAError(f"{p}: listed in {info_path} but missing")
    dims = info.dims
    if set(dims) != set(MODALITIES):
        raise MMSAError(f"{info_path}: no feature sizes under 'features' for "
                        f"{sorted(set(MODALITIES) - set(dims))}")
    if not info.taxonomy:
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
    has_score = SCORE in names
    unimodal = [m for m in MODALITIES if UNIMODAL_SCORE[m] in names]
    has_tokens = TEXT_TOKENS in names
    pad = {m: 1 for m in MODALITIES}
    counts = {}
    label_columns = [UNIMODAL_LABEL[m] for m in MODALITIES]
    all_labelled = True
    for split, paths_ in files.items():
        counts[split] = 0
        for p in paths_:
            table = pq.read_table(p, columns=[LENGTH[m] for m in MODALITIES] + label_columns)
            counts[split] += table.num_rows
            for m in MODALITIES:
                lengths = table.column(LENGTH[m]).to_numpy()
                if len(lengths):
                    pad[m] = max(pad[m], int(lengths.max()))
            all_labelled &= all(table.column(c).null_count == 0 for c in label_columns)
    class_index = {t: i for i, t in enumerate(info.taxonomy)}

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
                    ids.append(cols[CLIP_ID][r].as_py())
                    texts.append(cols[TEXT][r].as_py() or "")
                    labels[i] = cols[LABEL][r].as_py()
                    if has_score:
                        scores[i] = cols[SCORE][r].as_py()
                    for m in unimodal:
                        value = cols[UNIMODAL_SCORE[m]][r].as_py()
                        uni[m][i] = np.nan if value is None else value
                    if all_labelled:
                        for m in MODALITIES:
                            uni_labels[m][i] = class_index[cols[UNIMODAL_LABEL[m]][r].as_py()]
                    i += 1
                row0 = i - batch.num_rows
                for m in MODALITIES:
                    column = cols[FEAT[m]]
                    storage = column.storage if hasattr(column, "storage") else column
                    values = storage.flatten().flatten().to_numpy(zero_copy_only=False)
                    offsets = storage.offsets.to_numpy()
                    lens = cols[LENGTH[m]].to_numpy()
                    flat = values.reshape(-1, dims[m])
                    for r in range(batch.num_rows):
                        a, b = int(offsets[r]), int(offsets[r + 1])
                        arrays[m][row0 + r, : b - a] = flat[a:b]
                        lengths[m][row0 + r] = int(lens[r])
                if has_tokens:
                    column = cols[TEXT_TOKENS]
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


__all__ = ["CORPORA", "FEATURE_KEYS", "ID_SEPARATOR", "KNOWN_FILES", "NONFINITE_POLICIES",
           "SPLIT_NAMES", "UNIMODAL_KEYS", "Corpus", "ExportReport", "KnownFile", "MMSAError",
           "Split", "count_nonfinite", "export_mmsa", "fake_split", "get_corpus", "read_split",
           "split_video", "verify_file"]

