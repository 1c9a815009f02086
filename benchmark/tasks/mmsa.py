"""Sentiment regression on the corpora MMSA publishes as pre-extracted features.

CMU-MOSI and CMU-MOSEI (Zadeh et al., 2016 and 2018; scores in [-3, 3], scale ``mosi``) and
CH-SIMS and CH-SIMS v2.0 (Yu et al., 2020; Liu et al., 2022; scores in [-1, 1], scale ``sims``),
imported with ``sdme import mmsa --name DATASET`` from MMSA's pickles
(https://github.com/thuiar/MMSA). Each task trains on the float ``score`` column on MMSA's
splits and reports every MMSA metric of its scale; MAE is the headline (the trainer's default
validation metric for regression too), and the scale's binary accuracy is the robustness
metric (bounded, higher is better, the same decision as the per-clip ``correct`` of the
stratified report). The features cannot be shipped, so no dataset fingerprint is pinned; every
results file records the one it was computed on.
"""

from __future__ import annotations

from benchmark.tasks import Task, register_task
from sdme.mmsa import CORPORA

MOSI_METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5",
                "acc7")
SIMS_METRICS = ("mae", "corr", "acc2_sims", "f1_sims", "acc3_sims", "acc5_sims")


def mmsa_task(name: str, dataset: str, path: str, released_sha256: str) -> Task:
    """A regression task on one MMSA corpus (module docstring): ``dataset`` is its name in
    ``sdme.mmsa.CORPORA`` (``sdme import mmsa --name``), which gives its title and score scale;
    ``path`` is the placeholder of its pickle in the recipe."""
    title, scale = CORPORA[dataset].title, CORPORA[dataset].scale
    sims = scale == "sims"
    return Task(
        name=name,
        version=1,
        dataset=dataset,
        source="mmsa",
        source_options={"name": dataset, "path": path},
        description=(
            f"Sentiment regression on {title} as published by MMSA (pre-extracted features, "
            f"`sdme import mmsa --name {dataset}`), on MMSA's splits: predict the clip's "
            f"`score` in {'[-1, 1]' if sims else '[-3, 3]'}. MAE is the headline, beside "
            + ("Pearson r and the SIMS Acc-2, F1, Acc-3 and Acc-5. Relevance and deviation "
               "reports use the relevance fields derived from the unimodal scores."
               if sims else "Pearson r, Acc-2 and F1 (has-0 and non-0) and Acc-3/5/7. The "
               "corpus has no unimodal labels: there are no relevance or deviation reports.")
            + " The dataset fingerprint is not pinned (the features cannot be shipped); every "
            "results file records it."),
        task_type="continuous",
        continuous_scale=scale,
        metrics=SIMS_METRICS if sims else MOSI_METRICS,
        main_score="mae",
        label_column="score",
        robustness_metric="acc2_sims" if sims else "acc2_has0",
        released_sha256=released_sha256,
    )


register_task(mmsa_task(
    "cmu-mosi", "mosi", "PATH/TO/MOSI/Processed/unaligned_50.pkl",
    "3eeca0af98eb352ab8e74defb254eb8c5ab8b8ad25a7bd22d4648d09f0705949"))
register_task(mmsa_task(
    "cmu-mosei", "mosei", "PATH/TO/MOSEI/Processed/unaligned_50.pkl",
    "5f7b18f2eb84e970a2c4c6223f648fc69de61a1f22fca8095001334710e14a43"))
register_task(mmsa_task(
    "ch-sims", "chsims", "PATH/TO/SIMS/Processed/unaligned_39.pkl",
    "d452081836eb3fecbcfb6339b3447abd0a606d44dc1076a6fecc307dbabd4557"))
register_task(mmsa_task(
    "ch-sims-v2", "chsims2", "PATH/TO/sims_unaligned.pkl",
    "36dc8c55a6e046073cad74abb9cea2f4eab8b3c4de2a7619eff6d54ad0f8c3df"))
