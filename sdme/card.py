"""The dataset card (``README.md``) of a built SDME dataset, in the Hugging Face card format.

The YAML header carries ``dataset_info`` (features and split sizes) and ``configs`` (the data
files of each split), which is what lets plain ``datasets.load_dataset(<built dir>)`` read the
folder with the right features (ClassLabel names, ``Array2D`` feature shapes). The body follows
the sections of the Hugging Face dataset card template
(https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/templates/datasetcard_template.md):
description, structure, creation, annotations, bias and limitations, license, citation.
Everything in it is read from the build's provenance (``sdme.built.BuildInfo``) and the corpus
manifest; nothing is hard-coded per corpus. ``sdme.built.write_built_dataset`` renders it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

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
)
from sdme.schema import MODALITIES, SPLITS, CorpusManifest

if TYPE_CHECKING:
    import datasets

    from sdme.built import BuildInfo, ClipEvent

def _docs(*entries: tuple[str | Mapping[str, str], str]) -> dict[str, str]:
    """Column docs keyed by column name: an entry is a column name, or a per-modality column
    map of ``sdme.built`` whose text is formatted with the modality ``m``."""
    out: dict[str, str] = {}
    for column, doc in entries:
        if isinstance(column, str):
            out[column] = doc
        else:
            out.update({column[m]: doc.format(m=m) for m in MODALITIES})
    return out


FIELD_DOCS: dict[str, str] = _docs(
    (CLIP_ID, "Clip identifier (unique in the corpus)."),
    (VIDEO_ID, "Source video the clip was cut from."),
    (SPEAKER_ID, "Speaker shown and heard in the clip."),
    (START, "Start of the clip in its source video, seconds."),
    (END, "End of the clip in its source video, seconds."),
    (TEXT, "Transcript of what is said."),
    (LANGUAGE, "Language of the transcript (BCP-47 tag)."),
    (LABEL, "Multimodal emotion label (ClassLabel over the taxonomy)."),
    (VOTES, "Labels annotators gave from the {m} alone (empty: not annotated)."),
    (UNIMODAL_LABEL, "Majority of `votes_{m}`; null without votes."),
    (RELEVANCE, "Share of `votes_{m}` equal to `label`, in [0, 1]; null without votes."),
    (DEVIATION, "How many modalities have `label_<m>` != `label` (0-3); null without votes."),
    (FEAT, "{m} features, `[{m}_len, dim]` float32 (see Dataset creation)."),
    (LENGTH, "Rows of `{m}_feat`; 0 when the modality is missing for this clip."),
    # Optional columns (sdme.built.OPTIONAL_COLUMNS).
    (SCORE, "Continuous sentiment score of the clip, on the corpus's scale (see Annotations); "
            "`label` is derived from it."),
    (UNIMODAL_SCORE, "Sentiment score annotators gave from the {m} alone (see Annotations)."),
    (TEXT_TOKENS, "BERT input per text step: token id, attention mask, segment id "
                  "(`[text_len, 3]`)."),
)


#: Card sections a producer other than ``sdme build`` may replace (``render_card(sections=...)``).
SECTIONS: tuple[str, ...] = ("description", "creation", "annotations", "limitations", "license")


#: Field docs of the relevance fields when they come from unimodal scores (``sdme.scores``).
SCORE_FIELD_DOCS: dict[str, str] = _docs(
    (UNIMODAL_LABEL, "Class of `score_{m}` by the label rule (see Annotations); null without "
                     "it."),
    (RELEVANCE, "1 - abs(`score_{m}` - `score`) / score range, clipped to [0, 1]; null "
                "without `score_{m}`."),
    (DEVIATION, "How many modalities have `label_<m>` != `label` (0-3); null without unimodal "
                "scores."),
)


def _field_doc(name: str, docs: Mapping[str, str] = FIELD_DOCS) -> str:
    return docs.get(name, "")


def _hub_license(license_: str) -> str:
    value = license_.strip().lower()
    return value if re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", value) else "other"


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def card_metadata(*, manifest: CorpusManifest, features: datasets.Features,
                  build_info: BuildInfo, split_bytes: Mapping[str, int]) -> dict[str, Any]:
    """The YAML header of the card as a mapping."""
    counts = build_info.counts.splits
    splits = [s for s in SPLITS if s in counts]
    meta: dict[str, Any] = {
        "pretty_name": f"SDME {manifest.name}",
        "license": _hub_license(manifest.license),
        "language": list(build_info.languages),
        "task_categories": ["video-classification", "audio-classification",
                            "text-classification"],
        "tags": ["emotion-recognition", "multimodal", "sdme", "semantic-deviation"],
        "size_categories": [_size_category(build_info.counts.rows)],
        "configs": [{
            "config_name": "default",
            "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits],
        }],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": s, "num_bytes": int(split_bytes.get(s, 0)),
                        "num_examples": int(counts[s])} for s in splits],
            "dataset_size": int(sum(split_bytes.get(s, 0) for s in splits)),
        },
    }
    if meta["license"] == "other":
        meta["license_name"] = manifest.license
    return meta


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(*, manifest: CorpusManifest, features: datasets.Features,
                build_info: BuildInfo, split_bytes: Mapping[str, int],
                sections: Mapping[str, str] | None = None) -> str:
    """The full ``README.md`` of a built dataset.

    Args:
        manifest: The source corpus manifest.
        features: The dataset's features (``sdme.built.dataset_features``).
        build_info: The provenance record written beside the card.
        split_bytes: In-memory Arrow size of each split.
        sections: Replacement bodies for the sections that describe how a dataset *not* built
            from a raw corpus by ``sdme build`` came about (the synthetic corpus, imported
            feature releases): any of ``"description"`` (the paragraph after the corpus
            description), ``"creation"``, ``"annotations"``, ``"limitations"``, ``"license"``.
    """
    sections = dict(sections or {})
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise ValueError(f"unknown card section(s) {unknown}; known: {list(SECTIONS)}")
    meta = card_metadata(manifest=manifest, features=features, build_info=build_info,
                         split_bytes=split_bytes)
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    info = build_info
    counts = info.counts
    split = info.split
    source = info.source
    name = manifest.name

    split_rows = [[s, n, ", ".join(f"{k} {v}" for k, v in split["label_counts"].get(s, {}).items()),
                   split["speakers"].get(s, "?"), split["videos"].get(s, "?")]
                  for s, n in counts.splits.items()]
    field_rows = []
    docs = dict(FIELD_DOCS)
    if (info.relevance or {}).get("source") == "unimodal_scores":
        docs.update(SCORE_FIELD_DOCS)
    for f in meta["dataset_info"]["features"]:
        dtype = f.get("dtype", f.get("list"))
        if isinstance(dtype, dict) and "array2_d" in dtype:
            shape = dtype["array2_d"]["shape"]
            dtype = f"Array2D([None, {shape[1]}], {dtype['array2_d'].get('dtype', 'float32')})"
        elif isinstance(dtype, dict) and "class_label" in dtype:
            dtype = f"ClassLabel({len(dtype['class_label']['names'])} classes)"
        elif "list" in f:
            dtype = f"list of {dtype}"
        field_rows.append([f"`{f['name']}`", dtype, _field_doc(f["name"], docs)])
    extractor_rows = [[m, f"`{e.name}` v{e.version}", e.dim,
                       ", ".join(f"{k}={v}" for k, v in e.params.items())]
                      for m, e in info.extractors.items()]
    dropped = _count_events(info.dropped)
    missing = _count_events(info.missing)
    protocol = manifest.annotation_protocol
    protocol_text = "\n".join(f"- **{k}**: {v}" for k, v in protocol.items()) or \
        "- (the manifest records no annotation protocol)"
    taxonomy = ", ".join(f"`{i}` {t}" for i, t in enumerate(manifest.taxonomy))
    ratios = ", ".join(f"{s} {r:.0%}" for s, r in split["ratios"].items())
    if split["policy"] == "corpus":
        split_text = ("The splits are the corpus's own (the `split` column of its "
                      "annotations).")
        if split["shared_speakers"] or split["shared_videos"]:
            split_text += (f" They share {len(split['shared_speakers'])} speaker(s) and "
                           f"{len(split['shared_videos'])} source video(s) between splits.")
    else:
        split_text = (
            f"Speaker- and source-video-disjoint, stratified by label (`sdme.splits`): the "
            f"{split['n_groups']} groups of clips linked by a shared speaker or video are "
            f"assigned whole, targeting {ratios} of the clips and the corpus label "
            f"distribution in every split (largest gap in a label's share: "
            f"{split['max_label_gap']:.3f}); seed {split['seed']}.")
    description = manifest.description or f"The {name} corpus."

    bodies = {
        "description": f"""\
