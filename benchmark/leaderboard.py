"""``benchmark leaderboard``: Markdown and a static HTML page from the accepted results.

Reads every ``<store>/<task>/<model>.json`` (validated strictly, as on submission) of the local
leaderboard store and, optionally, of the **shipped reference store**
(``benchmark/data/reference/``, :mod:`benchmark.reference`: every registered model on the main
task, made by ``scripts/make_reference_results.sh``), and renders, per task (the main task
first, then the other registered tasks, then pipeline checks — the bundled sample, whose
numbers show the pipeline runs and are not results — then *ad-hoc* tasks on a user's own
dataset, ``benchmark.adhoc``, each marked as such):

* the chart at a glance (``benchmark.plots.deviation_plot``): accuracy by deviation level for
  every model, with the relevance AUROC beside each model that estimates relevance;
* the main table: mean ± 95% CI half-width (``benchmark.metrics.aggregate``) of the main score
  and every other metric of the task, the relevance AUROC, the number of seeds, the dataset
  fingerprint and where the row comes from (*this machine* or the *shipped reference*; a
  reference row's model is labelled ``NAME (reference)``), ranked by the main score;
* accuracy on aligned clips (deviation 0) vs conflicting ones (deviation >= 1), then stratified
  by deviation level and by the set of deviating modalities;
* robustness: the clean score, the score with each modality dropped, relative robustness of
  each noise curve and effective robustness against the task's reference model
  (``Task.reference_model``, late fusion by default, as in MultiBench) when the board has it
  (a run on this machine before a shipped one); and the robustness curves.

In every table the best mean of each column (by the metric's direction) is marked: bold in
Markdown (``**…**``) and HTML (``class="best"``). The task's card (``cards/benchmark.md``) is
linked. The HTML page embeds the plots as base64 PNG; the Markdown file links PNG files written
beside it. Every number shown is read from, or computed (effective robustness) from, the
results files: the page has no other input. Nothing is served: open ``index.html`` in a
browser (``benchmark.screenshot`` renders it to PNG with headless Chromium).
:func:`results_summary` renders the same tables for one results file; ``python -m benchmark
run`` prints it.
"""

from __future__ import annotations

import base64
import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.metrics import Aggregate, effective_robustness
from benchmark.plots import deviation_plot, robustness_plot
from benchmark.results import Results, ResultsError, load_results
from sdme.fileio import atomic_write_bytes, atomic_write_text
from sdme.metrics import METRICS, metric_info

PLOTS_DIR = "plots"
AGREEMENT_TITLE = "Accuracy on aligned vs conflicting clips (deviation 0 vs >= 1)"
#: The benchmark card, whose task sections the page links (``#task-<name>`` anchors).
CARD = Path(__file__).resolve().parents[1] / "cards" / "benchmark.md"
SHIPPED_LABEL = "shipped reference"
LOCAL_LABEL = "this machine"


@dataclass
class TaskBoard:
    """The accepted results of one task's latest version, ranked by main score (best first).

    Attributes:
        task: the task name.
        entries: the results, best first.
        superseded: entries for older versions (not shown), by label.
        shipped: per entry, whether it comes from the shipped reference store (absent: no).
    """

    task: str
    entries: list[Results]
    superseded: list[str] = field(default_factory=list)
    shipped: list[bool] = field(default_factory=list)

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

    @property
    def adhoc(self) -> bool:
        """Whether the task was derived from a user's dataset (``benchmark.adhoc``)."""
        return self.entries[0].task.adhoc

    @property
    def pipeline_check(self) -> bool:
        """Whether the registered task is a pipeline check (``Task.pipeline_check``)."""
        from benchmark.tasks import TaskError, get_task

        try:
            return get_task(self.task).pipeline_check
        except TaskError:
            return False

    def is_shipped(self, i: int) -> bool:
        return i < len(self.shipped) and self.shipped[i]

    def label(self, i: int) -> str:
        """Entry ``i``'s model name, ``NAME (reference)`` for a shipped row."""
        name = self.entries[i].model.name
        return f"{name} (reference)" if self.is_shipped(i) else name


def _read_store(store: Path, task: str | None) -> dict[str, list[Results]]:
    out: dict[str, list[Results]] = {}
    if not store.is_dir():
        return out
    for folder in sorted(p for p in store.iterdir() if p.is_dir() and p.name != PLOTS_DIR):
        if task is not None and folder.name != task:
            continue
        for path in sorted(folder.glob("*.json")):
            results = load_results(path)
            if results.task.name != folder.name:
                raise ResultsError(path, "task.name", f"{results.task.name!r} does not match "
                                   f"its folder {folder.name!r}")
            out.setdefault(folder.name, []).append(results)
    return out


