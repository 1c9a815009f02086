"""The built source ``mmsa``: MMSA's feature pickles (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2)
imported as built SDME datasets (``sdme import mmsa --name CORPUS --path FILE``).

The files hold features, not media, so the source delivers a *built* dataset, written by
``sdme.built.write_built_dataset``; the format itself (corpora, files, reading, export) is
``sdme.mmsa``'s. The mapping, written into every card and ``build_info.json``:

- **Safety.** The pickle is read with ``sdme.safe_pickle`` (numpy arrays and plain containers
  only; anything else is refused before it runs). Its sha256 is checked against
  :data:`KNOWN_FILES`, which records the sha256 MMSA's README publishes for CMU-MOSI's and
  CMU-MOSEI's ``aligned_50.pkl`` / ``unaligned_50.pkl`` and CH-SIMS's ``unaligned_39.pkl``
  (``sdme.mmsa.SHA256_SOURCE``): the import says *verified*, or *checksum differs* (a warning
  naming the file), or *unverified* for a file without a published hash (CH-SIMS v2.0's
  ``sims_unaligned.pkl``, or a renamed file). The status is in the report, the card and
  ``build_info.json`` (``source.verification``).
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

Source: MMSA (Yu et al., https://github.com/thuiar/MMSA, MIT license for the code; the corpora
under their own terms, for research use).
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sdme.built import (
    CLIP_ID,
    DEVIATION,
    END,
    FEAT,
    LABEL,
    LANGUAGE,
    LENGTH,
    RELEVANCE,
    SCORE,
    SPEAKER_ID,
    START,
    TEXT,
    TEXT_TOKENS,
    UNIMODAL_LABEL,
    UNIMODAL_SCORE,
    VIDEO_ID,
    VOTES,
    BuildInfo,
    ClipEvent,
    Counts,
    ExtractorRecord,
    FeatureRecord,
    Policy,
    SourceRecord,
    Written,
    dataset_features,
    utc_now,
    write_built_dataset,
)
from sdme.mmsa import (
    CHECKSUM_DIFFERS,
    CORPORA,
    FEATURE_KEYS,
    ID_SEPARATOR,
    KNOWN_FILES,
    NONFINITE_POLICIES,
    SHA256_SOURCE,
    SPLIT_NAMES,
    UNVERIFIED,
    VERIFIED,
    Corpus,
    KnownFile,
    MMSAError,
    Split,
    count_nonfinite,
    fake_split,
    file_status,
    get_corpus,
    read_split,
    split_video,
    verify_file,
)
from sdme.schema import MODALITIES, CorpusManifest, RawClip
from sdme.scores import (
    SENTIMENT_TAXONOMY,
    discretise,
    get_scale,
    label_rule_record,
    score_record,
    score_relevance,
    unimodal_relevance_record,
)
from sdme.sources import SourceCard, register_source


def _nonfinite_lines(counts: Mapping[str, Mapping[str, Mapping[str, int]]]) -> list[str]:
    return [f"{split}/{m}: {c['values']} non-finite value(s) in {c['clips']} clip(s)"
            for split, per_m in counts.items() for m, c in per_m.items() if c["values"]]


@dataclass
class ImportReport:
    """What :func:`import_mmsa` wrote.

    Attributes:
        out_dir: The built dataset folder.
        corpus: Corpus name.
        source: The pickle.
        sha256: Its sha256.
        verified: Whether it matched a published hash.
        verification: ``verified``, ``checksum differs`` or ``unverified`` (no published hash).
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
    verification: str
    counts: dict[str, int]
    nonfinite: dict[str, dict[str, dict[str, int]]]
    policy: str
    dropped: list[dict[str, str]]
    missing: list[dict[str, str]]
    warnings: list[str]
    timings: dict[str, float]

    def nonfinite_lines(self) -> list[str]:
        return _nonfinite_lines(self.nonfinite)

    def summary(self) -> str:
        counts = ", ".join(f"{s} {n}" for s, n in self.counts.items())
        lines = [f"imported {self.corpus} from {self.source}: {sum(self.counts.values())} clips "
                 f"({counts}) -> {self.out_dir}",
                 f"  sha256 {self.sha256} ({_STATUS_WORDS[self.verification]})"]
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


