"""``benchmark leaderboard``: Markdown and a static HTML page from the accepted results.

Reads every ``<store>/<task>/<model>.json`` (validated strictly, as on submission) and renders,
per task:

* the main table: mean ± 95% CI half-width (``benchmark.metrics.aggregate``) of the main score
  and every other metric of the task, the relevance AUROC, the number of seeds and the dataset
  fingerprint, ranked by the main score;
* accuracy on aligned clips (deviation 0) vs conflicting ones (deviation >= 1), then stratified
  by deviation level and by the set of deviating modalities;
* robustness: the clean score, the score with each modality dropped, relative robustness of
  each noise curve and effective robustness against the task's reference model
  (``Task.reference_model``, late fusion by default, as in MultiBench) when the store has it;
* plots (matplotlib, Agg backend): deviation-stratified accuracy per model, and the robustness
  curves (score vs. noise level, one line per model, per noisy modality). The HTML page embeds
  them as base64 PNG; the Markdown file links PNG files written beside it.

Every number shown is read from, or computed (effective robustness) from, the results files: the
page has no other input. Nothing is served: open ``index.html`` in a browser.
:func:`results_summary` renders the same tables for one results file; ``python -m benchmark run``
prints it.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.metrics import Aggregate, effective_robustness
from benchmark.results import Results, ResultsError, load_results
from sdme.fileio import atomic_write_bytes, atomic_write_text
from sdme.metrics import METRICS, metric_info

PLOTS_DIR = "plots"
AGREEMENT_TITLE = "Accuracy on aligned vs conflicting clips (deviation 0 vs >= 1)"


@dataclass
class TaskBoard:
    """The accepted results of one task's latest version, ranked by main score (best first);
    ``superseded`` names entries for older versions (not shown)."""

    task: str
    entries: list[Results]
    superseded: list[str] = field(default_factory=list)

    @property
    def definition(self) -> dict:
        return self.entries[0].task.definition

    @property
    def main_score(self) -> str:
        return self.definition["main_score"]

    @property
    def metrics(self) -> list[str]:
        main = self.main_score
        return [main, *(m for m in self.definition["metrics"] if m != main)]


def load_boards(store: str | os.PathLike, task: str | None = None) -> list[TaskBoard]:
    """Reads the store: one :class:`TaskBoard` per task folder (or only ``task``).

    Raises:
        ResultsError: a results file in the store is invalid (naming it).
        FileNotFoundError: the store does not exist.
    """
    store = Path(store)
    if not store.is_dir():
        raise FileNotFoundError(f"{store}: no leaderboard store; accept results into it with "
                                "`python -m benchmark submit RESULTS`")
    boards = []
    for folder in sorted(p for p in store.iterdir() if p.is_dir() and p.name != PLOTS_DIR):
        if task is not None and folder.name != task:
            continue
        entries = []
        for path in sorted(folder.glob("*.json")):
            results = load_results(path)
            if results.task.name != folder.name:
                raise ResultsError(path, "task.name", f"{results.task.name!r} does not match "
                                   f"its folder {folder.name!r}")
            entries.append(results)
        if not entries:
            continue
        latest = max(r.task.version for r in entries)
        superseded = [f"{r.model.name} (v{r.task.version})" for r in entries
                      if r.task.version != latest]
        entries = [r for r in entries if r.task.version == latest]
        main = entries[0].task.definition["main_score"]
        sign = -1.0 if metric_info(main).higher_is_better else 1.0
        entries.sort(key=lambda r: (sign * r.aggregate.metrics[main].mean, r.model.name))
        boards.append(TaskBoard(task=folder.name, entries=entries, superseded=superseded))
    return boards


# ----------------------------------------------------------------------------- formatting


def fmt_aggregate(a: Aggregate | None, digits: int = 4) -> str:
    """``mean ± half-width`` of the 95% CI (just the mean for one seed; ``—`` when absent)."""
    if a is None:
        return "—"
    half = a.ci95_half_width
    if half is None:
        return f"{a.mean:.{digits}f}"
    return f"{a.mean:.{digits}f} ± {half:.{digits}f}"


def fmt_signed(value: float | None, digits: int = 4) -> str:
    """A signed number (``+0.0123``), ``—`` when absent."""
    return "—" if value is None else f"{value:+.{digits}f}"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(clean(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _curve_means(results: Results, curve: str) -> list[float]:
    return [a.mean for a in results.aggregate.robustness.noise[curve]]


@dataclass
class Tables:
    """The header and rows of each table of a task board (shared by Markdown and HTML)."""

    main: tuple[list[str], list[list[str]]]
    agreement: tuple[list[str], list[list[str]]] | None
    deviation: tuple[list[str], list[list[str]]] | None
    deviating: tuple[list[str], list[list[str]]] | None
    robustness: tuple[list[str], list[list[str]]]
    reference_note: str


def build_tables(board: TaskBoard) -> Tables:
    """Every table of a task, as strings computed from its results files."""
    metrics = board.metrics
    main_header = ["rank", "model", *(f"{m} (main)" if m == board.main_score else m
                                      for m in metrics), "relevance AUROC", "seeds",
                   "dataset"]
    main_rows = []
    for rank, r in enumerate(board.entries, start=1):
        main_rows.append([str(rank), r.model.name,
                          *(fmt_aggregate(r.aggregate.metrics[m]) for m in metrics),
                          fmt_aggregate(r.aggregate.relevance_auroc), str(len(r.seeds)),
                          r.dataset.fingerprint[:12]])

    def strat(attr: str, label: str) -> tuple[list[str], list[list[str]]] | None:
        keys: list[str] = []
        for r in board.entries:
            if r.aggregate.stratified is not None:
                for k in getattr(r.aggregate.stratified, attr):
                    if k not in keys:
                        keys.append(k)
        if not keys:
            return None
        header = ["model", *(f"{label}{k}" for k in keys)]
        rows = []
        for r in board.entries:
            table = getattr(r.aggregate.stratified, attr) if r.aggregate.stratified else {}
            counts = {}
            if r.per_seed and r.per_seed[0].stratified is not None:
                counts = {k: v.n for k, v in getattr(r.per_seed[0].stratified, attr).items()}
            rows.append([r.model.name, *(
                f"{fmt_aggregate(table.get(k))} (n={counts[k]})" if k in table else "—"
                for k in keys)])
        return header, rows

    agreement = strat("by_agreement", "")
    deviation = strat("by_deviation", "deviation ")
    deviating = strat("by_deviating_modalities", "")

    reference_name = board.definition.get("reference_model")
    reference = next((r for r in board.entries if r.model.name == reference_name), None)
    first = board.entries[0].aggregate.robustness
    modalities = list(first.drop)
    curves = list(first.noise)
    metric = board.entries[0].per_seed[0].robustness.metric
    header = ["model", f"clean {metric}", *(f"drop {m}" for m in modalities),
              *(f"RR {c}" for c in curves), *(f"ER {c}" for c in curves)]
    rows = []
    for r in board.entries:
        agg = r.aggregate.robustness
        clean = r.aggregate.robustness.noise[curves[0]][0]
        er = []
        for c in curves:
            if reference is None:
                er.append("—")
            else:
                er.append(fmt_signed(effective_robustness(_curve_means(r, c),
                                                          _curve_means(reference, c))))
        rows.append([r.model.name, fmt_aggregate(clean),
                     *(fmt_aggregate(agg.drop.get(m)) for m in modalities),
                     *(fmt_aggregate(agg.relative.get(c)) for c in curves), *er])
    if reference is None:
        note = (f"Effective robustness (ER) needs the reference model `{reference_name}` on "
                "this leaderboard; it is not there yet.")
    else:
        note = (f"ER: effective robustness against `{reference_name}` (MultiBench): mean over "
                "noise levels > 0 of the model's score minus the reference's score shifted to "
                "the model's clean score, from mean-over-seed curves.")
    return Tables(main=(main_header, main_rows), agreement=agreement, deviation=deviation,
                  deviating=deviating, robustness=(header, rows), reference_note=note)


# ----------------------------------------------------------------------------- plots


def _figure_png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _model_colors(n: int) -> list[object]:
    """``n`` distinct colours: matplotlib's tab10, or tab20 beyond ten models (no colour is
    reused while there are at most twenty)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def deviation_plot(board: TaskBoard) -> bytes | None:
    """Grouped bars: accuracy by deviation level, one bar per model, 95% CI error bars."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    entries = [r for r in board.entries if r.aggregate.stratified is not None
               and r.aggregate.stratified.by_deviation]
    if not entries:
        return None
    levels = sorted({k for r in entries for k in r.aggregate.stratified.by_deviation}, key=int)
    width = 0.8 / len(entries)
    colors = _model_colors(len(entries))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(levels) + 2), 3.6))
    try:
        for j, r in enumerate(entries):
            table = r.aggregate.stratified.by_deviation
            xs, ys, errs = [], [], []
            for i, level in enumerate(levels):
                if level in table:
                    a = table[level]
                    xs.append(i + (j - (len(entries) - 1) / 2) * width)
                    ys.append(a.mean)
                    errs.append(a.ci95_half_width or 0.0)
            ax.bar(xs, ys, width=width, yerr=errs, capsize=3, label=r.model.name,
                   color=colors[j])
        ax.set_xticks(range(len(levels)), [f"deviation {k}" for k in levels])
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{board.task}: accuracy by semantic deviation")
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
        return _figure_png(fig)
    finally:
        plt.close(fig)


def robustness_plot(board: TaskBoard) -> bytes:
    """Score vs. noise level, one panel per noise curve, one line (± CI band) per model."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    first = board.entries[0]
    curves = list(first.aggregate.robustness.noise)
    levels = first.per_seed[0].robustness.levels
    metric = first.per_seed[0].robustness.metric
    fig, axes = plt.subplots(1, len(curves), figsize=(3.2 * len(curves), 3.2), sharey=True,
                             squeeze=False)
    colors = _model_colors(len(board.entries))
    try:
        for ax, curve in zip(axes[0], curves, strict=True):
            for r, color in zip(board.entries, colors, strict=True):
                points = r.aggregate.robustness.noise[curve]
                means = [a.mean for a in points]
                ax.plot(levels, means, marker="o", label=r.model.name, color=color)
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