def _board_order(board: TaskBoard) -> tuple[int, str]:
    from benchmark.tasks import DEFAULT_TASK

    if board.adhoc:
        return 3, board.task
    if board.pipeline_check:
        return 2, board.task
    return (0 if board.task == DEFAULT_TASK else 1), board.task


def load_boards(store: str | os.PathLike, task: str | None = None,
                reference: str | os.PathLike | None = None) -> list[TaskBoard]:
    """Reads the store (and the shipped ``reference`` store, when given): one
    :class:`TaskBoard` per task (or only ``task``), the main task first, pipeline checks and
    ad-hoc tasks last.

    Raises:
        ResultsError: a results file in either store is invalid (naming it).
        FileNotFoundError: the store does not exist (and no reference store was given).
    """
    store = Path(store)
    if not store.is_dir() and reference is None:
        raise FileNotFoundError(f"{store}: no leaderboard store; accept results into it with "
                                "`python -m benchmark submit RESULTS`")
    local = _read_store(store, task)
    shipped = _read_store(Path(reference), task) if reference is not None else {}
    boards = []
    for name in sorted(set(local) | set(shipped)):
        pairs = [(r, False) for r in local.get(name, [])] + \
            [(r, True) for r in shipped.get(name, [])]
        latest = max(r.task.version for r, _ in pairs)
        superseded = [f"{r.model.name}{' (reference)' if s else ''} (v{r.task.version})"
                      for r, s in pairs if r.task.version != latest]
        pairs = [(r, s) for r, s in pairs if r.task.version == latest]
        main = pairs[0][0].task.definition["main_score"]
        sign = -1.0 if metric_info(main).higher_is_better else 1.0
        pairs.sort(key=lambda p: (sign * p[0].aggregate.metrics[main].mean, p[0].model.name,
                                  p[1]))
        boards.append(TaskBoard(task=name, entries=[r for r, _ in pairs],
                                superseded=superseded, shipped=[s for _, s in pairs]))
    return sorted(boards, key=_board_order)


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


def _mark_best(rows: list[list[str]], values: list[list[float | None]],
               higher: Sequence[bool | None]) -> None:
    """Wraps the best cell of each column in ``**…**`` (all ties, as displayed; columns with
    ``higher`` None, or fewer than two values, are left alone)."""
    for col, better in enumerate(higher):
        if better is None:
            continue
        shown = [(i, round(v[col], 4)) for i, v in enumerate(values) if v[col] is not None]
        if len(shown) < 2:
            continue
        best = (max if better else min)(x for _, x in shown)
        for i, x in shown:
            if x == best:
                rows[i][col] = f"**{rows[i][col]}**"


@dataclass
class Tables:
    """The header and rows of each table of a task board (shared by Markdown and HTML); best
    cells are wrapped in ``**…**``."""

    main: tuple[list[str], list[list[str]]]
    agreement: tuple[list[str], list[list[str]]] | None
    deviation: tuple[list[str], list[list[str]]] | None
    deviating: tuple[list[str], list[list[str]]] | None
    robustness: tuple[list[str], list[list[str]]]
    reference_note: str


def _mean(a: Aggregate | None) -> float | None:
    return None if a is None else a.mean


