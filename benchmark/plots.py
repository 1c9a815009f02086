"""The leaderboard's plots (matplotlib, Agg backend), as PNG bytes.

* :func:`deviation_plot` — the page's chart at a glance: accuracy by semantic-deviation level
  for every model on the board, one panel per level, one horizontal bar per model (95% CI error
  bars, the value written at the bar's end), models in the board's ranking order and named on
  the shared axis — with the relevance AUROC beside each model that estimates relevance, and
  the shipped reference rows told apart from the runs on this machine by colour and label. Bars
  named on the axis stay readable with sixteen models or more, where a legend of sixteen
  colours would not.
* :func:`robustness_plot` — score vs. noise level, one panel per noise curve, one line (± CI
  band) per model.

Every value drawn is read from the results files (``benchmark.leaderboard.TaskBoard``).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from sdme.metrics import METRICS, metric_info

if TYPE_CHECKING:
    from benchmark.leaderboard import TaskBoard

#: Bar colours: runs on this machine, and the shipped reference results.
LOCAL_COLOR = "#d95f02"
SHIPPED_COLOR = "#1f78b4"


def _figure_png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _pyplot() -> object:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def model_colors(n: int) -> list[object]:
    """``n`` distinct colours: matplotlib's tab10, or tab20 beyond ten models (no colour is
    reused while there are at most twenty)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def deviation_plot(board: TaskBoard) -> bytes | None:
    """Accuracy by deviation level, every model of the board (module docstring); None when no
    entry has a deviation-stratified report."""
    rows = [i for i, r in enumerate(board.entries) if r.aggregate.stratified is not None
            and r.aggregate.stratified.by_deviation]
    if not rows:
        return None
    levels = sorted({k for i in rows for k in board.entries[i].aggregate.stratified.by_deviation},
                    key=int)
    counts: dict[str, int] = {}
    for i in rows:
        first = board.entries[i].per_seed[0].stratified
        for level in levels:
            if first is not None and level in first.by_deviation:
                counts.setdefault(level, first.by_deviation[level].n)
    labels = []
    for i in rows:
        auroc = board.entries[i].aggregate.relevance_auroc
        labels.append(board.label(i) + (f" · AUROC {auroc.mean:.2f}" if auroc else ""))
    plt = _pyplot()
    height = 0.3 * len(rows) + 1.8
    fig, axes = plt.subplots(1, len(levels), figsize=(2.6 * len(levels) + 1.0, height),
                             sharey=True, squeeze=False)
    try:
        ys = list(range(len(rows)))[::-1]  # the best-ranked model on top
        for ax, level in zip(axes[0], levels, strict=True):
            for y, i in zip(ys, rows, strict=True):
                table = board.entries[i].aggregate.stratified.by_deviation
                if level not in table:
                    continue
                a = table[level]
                color = SHIPPED_COLOR if board.is_shipped(i) else LOCAL_COLOR
                half = a.ci95_half_width or 0.0  # drawn within [0, 1], where accuracy lives
                low, high = min(half, a.mean), min(half, 1.0 - a.mean)
                ax.barh(y, a.mean, xerr=[[low], [high]], color=color, height=0.7,
                        error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333"})
                ax.text(a.mean + high + 0.02, y, f"{a.mean:.2f}", va="center", fontsize=7)
            n = f" (n={counts[level]})" if level in counts else ""
            ax.set_title(f"deviation {level}{n}", fontsize=9)
            ax.set_xlim(0, 1.15)
            ax.set_xticks([0, 0.5, 1.0])
            ax.grid(axis="x", alpha=0.3)
        axes[0][0].set_yticks(ys, labels, fontsize=8)
        from matplotlib.patches import Patch

        legend = []
        if not all(board.is_shipped(i) for i in rows):
            legend.append(Patch(color=LOCAL_COLOR, label="run on this machine"))
        if any(board.is_shipped(i) for i in rows):
            legend.append(Patch(color=SHIPPED_COLOR, label="shipped reference"))
        fig.suptitle(f"{board.task}: accuracy by deviation level (how many modalities express "
                     "another emotion than the clip's)", fontsize=10)
        fig.tight_layout()
        fig.legend(handles=legend, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
                   ncol=2, frameon=False, title="accuracy: mean over seeds, 95% CI",
                   title_fontsize=8)
        return _figure_png(fig)
    finally:
        plt.close(fig)


def robustness_plot(board: TaskBoard) -> bytes:
    """Score vs. noise level, one panel per noise curve, one line (± CI band) per model."""
    plt = _pyplot()
    first = board.entries[0]
    curves = list(first.aggregate.robustness.noise)
    levels = first.per_seed[0].robustness.levels
    metric = first.per_seed[0].robustness.metric
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3.2), sharey=True,
                             squeeze=False)
    colors = model_colors(len(board.entries))
    try:
        for ax, curve in zip(axes[0], curves, strict=True):
            for i, (r, color) in enumerate(zip(board.entries, colors, strict=True)):
                points = r.aggregate.robustness.noise[curve]
                means = [a.mean for a in points]
                ax.plot(levels, means, marker="o", label=board.label(i), color=color,
                        linestyle="--" if board.is_shipped(i) else "-")
                if all(a.ci95_low is not None for a in points):
                    ax.fill_between(levels, [a.ci95_low for a in points],
                                    [a.ci95_high for a in points], alpha=0.15, color=color)
            ax.set_title(f"noise on {curve}")
            ax.set_xlabel("noise level (× feature std)")
        info = metric_info(metric) if metric in METRICS else None
        if info is not None and info.high is not None:  # CI bands can leave the valid range
            axes[0][0].set_ylim(info.low - 0.02, info.high + 0.02)
        axes[0][0].set_ylabel(metric)
        axes[0][-1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.suptitle(f"{board.task}: {metric} under test-time noise", y=1.04)
        return _figure_png(fig)
    finally:
        plt.close(fig)


__all__ = ["LOCAL_COLOR", "SHIPPED_COLOR", "deviation_plot", "model_colors", "robustness_plot"]