# ----------------------------------------------------------------------------- rendering


def _plots(board: TaskBoard) -> dict[str, bytes]:
    plots = {"robustness": robustness_plot(board)}
    deviation = deviation_plot(board)
    if deviation is not None:
        plots["deviation"] = deviation
    return plots


def _intro(board: TaskBoard) -> list[str]:
    d = board.definition
    lines = [f"Task `{board.task}` v{d['version']} on dataset `{d['dataset']}` "
             f"({d['task_type']}; main score `{board.main_score}`).",
             "Cells: mean ± half-width of the 95% t-interval over seeds."]
    builds = {r.dataset.fingerprint for r in board.entries}
    if len(builds) > 1:
        lines.append(f"Note: these results come from {len(builds)} different builds of the "
                     "dataset (see the dataset column); compare them with care.")
    if board.superseded:
        lines.append("Not shown (results for an older task version): "
                     + ", ".join(board.superseded) + ".")
    return lines


def _markdown_tables(tables: Tables) -> list[str]:
    """The tables of a task board as Markdown lines, each under its heading."""
    out = [_md_table(*tables.main), ""]
    if tables.agreement:
        out += [f"### {AGREEMENT_TITLE}", "", _md_table(*tables.agreement), ""]
    if tables.deviation:
        out += ["### Accuracy by deviation level", "", _md_table(*tables.deviation), ""]
    if tables.deviating:
        out += ["### Accuracy by deviating modalities", "", _md_table(*tables.deviating), ""]
    return out + ["### Robustness", "", _md_table(*tables.robustness), ""]