This is the **built** form of the raw corpus `{name}` version {source.version} (manifest
sha256 `{source.fingerprint[:16]}…`), made by the SDME toolkit {info.sdme_version}
(`sdme build`). Each row is one clip with its transcript, its multimodal emotion label, the
per-modality *relevance* annotations of SDME (does the text, the voice, the face express the
clip's emotion?) and pre-extracted text, audio and vision feature sequences, ready for
multimodal emotion recognition under semantic deviation.""",
        "creation": f"""\
Built from the raw corpus (`sdme.json`, `annotations.csv`, `clips/<clip_id>.mp4`) by these
feature extractors (`sdme.features`; full parameters and fingerprints in `build_info.json`):

{_table(["modality", "extractor", "dim", "parameters"], extractor_rows)}""",
        "annotations": """\
Relevance fields (`sdme.relevance`), for each modality m in text, audio, vision, derived from the
labels annotators gave when shown that modality alone (`votes_m`: transcript only, audio only,
muted video):

- `label_m`: the most frequent vote (ties favour the clip label, then taxonomy order);
- `relevance_m`: the share of `votes_m` equal to `label`, in [0, 1];
- `deviation`: how many modalities have `label_m` different from `label` (0-3).

A clip or corpus without unimodal votes has these fields null: they are never invented.""",
        "limitations": f"""\
- The corpus is small: {counts.rows} clips from {sum(split['speakers'].values())} speakers.
  Scores on it have wide confidence intervals and do not transfer to other speakers, languages
  or recording conditions without evidence.
- Emotion labels are the annotators' perception of expressed emotion, not the speakers' felt
  emotion; the taxonomy forces one category per clip.
- Features come from pre-trained models with their own biases: face detection (MTCNN) and text
  encoders are known to work less well for some demographic groups, lighting conditions and
  languages. A missing face or audio track is recorded (`*_len` = 0), not imputed.
- The clips show people's faces and voices: use them only as the corpus license allows, and do
  not use the data to identify people.""",
        "license": f"""\
{manifest.license} (the license of the source corpus `{name}`; the features are derived data).""",
    }
    bodies.update(sections)
    return f"""---
{header}---

# Dataset card for SDME {name}

## Dataset description

{description}

{bodies['description']}

```python
import datasets
ds = datasets.load_dataset("path/to/this/folder")   # or sdme.load_dataset("{name}")
ds = ds.with_format("torch")                         # feature columns become [T, dim] tensors
```

## Dataset structure

{_table(["split", "clips", "labels", "speakers", "videos"], split_rows)}

{_table(["field", "type", "meaning"], field_rows)}

## Dataset creation

{bodies['creation']}

**Splits.** {split_text}

**Clips that could not yield a modality.** Policy: {info.policy.description}.
Of {counts.raw_clips} clips, {counts.dropped} were dropped ({dropped or 'none'}) and
{sum(counts.missing.values())} modality sequence(s) are missing ({missing or 'none'});
`build_info.json` lists each with its reason.

## Annotations

Taxonomy (`label` ClassLabel order): {taxonomy}.

Annotation protocol, as the corpus manifest records it:

{protocol_text}

{bodies['annotations']}

## Bias, risks and limitations

{bodies['limitations']}

## License

{bodies['license']}

## Citation

{manifest.citation or "The source corpus records no citation."}
"""


def _count_events(events: list[ClipEvent]) -> str:
    counts: dict[str, int] = {}
    for e in events:
        key = f"{e.modality} {e.reason}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


__all__ = ["SECTIONS", "card_metadata", "render_card"]
