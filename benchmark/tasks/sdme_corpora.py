"""Tasks on SDME-format corpora: single-label emotion classification with relevance annotations.

* ``sdme-sample-discrete`` — the bundled sample corpus (``sdme download && sdme build``): a
  pipeline check (a few test clips), not a result.
* ``sdme-synth-discrete`` — the synthetic controlled-deviation corpus of
  ``sdme synth --preset benchmark`` (``sdme.synth``), whose dataset fingerprint is pinned.
* ``sdme-synth-structured`` — the same generator with structured deviation (display rules,
  mask emotions, expressivity; ``--preset structured``), fingerprint pinned too.
"""

from __future__ import annotations

from benchmark.tasks import Task, register_task

register_task(Task(
    name="sdme-sample-discrete",
    version=1,
    dataset="sample",
    description=(
        "Single-label emotion classification on the bundled SDME sample corpus (built with "
        "`sdme download && sdme build`): train on `train`, select checkpoints on "
        "`validation`, score `test`. Accuracy is the headline; macro and weighted F1 are "
        "reported beside it, with accuracy stratified by semantic deviation, relevance "
        "AUROC and robustness to a missing or noisy modality."),
    task_type="discrete",
    metrics=("accuracy", "macro_f1", "weighted_f1"),
    main_score="accuracy",
    source="sample",
    released_sha256="a51b545acba8ba522ce1ce83c047565d6d1e814ad0cecea4cb849b7382acb7e9",
    pipeline_check=True,
))

register_task(Task(
    name="sdme-synth-discrete",
    version=1,
    dataset="synth",
    description=(
        "Single-label 7-class emotion classification on the synthetic controlled-deviation "
        "corpus made by `sdme synth --preset benchmark` (2,400 clips; text, audio and "
        "vision express another class than the clip's with probability 0.2, 0.3 and 0.4; "
        "moderately imbalanced classes; ground-truth relevance). Train on `train`, select "
        "on `validation`, score `test`; accuracy is the headline, with accuracy by "
        "deviation level, relevance AUROC against the ground truth and robustness. The "
        "dataset fingerprint is pinned: only the preset's exact corpus is accepted. "
        "Synthetic data: numbers compare methods under known deviation, not emotion "
        "recognition."),
    task_type="discrete",
    metrics=("accuracy", "macro_f1", "weighted_f1"),
    main_score="accuracy",
    dataset_fingerprint="205a41c33827937464683089c643fa864d95c98a527a915158765f438fff4817",
    source="synth",
    source_options={"preset": "benchmark"},
    released_sha256="9ea62475d8b2007a2e3cc33193a44eb8fb6667e0aebb4c20a1e18ee31363ded6",
))

register_task(Task(
    name="sdme-synth-structured",
    version=1,
    dataset="synth-structured",
    description=(
        "Single-label 7-class emotion classification on the synthetic corpus with "
        "*structured* semantic deviation made by `sdme synth --preset structured` (3,600 "
        "clips, 540 in test): besides chance deviation (text 0.1, audio 0.15, vision 0.2), "
        "class-dependent display rules (anger and disgust worded neutrally, fear in a "
        "neutral voice, sadness masked by a smile, fear shown as surprise), mask emotions "
        "(a deviating modality shows neutral or happiness half of the time) and per-clip "
        "expressivity (a weaker, noisier modality deviates more often); ground-truth "
        "relevance. Train on `train`, select on `validation`, score `test`; accuracy is "
        "the headline, with accuracy by deviation level, relevance AUROC and robustness. "
        "The dataset fingerprint is pinned. Synthetic data: numbers compare methods under "
        "known deviation, not emotion recognition."),
    task_type="discrete",
    metrics=("accuracy", "macro_f1", "weighted_f1"),
    main_score="accuracy",
    dataset_fingerprint="102e1e0f7ba9da393237f1663da54d5d1211cce2c46f54d1ea48df9df9f1c397",
    source="synth",
    source_options={"preset": "structured"},
    released_sha256="6ff5c34ccededa11673f9f75dba3f5d0aae8df843b3798867dd46da75720abe4",
))