def render_markdown(boards: Sequence[TaskBoard], plot_files: dict[tuple[str, str], str]
                    | None = None) -> str:
    """The leaderboard as Markdown; ``plot_files`` maps (task, plot) to a relative PNG path."""
    out = ["# SDME benchmark leaderboard", ""]
    if not boards:
        out.append("No accepted results yet.")
    for board in boards:
        tables = build_tables(board)
        out += [f"## {board.task}", "", *_intro(board), "", *_markdown_tables(tables),
                tables.reference_note, ""]
        for plot in ("deviation", "robustness"):
            rel = (plot_files or {}).get((board.task, plot))
            if rel:
                out += [f"![{board.task} {plot}]({rel})", ""]
    return "\n".join(out).rstrip() + "\n"


def results_summary(results: Results) -> str:
    """The leaderboard's tables for one results file alone, as Markdown.

    What ``python -m benchmark run`` prints: the same rendering as the leaderboard, so a run's
    numbers read exactly as they will once submitted (per-seed values are in the file).
    """
    tables = build_tables(TaskBoard(task=results.task.name, entries=[results]))
    return "\n".join(_markdown_tables(tables)).rstrip()


def _html_text(line: str) -> str:
    """Escaped text with Markdown code spans as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(line))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def render_html(boards: Sequence[TaskBoard],
                plots: dict[str, dict[str, bytes]] | None = None) -> str:
    """A self-contained page: tables plus plots embedded as base64 PNG.

    Args:
        boards: the task boards.
        plots: task -> plot name -> PNG bytes (default: rendered here).
    """
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>SDME benchmark leaderboard</title>", f"<style>{_STYLE}</style>",
             "</head><body>", "<h1>SDME benchmark leaderboard</h1>"]
    if not boards:
        parts.append("<p>No accepted results yet.</p>")
    for board in boards:
        tables = build_tables(board)
        task_id = html.escape(board.task)
        parts += [f'<section id="{task_id}"><h2>{task_id}</h2>',
                  *(f"<p>{_html_text(line)}</p>" for line in _intro(board)),
                  _html_table(*tables.main, css="main")]
        if tables.agreement:
            parts += [f"<h3>{html.escape(AGREEMENT_TITLE)}</h3>",
                      _html_table(*tables.agreement, css="agreement")]
        if tables.deviation:
            parts += ["<h3>Accuracy by deviation level</h3>",
                      _html_table(*tables.deviation, css="deviation")]
        if tables.deviating:
            parts += ["<h3>Accuracy by deviating modalities</h3>",
                      _html_table(*tables.deviating, css="deviating")]
        parts += ["<h3>Robustness</h3>", _html_table(*tables.robustness, css="robustness"),
                  f"<p>{_html_text(tables.reference_note)}</p>"]
        task_plots = (plots or {}).get(board.task)
        for name, png in (task_plots if task_plots is not None else _plots(board)).items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img class="plot-{name}" alt="{task_id} {name} plot" '
                         f'src="data:image/png;base64,{data}"></figure>')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


@dataclass
class Written:
    markdown: Path
    html: Path
    plots: list[Path]


def write_leaderboard(store: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      task: str | None = None) -> Written:
    """Renders ``index.md`` (+ ``plots/*.png``) and ``index.html`` into ``out_dir``.

    Args:
        store: the leaderboard store (``<data_dir>/leaderboard``).
        out_dir: where to write (default: the store).
        task: only this task.
    """
    boards = load_boards(store, task)
    out = Path(out_dir) if out_dir else Path(store)
    plot_files: dict[tuple[str, str], str] = {}
    rendered: dict[str, dict[str, bytes]] = {}
    written = []
    for board in boards:
        rendered[board.task] = _plots(board)
        for name, png in rendered[board.task].items():
            rel = f"{PLOTS_DIR}/{board.task}-{name}.png"
            atomic_write_bytes(out / rel, png)
            plot_files[(board.task, name)] = rel
            written.append(out / rel)
    md_path, html_path = out / "index.md", out / "index.html"
    atomic_write_text(md_path, render_markdown(boards, plot_files))
    atomic_write_text(html_path, render_html(boards, rendered))
    return Written(markdown=md_path, html=html_path, plots=written)


__all__ = ["TaskBoard", "Written", "build_tables", "deviation_plot", "fmt_aggregate",
           "fmt_signed", "load_boards", "render_html", "render_markdown", "results_summary",
           "robustness_plot", "write_leaderboard"]