_STATUS_WORDS = {VERIFIED: "verified against MMSA's published sha256",
                 CHECKSUM_DIFFERS: "CHECKSUM DIFFERS from MMSA's published sha256",
                 UNVERIFIED: "UNVERIFIED: MMSA publishes no sha256 for this file"}


def _card_sections(corpus: Corpus, path: Path, sha: str, status: str, policy: str,
                   nonfinite_lines: Sequence[str]) -> dict[str, str]:
    scale = get_scale(corpus.scale)
    features = "\n".join(f"- {m}: {corpus.features[m]}" for m in MODALITIES)
    found = "\n".join(f"  - {line}" for line in nonfinite_lines) or "  - none found"
    creation = f"""Imported by `sdme import mmsa` (`sdme.sources.mmsa`) from MMSA's published
feature file `{path.name}` (sha256 `{sha}`: {_STATUS_WORDS[status]}, see `{SHA256_SOURCE}`).
The features are MMSA's, not re-extracted:

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
    from sdme.splits import SplitError, assign_splits

    corpus = get_corpus(name)
    if nonfinite not in NONFINITE_POLICIES:
        raise MMSAError(f"nonfinite must be one of {NONFINITE_POLICIES}, got {nonfinite!r}")
    path = Path(path)
    if not path.is_file():
        raise MMSAError(f"{path}: no such file")
    timings: dict[str, float] = {}
    t = t_start = time.perf_counter()
    sha, verified, warnings = verify_file(path, corpus.name)
    status = file_status(corpus.name, path.name, sha)
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
    splits = [read_split(data, k, path) for k in keys]
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
        count_nonfinite(s)
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
    dropped: list[ClipEvent] = []
    missing: list[ClipEvent] = []
    clips: list[RawClip] = []
    keep: dict[str, np.ndarray] = {}
    no_separator = 0
    for s in splits:
        mask = np.ones(len(s.ids), dtype=bool)
        for i, clip_id in enumerate(s.ids):
            bad = {m: int(s.nonfinite[m][i]) for m in MODALITIES if s.nonfinite[m][i]}
            if bad and nonfinite == "drop":
                mask[i] = False
                dropped.append(ClipEvent(clip_id, next(iter(bad)), "nonfinite",
                                         f"{path.name} {s.source}: non-finite feature values "
                                         f"{bad}", "dropped"))
                continue
            if all(s.lengths[m][i] == 0 for m in MODALITIES):
                mask[i] = False
                dropped.append(ClipEvent(clip_id, "text", "empty", f"{path.name} {s.source}: "
                                         "every sequence has length 0", "dropped"))
                continue
            for m in MODALITIES:
                if s.lengths[m][i] == 0:
                    missing.append(ClipEvent(clip_id, m, "empty_in_source",
                                             f"{path.name} {s.source}: {m} length is 0",
                                             "missing"))
            video = split_video(clip_id)
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

    optional = [SCORE] + [UNIMODAL_SCORE[m] for m in unimodal]
    has_tokens = all(s.tokens is not None for s in splits)
    if has_tokens:
        optional.append(TEXT_TOKENS)
    features = dataset_features(SENTIMENT_TAXONOMY, dims, optional=optional)
    relevance_info = (unimodal_relevance_record(scale, unimodal)
                      if unimodal else {"source": "none",
                                        "rule": "no unimodal annotations: fields are null"})

    def rows(s: Split) -> Iterator[dict[str, Any]]:
        for i in np.flatnonzero(keep[s.name]):
            clip_id = s.ids[i]
            score = float(s.scores[i])
            row: dict[str, Any] = {
                CLIP_ID: clip_id, VIDEO_ID: video_of[clip_id], SPEAKER_ID: video_of[clip_id],
                START: None, END: None, TEXT: s.texts[i], LANGUAGE: corpus.language,
                LABEL: SENTIMENT_TAXONOMY.index(discretise(score, scale)), SCORE: score,
            }
            for m in MODALITIES:
                row[VOTES[m]] = []
            uni = {m: float(s.unimodal[m][i]) for m in unimodal}
            for m in unimodal:
                row[UNIMODAL_SCORE[m]] = uni[m]
            row.update(score_relevance(score, uni, scale).as_row() if unimodal else
                       dict.fromkeys([*UNIMODAL_LABEL.values(), *RELEVANCE.values(), DEVIATION]))
            for m in MODALITIES:
                n_steps = int(s.lengths[m][i])
                feat = s.feats[m][i, :n_steps].astype(np.float32, copy=False)
                if s.nonfinite[m][i]:
                    feat = np.where(np.isfinite(feat), feat, np.float32(0.0))
                row[FEAT[m]] = feat
                row[LENGTH[m]] = n_steps
            if has_tokens:
                row[TEXT_TOKENS] = np.ascontiguousarray(
                    s.tokens[i, :, : row[LENGTH["text"]]].T).astype(np.int32)
            yield row

    report: ImportReport | None = None

    def provenance(written: Written) -> BuildInfo:
        nonlocal report
        timings["write"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        rounded = {k: round(v, 3) for k, v in timings.items()}
        report = ImportReport(out_dir=Path(out_dir), corpus=corpus.title, source=path,
                              sha256=sha, verified=verified, verification=status,
                              counts=written.counts,
                              nonfinite=nonfinite_counts, policy=nonfinite,
                              dropped=[e.to_dict() for e in dropped],
                              missing=[e.to_dict() for e in missing], warnings=warnings,
                              timings=rounded)
        return BuildInfo(
            sdme_version=__version__, created=utc_now(),
            source=SourceRecord(name=corpus.name, title=corpus.title, version=path.name,
                                license=corpus.license, fingerprint=sha,
                                extra={"file": path.name, "sha256": sha, "verified": verified,
                                       "verification": status, "format": "mmsa-pickle"}),
            extractors={m: ExtractorRecord(
                name=f"mmsa-{corpus.name}-{m}", version=path.name, dim=dims[m],
                params={"description": corpus.features[m], "source_key": FEATURE_KEYS[m]},
                fingerprint=hashlib.sha256(f"{sha}:{m}".encode()).hexdigest())
                for m in MODALITIES},
            features={m: FeatureRecord.of(m, dims[m]) for m in MODALITIES},
            taxonomy=list(SENTIMENT_TAXONOMY),
            languages=[corpus.language],
            score=score_record(scale, source_key="regression_labels"),
            label_rule=label_rule_record(scale),
            relevance=relevance_info,
            nonfinite={"policy": nonfinite, "counts": nonfinite_counts},
            counts=Counts(raw_clips=sum(len(s.ids) for s in splits),
                          rows=sum(written.counts.values()), splits=written.counts,
                          dropped=len(dropped),
                          missing={m: sum(e.modality == m for e in missing) for m in MODALITIES}),
            policy=Policy(
                dropped=["empty"] + (["nonfinite"] if nonfinite == "drop" else []),
                missing=["empty_in_source"], nonfinite=nonfinite,
                description="a clip whose sequences all have length 0 is dropped"
                            + ("; a clip with non-finite feature values is dropped"
                               if nonfinite == "drop" else
                               "; non-finite feature values are replaced with 0 "
                               "(counted in 'nonfinite')")
                            + "; a modality of length 0 is kept as missing"),
            split=assignment.report.to_dict(),
            data_files=written.data_files,
            dropped=dropped,
            missing=missing,
            warnings=warnings,
            build={"importer": "sdme.sources.mmsa", "corpus": corpus.name,
                   "shard_rows": written.shard_rows, "shard_bytes": written.shard_bytes},
            timings=rounded,
        )

    manifest = CorpusManifest(
        name=corpus.name, version=path.name, license=corpus.license,
        taxonomy=SENTIMENT_TAXONOMY,
        annotation_protocol={"score": f"sentiment score in [{scale.low:g}, {scale.high:g}]",
                             "unimodal": "scores per modality" if unimodal else "none"},
        description=(f"{corpus.title} as published by MMSA in `{path.name}`: pre-extracted "
                     "text, audio and vision feature sequences with sentiment scores"
                     + (" and unimodal scores" if unimodal else "") + "."),
        citation=corpus.citation)
    order = list(SPLIT_NAMES.values())
    t = time.perf_counter()
    write_built_dataset(
        out_dir, features=features, manifest=manifest, provenance=provenance,
        splits=((s.name, rows(s)) for s in sorted(splits, key=lambda s: order.index(s.name))),
        sections=_card_sections(corpus, path, sha, status, nonfinite,
                                _nonfinite_lines(nonfinite_counts)),
        shard_rows=shard_rows, shard_bytes=shard_bytes)
    assert report is not None
    if progress:
        print(report.summary(), file=sys.stderr)
    return report


# --- the source ----------------------------------------------------------------------------------

CorpusName = Literal[tuple(CORPORA)]  # type: ignore[valid-type]
NonfinitePolicy = Literal[NONFINITE_POLICIES]  # type: ignore[valid-type]


@dataclass(frozen=True)
class MMSAOptions:
    """Options of ``sdme import mmsa``."""

    name: CorpusName = field(metadata={"help": "Which corpus the file holds."})
    path: Path = field(metadata={
        "help": "MMSA pickle: aligned_50.pkl, unaligned_50.pkl, unaligned_39.pkl or "
                "sims_unaligned.pkl.", "exists": True, "path": "file"})
    nonfinite: NonfinitePolicy = field(default="zero", metadata={
        "help": "NaN/inf in the features: replace with 0 (reported), drop the clip, or stop."})


@contextmanager
def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
    """A small random CH-SIMS file in MMSA's layout (real feature sizes, unimodal scores)."""
    import pickle

    rng = np.random.default_rng(0)
    data = {split: fake_split("chsims", split, n, rng)
            for split, n in (("train", 6), ("valid", 4), ("test", 4))}
    path = Path(workdir) / "SIMS" / "Processed" / "unaligned_39.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    yield {"name": "chsims", "path": path}