def build_tables(board: TaskBoard) -> Tables:
    """Every table of a task, as strings computed from its results files."""
    metrics = board.metrics
    entries = board.entries
    main_header = ["rank", "model", *(f"{m} (main)" if m == board.main_score else m
                                      for m in metrics), "relevance AUROC", "seeds",
                   "dataset", "run"]
    main_rows, main_values = [], []
    for rank, r in enumerate(entries, start=1):
        i = rank - 1
        main_rows.append([str(rank), board.label(i),
                          *(fmt_aggregate(r.aggregate.metrics[m]) for m in metrics),
                          fmt_aggregate(r.aggregate.relevance_auroc), str(len(r.seeds)),
                          r.dataset.fingerprint[:12],
                          SHIPPED_LABEL if board.is_shipped(i) else LOCAL_LABEL])
        main_values.append([None, None, *(r.aggregate.metrics[m].mean for m in metrics),
                            _mean(r.aggregate.relevance_auroc), None, None, None])
    _mark_best(main_rows, main_values,
               [None, None, *(metric_info(m).higher_is_better for m in metrics), True, None,
                None, None])

    def strat(attr: str, label: str) -> tuple[list[str], list[list[str]]] | None:
        keys: list[str] = []
        for r in entries:
            if r.aggregate.stratified is not None:
                for k in getattr(r.aggregate.stratified, attr):
                    if k not in keys:
                        keys.append(k)
        if not keys:
            return None
        header = ["model", *(f"{label}{k}" for k in keys)]
        rows, values = [], []
        for i, r in enumerate(entries):
            table = getattr(r.aggregate.stratified, attr) if r.aggregate.stratified else {}
            counts = {}
            if r.per_seed and r.per_seed[0].stratified is not None:
                counts = {k: v.n for k, v in getattr(r.per_seed[0].stratified, attr).items()}
            rows.append([board.label(i), *(
                f"{fmt_aggregate(table.get(k))} (n={counts[k]})" if k in table else "—"
                for k in keys)])
            values.append([None, *(_mean(table.get(k)) for k in keys)])
        _mark_best(rows, values, [None, *(True for _ in keys)])
        return header, rows

    agreement = strat("by_agreement", "")
    deviation = strat("by_deviation", "deviation ")
    deviating = strat("by_deviating_modalities", "")

    reference_name = board.definition.get("reference_model")
    candidates = [i for i, r in enumerate(entries) if r.model.name == reference_name]
    anchor = min(candidates, key=board.is_shipped) if candidates else None  # local first
    reference = entries[anchor] if anchor is not None else None
    first = entries[0].aggregate.robustness
    modalities = list(first.drop)
    curves = list(first.noise)
    metric = entries[0].per_seed[0].robustness.metric
    higher = metric_info(metric).higher_is_better if metric in METRICS else None
    header = ["model", f"clean {metric}", *(f"drop {m}" for m in modalities),
              *(f"RR {c}" for c in curves), *(f"ER {c}" for c in curves)]
    rows, values = [], []
    for i, r in enumerate(entries):
        agg = r.aggregate.robustness
        clean = r.aggregate.robustness.noise[curves[0]][0]
        er: list[float | None] = []
        for c in curves:
            er.append(None if reference is None else effective_robustness(
                _curve_means(r, c), _curve_means(reference, c)))
        rows.append([board.label(i), fmt_aggregate(clean),
                     *(fmt_aggregate(agg.drop.get(m)) for m in modalities),
                     *(fmt_aggregate(agg.relative.get(c)) for c in curves),
                     *(fmt_signed(x) for x in er)])
        values.append([None, clean.mean, *(_mean(agg.drop.get(m)) for m in modalities),
                       *(_mean(agg.relative.get(c)) for c in curves), *er])
    _mark_best(rows, values, [None, *([higher] * (len(header) - 1))])
    if reference is None:
        note = (f"Effective robustness (ER) needs the reference model `{reference_name}` on "
                "this leaderboard; it is not there yet.")
    else:
        note = (f"ER: effective robustness against `{board.label(anchor)}` (MultiBench): mean "
                "over noise levels > 0 of the model's score minus the reference's score "
                "shifted to the model's clean score, from mean-over-seed curves.")
    return Tables(main=(main_header, main_rows), agreement=agreement, deviation=deviation,
                  deviating=deviating, robustness=(header, rows), reference_note=note)


# ----------------------------------------------------------------------------- rendering


def _plots(board: TaskBoard) -> dict[str, bytes]:
    plots = {}
    deviation = deviation_plot(board)
    if deviation is not None:
        plots["deviation"] = deviation  # the chart at a glance comes first
    plots["robustness"] = robustness_plot(board)
    return plots


def _title(board: TaskBoard) -> str:
    if board.adhoc:
        return f"{board.task} (ad hoc: your dataset, not a pinned task)"
    if board.pipeline_check:
        return f"{board.task} (pipeline check, not a result)"
    return board.task


def card_link(task: str) -> str | None:
    """The task's section of the benchmark card as a ``file:`` URI (None: no card here)."""
    return f"{CARD.as_uri()}#task-{task}" if CARD.is_file() else None


def _intro(board: TaskBoard) -> list[str]:
    d = board.definition
    lines = [f"Task `{board.task}` v{d['version']} on dataset `{d['dataset']}` "
             f"({d['task_type']}; main score `{board.main_score}`).",
             "Cells: mean ± half-width of the 95% t-interval over seeds; the best mean of "
             "each column is in bold."]
    if board.pipeline_check:
        lines.append("Pipeline check, not a result: this task runs on the bundled sample's "
                     "few test clips to show the pipeline works end to end; its numbers say "
                     "nothing about the models.")
    if board.adhoc:
        lines.append("Ad hoc: the task was derived from the dataset itself (`benchmark."
                     "adhoc`); nobody pinned it, so these numbers compare models on your data "
                     "only.")
    if any(board.shipped):
        n, total = sum(board.shipped), len(board.entries)
        others = ("the others were run on this machine" if n < total
                  else "none was run on this machine yet")
        lines.append(f"{n} of {total} row(s) are the shipped reference results "
                     f"(`benchmark/data/reference/`, labelled `(reference)`); {others}.")
    builds = {r.dataset.fingerprint for r in board.entries}
    if len(builds) > 1:
        lines.append(f"Note: these results come from {len(builds)} different builds of the "
                     "dataset (see the dataset column); compare them with care.")
    if board.superseded:
        lines.append("Not shown (results for an older task version): "
                     + ", ".join(board.superseded) + ".")
    return lines


