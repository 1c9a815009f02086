"""The leaderboard: every number shown equals the results' numbers, the best cell of each column
is marked, shipped reference rows stand beside the local ones and are told apart, pipeline checks
and ad-hoc tasks are labelled; the HTML page renders in a real headless Chromium with its tables
and plot images, and the project's screenshot script turns it into a PNG."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from benchmarkdata import submission_for, tiny_built
from click.testing import CliRunner

from benchmark.leaderboard import load_boards, render_markdown, write_leaderboard
from benchmark.metrics import effective_robustness
from benchmark.results import ResultsError, load_results
from benchmark.submit import submit

CELL = re.compile(r"^(-?\d+\.\d{4})(?: ± (\d+\.\d{4}))?(?: \(n=(\d+)\))?$")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lb")
    built = tiny_built(root)
    store = root / "leaderboard"
    for model, rng_seed, seeds, relevance in (("toy", 1, (0, 1, 2), True),
                                              ("late_fusion", 2, (0, 1), False),
                                              ("single", 3, (5,), True)):
        out = submission_for(built, root / "results", model=model, seeds=seeds,
                             rng_seed=rng_seed, relevance=relevance)
        submit(out.results_path, data_dir=root, store=store)
    return store


@pytest.fixture(scope="module")
def written(store, tmp_path_factory):
    return write_leaderboard(store, tmp_path_factory.mktemp("site"))


def _tables(markdown: str, plain: bool = True) -> list[list[list[str]]]:
    """Markdown tables as lists of rows of cells (header row included); ``plain``: without the
    best-cell ``**`` marks."""
    tables, current = [], []
    for line in markdown.splitlines():
        if line.startswith("|"):
            if not line.startswith("|---"):
                cells = [c.strip() for c in line.strip("|").split(" | ")]
                current.append([c.strip().removeprefix("**").removesuffix("**") if plain
                                else c.strip() for c in cells])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _check_cell(cell: str, aggregate) -> None:
    match = CELL.match(cell.removeprefix("**").removesuffix("**"))
    assert match, f"unexpected cell {cell!r}"
    assert float(match.group(1)) == pytest.approx(aggregate.mean, abs=5e-5)
    if aggregate.ci95_half_width is None:
        assert match.group(2) is None
    else:
        assert float(match.group(2)) == pytest.approx(aggregate.ci95_half_width, abs=5e-5)


def test_main_table_numbers_equal_the_results(store, written):
    results = {p.stem: load_results(p) for p in (store / "sdme-sample-discrete").glob("*.json")}
    main, agreement, deviation, deviating, robustness = _tables(written.markdown.read_text())
    header = main[0]
    assert header[:3] == ["rank", "model", "accuracy (main)"]
    rows = main[1:]
    assert sorted(r[1] for r in rows) == sorted(results)
    means = [results[r[1]].aggregate.metrics["accuracy"].mean for r in rows]
    assert means == sorted(means, reverse=True)  # ranked by the main score
    for row in rows:
        r = results[row[1]]
        for name, cell in zip(header[2:5], row[2:5], strict=True):
            _check_cell(cell, r.aggregate.metrics[name.replace(" (main)", "")])
        if r.aggregate.relevance_auroc is None:
            assert row[5] == "—"
        else:
            _check_cell(row[5], r.aggregate.relevance_auroc)
        assert row[6] == str(len(r.seeds))
        assert row[7] == r.dataset.fingerprint[:12]

    assert agreement[0][0] == "model" and agreement[0][1:]
    assert set(agreement[0][1:]) <= {"aligned", "conflicting"}
    for row in agreement[1:]:
        r = results[row[0]]
        for key, cell in zip(agreement[0][1:], row[1:], strict=True):
            _check_cell(cell, r.aggregate.stratified.by_agreement[key])
            levels = r.per_seed[0].stratified.by_deviation
            n = sum(s.n for level, s in levels.items() if (level == "0") == (key == "aligned"))
            assert cell.endswith(f"(n={n})")
    for row in deviation[1:]:
        r = results[row[0]]
        for key, cell in zip(deviation[0][1:], row[1:], strict=True):
            level = key.removeprefix("deviation ")
            _check_cell(cell, r.aggregate.stratified.by_deviation[level])
            n = r.per_seed[0].stratified.by_deviation[level].n
            assert cell.endswith(f"(n={n})")
    for row in deviating[1:]:
        r = results[row[0]]
        for key, cell in zip(deviating[0][1:], row[1:], strict=True):
            _check_cell(cell, r.aggregate.stratified.by_deviating_modalities[key])


def test_robustness_numbers_and_effective_robustness(store, written):
    results = {p.stem: load_results(p) for p in (store / "sdme-sample-discrete").glob("*.json")}
    table = _tables(written.markdown.read_text())[4]
    header = table[0]
    reference = results["late_fusion"]
    for row in table[1:]:
        r = results[row[0]]
        cells = dict(zip(header, row, strict=True))
        _check_cell(cells["clean accuracy"], r.aggregate.robustness.noise["text"][0])
        for m in ("text", "audio", "vision"):
            _check_cell(cells[f"drop {m}"], r.aggregate.robustness.drop[m])
        for curve in ("text", "audio", "vision", "all"):
            _check_cell(cells[f"RR {curve}"], r.aggregate.robustness.relative[curve])
            expected = effective_robustness(
                [a.mean for a in r.aggregate.robustness.noise[curve]],
                [a.mean for a in reference.aggregate.robustness.noise[curve]])
            assert float(cells[f"ER {curve}"]) == pytest.approx(expected, abs=5e-5)
    assert {row[0]: row[-1] for row in table[1:]}["late_fusion"] == "+0.0000"


def test_plot_files_and_markdown_links(written):
    text = written.markdown.read_text()
    for path in written.plots:
        assert path.read_bytes().startswith(b"\x89PNG")
        assert f"]({path.relative_to(written.markdown.parent)})" in text


def test_html_embeds_tables_and_plots(written):
    page = written.html.read_text()
    images = re.findall(r'<img class="plot-(\w+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    assert {name for name, _ in images} == {"deviation", "robustness"}
    for _, data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG")
    assert page.count('<tr class="local"><td') >= 3 * 5  # three models in five tables
    assert 'class="shipped"' not in page  # no reference store was given
    assert "#task-sdme-sample-discrete" in page  # the task's card is linked
    assert "pipeline check, not a result" in page


def test_best_cell_of_each_column_is_marked(store, written):
    """Bold exactly where the column's best mean is (ties included), for every column of the
    main and stratified tables; HTML marks the same cells."""
    results = {p.stem: load_results(p) for p in (store / "sdme-sample-discrete").glob("*.json")}
    main, agreement, deviation, _, _ = _tables(written.markdown.read_text(), plain=False)
    header = main[0]
    for col, name in enumerate(header[2:6], start=2):
        metric = name.replace(" (main)", "")
        values = {}
        for row in main[1:]:
            r = results[row[1]]
            a = (r.aggregate.relevance_auroc if metric == "relevance AUROC"
                 else r.aggregate.metrics[metric])
            if a is not None:
                values[row[1]] = round(a.mean, 4)
        best = max(values.values())
        for row in main[1:]:
            bold = row[col].startswith("**")
            assert bold == (values.get(row[1]) == best), (name, row)
    for table, attr in ((agreement, "by_agreement"), (deviation, "by_deviation")):
        for col, key in enumerate(table[0][1:], start=1):
            key = key.removeprefix("deviation ")
            means = {row[0]: round(getattr(results[row[0]].aggregate.stratified, attr)[key].mean,
                                   4) for row in table[1:]}
            best = max(means.values())
            for row in table[1:]:
                assert row[col].startswith("**") == (means[row[0]] == best)
    page = written.html.read_text()
    bold_md = sum(cell.startswith("**") for t in _tables(written.markdown.read_text(), False)
                  for row in t[1:] for cell in row)
    assert page.count('<td class="best"><strong>') == bold_md > 0


def test_invalid_results_in_the_store_are_named(store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    (copy / "sdme-sample-discrete" / "toy.json").write_text("{}")
    with pytest.raises(ResultsError, match=r"toy.json: format"):
        load_boards(copy)


def test_empty_and_missing_store(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "No accepted results yet." in render_markdown(load_boards(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no leaderboard store"):
        load_boards(tmp_path / "absent")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_args(tmp_path: Path) -> list[str]:
    from benchmark.screenshot import CHROMIUM_FLAGS

    return [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]


@pytest.mark.skipif(_chromium() is None, reason="Debian's chromium is not installed "
                    "(apt-get install -y --no-install-recommends chromium)")
def test_page_renders_in_headless_chromium(written, tmp_path):
    dom = subprocess.run([*_chromium_args(tmp_path), "--dump-dom", written.html.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert "<h1>SDME benchmark leaderboard</h1>" in dom
    for model in ("toy", "late_fusion", "single"):
        assert f"<td class=\"model\">{model}</td>" in dom
    images = re.findall(r'<img class="plot-\w+"[^>]*src="data:image/png;base64,([^"]+)"', dom)
    assert len(images) == 2 and all(len(data) > 1000 for data in images)

    # the project's own screenshot script (what makes the README's picture)
    from matplotlib.image import imread

    from benchmark.__main__ import main

    shot = tmp_path / "docs" / "page.png"
    result = CliRunner().invoke(main, ["screenshot", "--html", str(written.html), "--out",
                                       str(shot), "--width", "1200", "--height", "3000"])
    assert result.exit_code == 0, result.output
    pixels = imread(shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert pixels.shape[1] == 1200 and 1000 <= pixels.shape[0] < 3000  # blank bottom cropped
    assert pixels.std() > 0.05  # not a blank page


def test_results_for_an_older_task_version_are_not_ranked(store, tmp_path):
    copy = tmp_path / "store"
    shutil.copytree(store, copy)
    for model in ("toy", "late_fusion"):  # pretend these were computed for a version 2
        path = copy / "sdme-sample-discrete" / f"{model}.json"
        data = json.loads(path.read_text())
        data["task"]["version"] = 2
        path.write_text(json.dumps(data))
    (board,) = load_boards(copy)
    assert sorted(r.model.name for r in board.entries) == ["late_fusion", "toy"]
    assert board.superseded == ["single (v1)"]
    assert "Not shown (results for an older task version): single (v1)." in \
        render_markdown([board])
