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

MOSI_METRICS = ("mae", "corr", "acc2_has0", "f1_has0", "acc2_non0", "f1_non0", "acc3", "acc5",
                "acc7")
SIMS_METRICS = ("mae", "corr", "acc2_sims", "f1_sims", "acc3_sims", "acc5_sims")

register_task(Task(
    name="cmu-mosi",
    version=1,
    dataset="mosi",
    source="mmsa",
    source_options={"name": "mosi", "path": "PATH/TO/MOSI/Processed/unaligned_50.pkl"},
    description=(
        "Sentiment regression on CMU-MOSI as published by MMSA (pre-extracted features, "
        "`sdme import mmsa --name mosi`), on MMSA's splits: predict the clip's `score` in "
        "[-3, 3]. MAE is the headline, beside Pearson r, Acc-2 and F1 (has-0 and non-0) and "
        "Acc-3/5/7. The corpus has no unimodal labels: there are no relevance or deviation "
        "reports. The dataset fingerprint is not pinned (the features cannot be shipped); "
        "every results file records it."),
    task_type="continuous",
    continuous_scale="mosi",
    metrics=MOSI_METRICS,
    main_score="mae",
    label_column="score",
    robustness_metric="acc2_has0",
    released_sha256="3eeca0af98eb352ab8e74defb254eb8c5ab8b8ad25a7bd22d4648d09f0705949",
))

register_task(Task(
    name="cmu-mosei",
    version=1,
    dataset="mosei",
    source="mmsa",
    source_options={"name": "mosei", "path": "PATH/TO/MOSEI/Processed/unaligned_50.pkl"},
    description=(
        "Sentiment regression on CMU-MOSEI as published by MMSA (pre-extracted features, "
        "`sdme import mmsa --name mosei`), on MMSA's splits: predict the clip's `score` in "
        "[-3, 3]. MAE is the headline, beside Pearson r, Acc-2 and F1 (has-0 and non-0) and "
        "Acc-3/5/7. The corpus has no unimodal labels: there are no relevance or deviation "
        "reports. The dataset fingerprint is not pinned (the features cannot be shipped); "
        "every results file records it."),
    task_type="continuous",
    continuous_scale="mosi",
    metrics=MOSI_METRICS,
    main_score="mae",
    label_column="score",
    robustness_metric="acc2_has0",
    released_sha256="5f7b18f2eb84e970a2c4c6223f648fc69de61a1f22fca8095001334710e14a43",
))

register_task(Task(
    name="ch-sims",
    version=1,
    dataset="chsims",
    source="mmsa",
    source_options={"name": "chsims", "path": "PATH/TO/SIMS/Processed/unaligned_39.pkl"},
    description=(
        "Sentiment regression on CH-SIMS as published by MMSA (pre-extracted features, "
        "`sdme import mmsa --name chsims`), on MMSA's splits: predict the clip's `score` in "
        "[-1, 1]. MAE is the headline, beside Pearson r and the SIMS Acc-2, F1, Acc-3 and "
        "Acc-5. Relevance and deviation reports use the relevance fields derived from the "
        "unimodal scores. The dataset fingerprint is not pinned (the features cannot be "
        "shipped); every results file records it."),
    task_type="continuous",
    continuous_scale="sims",
    metrics=SIMS_METRICS,
    main_score="mae",
    label_column="score",
    robustness_metric="acc2_sims",
    released_sha256="d452081836eb3fecbcfb6339b3447abd0a606d44dc1076a6fecc307dbabd4557",
))

register_task(Task(
    name="ch-sims-v2",
    version=1,
    dataset="chsims2",
    source="mmsa",
    source_options={"name": "chsims2", "path": "PATH/TO/sims_unaligned.pkl"},
    description=(
        "Sentiment regression on CH-SIMS v2.0 as published by MMSA (pre-extracted features, "
        "`sdme import mmsa --name chsims2`), on MMSA's splits: predict the clip's `score` in "
        "[-1, 1]. MAE is the headline, beside Pearson r and the SIMS Acc-2, F1, Acc-3 and "
        "Acc-5. Relevance and deviation reports use the relevance fields derived from the "
        "unimodal scores. The dataset fingerprint is not pinned (the features cannot be "
        "shipped); every results file records it."),
    task_type="continuous",
    continuous_scale="sims",
    metrics=SIMS_METRICS,
    main_score="mae",
    label_column="score",
    robustness_metric="acc2_sims",
    released_sha256="36dc8c55a6e046073cad74abb9cea2f4eab8b3c4de2a7619eff6d54ad0f8c3df",
))