CARD = SourceCard(
    title="CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2 as MMSA's feature files",
    summary="CMU-MOSI, CMU-MOSEI, CH-SIMS or CH-SIMS v2 from MMSA's feature pickle (read "
            "safely).",
    homepage="https://github.com/thuiar/MMSA",
    license="MMSA's code: MIT; the corpora: research use under each corpus's own terms.",
    obtain="Download the Processed/*.pkl files linked from MMSA's README (CMU-MOSI and "
           "CMU-MOSEI: aligned_50.pkl / unaligned_50.pkl; CH-SIMS: unaligned_39.pkl; CH-SIMS "
           "v2: sims_unaligned.pkl), accepting each corpus's terms, then `sdme import mmsa "
           "--name CORPUS --path FILE`.",
    citation="; ".join(f"{c.title}: {c.citation}" for c in CORPORA.values())
             + " Yu et al. (2021), MMSA (https://github.com/thuiar/MMSA).")


@register_source("mmsa", kind="built", options=MMSAOptions, card=CARD, fixture=fixture,
                 dataset_name=lambda options: str(options["name"]))
def deliver(target: Path, *, name: str, path: str | os.PathLike, nonfinite: str = "zero",
            progress: bool = False) -> ImportReport:
    """Imports the MMSA pickle ``path`` of corpus ``name`` into ``target`` (:func:`import_mmsa`)."""
    return import_mmsa(path, name, target, nonfinite=nonfinite, progress=progress)


__all__ = ["CORPORA", "KNOWN_FILES", "NONFINITE_POLICIES", "Corpus", "ImportReport", "KnownFile",
           "MMSAError", "MMSAOptions", "get_corpus", "import_mmsa", "verify_file"]