def _card_line(board: TaskBoard, markdown: bool) -> str | None:
    link = None if board.adhoc else card_link(board.task)
    if link is None:
        return None
    if markdown:
        return f"Task card: [cards/benchmark.md, {board.task}]({link})"
    return (f'<p class="card">Task card: <a href="{html.escape(link)}">cards/benchmark.md, '
            f"{html.escape(board.task)}</a></p>")


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
        rel = (plot_files or {}).get((board.task, "deviation"))
        card = _card_line(board, markdown=True)
        out += [f"## {_title(board)}", "", *_intro(board), *([card] if card else []), ""]
        if rel:
            out += [f"![{board.task} deviation]({rel})", ""]
        out += [*_markdown_tables(tables), tables.reference_note, ""]
        rel = (plot_files or {}).get((board.task, "robustness"))
        if rel:
            out += [f"![{board.task} robustness]({rel})", ""]
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


def _html_cell(cell: str, model: bool = False) -> str:
    if cell.startswith("**") and cell.endswith("**") and len(cell) > 4:
        return f'<td class="best"><strong>{html.escape(cell[2:-2])}</strong></td>'
    return f'<td class="model">{html.escape(cell)}</td>' if model else \
        f"<td>{html.escape(cell)}</td>"


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]], css: str,
                shipped: Sequence[bool] = (), model_column: int = 0) -> str:
    """A table; rows from the shipped reference store get ``class="shipped"``, the others
    ``class="local"``; the model's cell ``class="model"``."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f'<tr class="{"shipped" if i < len(shipped) and shipped[i] else "local"}">'
        + "".join(_html_cell(c, j == model_column) for j, c in enumerate(row)) + "</tr>"
        for i, row in enumerate(rows))
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th:first-child, td:first-child, td:nth-child(2) { text-align: left; }
td.best { background: #e8f4e8; }
tr.shipped td { color: #1f4e79; }
tr.local td.model { font-weight: 600; }
h2 .badge { font-size: 0.6em; font-weight: normal; color: #a33; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def render_html(boards: Sequence[TaskBoard],
                plots: dict[str, dict[str, bytes]] | None = None) -> str:
    """A self-contained page: per task the chart at a glance, the tables and the robustness
    plot, embedded as base64 PNG.

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
        task_plots = (plots or {}).get(board.task)
        if task_plots is None:
            task_plots = _plots(board)

        def figure(name: str, task_plots: dict[str, bytes] = task_plots,
                   task_id: str = task_id) -> list[str]:
            if name not in task_plots:
                return []
            data = base64.b64encode(task_plots[name]).decode("ascii")
            return [f'<figure><img class="plot-{name}" alt="{task_id} {name} plot" '
                    f'src="data:image/png;base64,{data}"></figure>']

        title = html.escape(_title(board)).replace(
            f"{task_id} (", f'{task_id} <span class="badge">(', 1)
        if title != task_id:
            title += "</span>"
        card = _card_line(board, markdown=False)
        shipped = [board.is_shipped(i) for i in range(len(board.entries))]
        parts += [f'<section id="{task_id}"><h2>{title}</h2>',
                  *(f"<p>{_html_text(line)}</p>" for line in _intro(board)),
                  *([card] if card else []), *figure("deviation"),
                  _html_table(*tables.main, css="main", shipped=shipped, model_column=1)]
        if tables.agreement:
            parts += [f"<h3>{html.escape(AGREEMENT_TITLE)}</h3>",
                      _html_table(*tables.agreement, css="agreement", shipped=shipped)]
        if tables.deviation:
            parts += ["<h3>Accuracy by deviation level</h3>",
                      _html_table(*tables.deviation, css="deviation", shipped=shipped)]
        if tables.deviating:
            parts += ["<h3>Accuracy by deviating modalities</h3>",
                      _html_table(*tables.deviating, css="deviating", shipped=shipped)]
        parts += ["<h3>Robustness</h3>",
                  _html_table(*tables.robustness, css="robustness", shipped=shipped),
                  f"<p>{_html_text(tables.reference_note)}</p>", *figure("robustness"),
                  "</section>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


@dataclass
class Written:
    markdown: Path
    html: Path
    plots: list[Path]


def write_leaderboard(store: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                      task: str | None = None,
                      reference: str | os.PathLike | None = None) -> Written:
    """Renders ``index.md`` (+ ``plots/*.png``) and ``index.html`` into ``out_dir``.

    Args:
        store: the leaderboard store (``<data_dir>/leaderboard``).
        out_dir: where to write (default: the store).
        task: only this task.
        reference: the shipped reference store to show beside it (``benchmark.reference.
            REFERENCE_DIR``; ``benchmark leaderboard`` passes it unless ``--no-reference``).
    """
    boards = load_boards(store, task, reference)
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
