"""CH-SIMS v2.0 built from its raw videos: accuracy on aligned vs conflicting clips.

``ch-sims-v2-raw`` evaluates on the corpus the ``chsims`` source makes from the authors' raw
release (``sdme download chsims --corpus chsims2 --path DIR && sdme build chsims2-raw``: the
videos go through SDME's own extractors, unlike the ``ch-sims-v2`` task on MMSA's features).
The target is the 3-class sentiment ``label`` (negative, neutral, positive) that ``sdme.scores``
derives from the multimodal score by MMSA's SIMS bins; the official ``mode`` split is kept.

A clip is **aligned** when every modality's own class (its unimodal score, annotated with the
modality isolated, discretised by the same rule) equals the clip's class — ``deviation`` 0 —
and **conflicting** when at least one differs (``deviation`` >= 1). Every results file reports
accuracy on both (``stratified.by_agreement``), beside accuracy per deviation level and per set
of deviating modalities. The split is comparable in spirit with DiffEmo's aligned and
conflicting sets of CH-SIMS v2.0 (Wang and Wu, "Evaluation of data inconsistency for
multi-modal sentiment analysis", Interspeech 2024, arXiv:2406.03004), which also come from the
unimodal labels; we could not read DiffEmo's exact rule, so the two are not verified identical.
"""

from __future__ import annotations

from benchmark.tasks import Task, register_task

register_task(Task(
    name="ch-sims-v2-raw",
    version=1,
    dataset="chsims2-raw",
    source="chsims",
    source_options={"path": "PATH/TO/ch-sims-v2", "corpus": "chsims2"},
    description=(
        "3-class sentiment classification on CH-SIMS v2.0 built from its raw videos (`sdme "
        "download chsims --corpus chsims2 --path DIR && sdme build chsims2-raw`, any "
        "registered extractors), on the official split: predict `label` (negative, neutral, "
        "positive: the multimodal score by MMSA's SIMS bins). Accuracy is the headline, "
        "beside macro and weighted F1, and it is reported on aligned clips (every unimodal "
        "score's class equals the clip's: deviation 0) vs conflicting ones (deviation >= 1), "
        "a split comparable in spirit with DiffEmo's (Wang and Wu, Interspeech 2024), not "
        "verified identical. The dataset fingerprint is not pinned (the videos cannot be "
        "shipped); every results file records it."),
    task_type="discrete",
    metrics=("accuracy", "macro_f1", "weighted_f1"),
    main_score="accuracy",
    released_sha256="b452b908979fa13d361212f9ab2c33152d30a5ba8ec37599a6a0a9370319ef3e",
))
