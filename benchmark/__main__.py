"""``python -m benchmark``: thin click wrappers over the benchmark's library functions.

    python -m benchmark list                          # tasks and models
    python -m benchmark dataset                       # make the main task's dataset
    python -m benchmark tune --model mren --trials 20 # search on validation; run then uses it
    python -m benchmark run --model mren              # the standard protocol on the main task
    python -m benchmark run --model mren --dataset DIR    # an ad-hoc task on your dataset
    python -m benchmark submit RESULTS.json           # re-check and accept into the leaderboard
    python -m benchmark leaderboard                   # Markdown + static HTML with plots
    python -m benchmark screenshot --out page.png     # the page as PNG (headless Chromium)
    python -m benchmark reference make|check          # the shipped reference results
    python -m benchmark export RESULTS.json           # Hugging Face .eval_results YAML
    python -m benchmark eval-yaml DATASET             # the benchmark dataset's eval.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

DATA_DIR_HELP = "SDME data folder (default: $SDME_DATA_DIR or ~/.cache/sdme)."
DATASET_HELP = "A built dataset folder to use instead of the task's dataset by name."


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        _fail(f"--seeds must be comma-separated integers, e.g. 0,1,2; got {text!r}")
    if not seeds:
        _fail("--seeds names no seed")
    return seeds


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """SDME benchmark: standard protocol, results files, submission checks, leaderboard."""


@main.command("list")
def list_command() -> None:
    """Show the registered tasks and models."""
    import baselines
    from benchmark.tasks import DEFAULT_TASK, list_tasks

    click.echo("tasks:")
    tasks = list_tasks()
    key = max(len(t.key) for t in tasks) + 2
    dataset = max(len(t.dataset) for t in tasks) + 2
    score = max(len(t.main_score) for t in tasks) + 2
    for task in tasks:
        default = "  (main task, default)" if task.name == DEFAULT_TASK else (
            "  (pipeline check)" if task.pipeline_check else "")
        click.echo(f"  {task.key:<{key}}dataset={task.dataset:<{dataset}}"
                   f"{task.task_type:<12}main={task.main_score:<{score}}"
                   f"metrics={','.join(task.metrics)}{default}")
    click.echo("models:")
    for name in baselines.list_models():
        click.echo(f"  {name}")


@main.command("run")
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--task", "task_name", default=None,
              help="Task name or NAME@VERSION (default: the main task; with --dataset and no "
                   "--task, an ad-hoc task derived from the dataset).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the protocol's 5).")
@click.option("--device", default=None,
              help="auto, cpu, cuda, cuda:N (default: the config's train.device, else auto).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="YAML with 'train' (trainer) and 'model' overrides.")
@click.option("--epochs", type=int, default=None, help="Shortcut for train.epochs.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Results store (default: <data_dir>/results).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--dataset", type=click.Path(file_okay=False, exists=True), default=None,
              help=DATASET_HELP)
@click.option("--no-tuned", is_flag=True,
              help="Ignore the config `benchmark tune` wrote for this model and task.")
@click.option("--gzip", "compress", is_flag=True,
              help="Write the predictions gzip-compressed (<task>.predictions.jsonl.gz).")
def run_command(model_name: str, task_name: str | None, seeds: str | None, device: str | None,
                config_path: str | None, epochs: int | None, out_dir: str | None,
                data_dir: str | None, dataset: str | None, no_tuned: bool,
                compress: bool) -> None:
    """Train and score MODEL with the standard protocol; write its results file.

    The config is, in this order: --config; else the one `benchmark tune` chose for MODEL and
    the task (<data_dir>/tuned/<task>/<model>.yaml) unless --no-tuned; else the defaults.
    --epochs overrides any of them. Each finished seed is kept: the same command run again
    resumes from them (and says so).
    """
    from benchmark.leaderboard import results_summary
    from benchmark.protocol import DEFAULT_SEEDS, load_run_config, run_benchmark
    from benchmark.scoring import ProtocolError
    from benchmark.tasks import DEFAULT_TASK, TaskError

    try:
        config = load_run_config(config_path)
    except ValueError as exc:
        _fail(str(exc))
    if epochs is not None:
        config["train"]["epochs"] = epochs
    if config_path is not None:
        click.echo(f"config file: {config_path}", err=True)
    try:
        output = run_benchmark(model_name,
                               task_name or (None if dataset else DEFAULT_TASK),
                               seeds=_parse_seeds(seeds) or DEFAULT_SEEDS, device=device,
                               config=config, out_dir=out_dir, data_dir=data_dir,
                               dataset=dataset, tuned=config_path is None and not no_tuned,
                               compress=compress, log=lambda m: click.echo(m, err=True))
    except (FileNotFoundError, ProtocolError, TaskError, ValueError, KeyError,
            TypeError) as exc:
        _fail(str(exc) if not isinstance(exc, KeyError) else str(exc.args[0]))
    click.echo(results_summary(output.results))
    if output.results.task.adhoc:
        click.echo(f"ad hoc: {output.results.task.name} was derived from the dataset; it is "
                   "not a pinned benchmark task")
    click.echo(f"results: {output.results_path}")
    click.echo(f"predictions: {output.predictions_path}")


@main.command("tune")
@click.option("--model", "model_name", required=True, help="Registered model name.")
@click.option("--task", "task_name", default=None, help="Task name or NAME@VERSION.")
@click.option("--trials", type=click.IntRange(min=1), default=None,
              help="The budget: trials in the study, the same for every model (default 20).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Maximum epochs per trial (default: the config's train.epochs, else the "
                   "trainer's 30).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Training seed of every trial and the sampler's seed.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds after which no new trial starts (run again to resume).")
@click.option("--pruner", type=click.Choice(["median", "none"]), default="median",
              show_default=True, help="Stop unpromising trials early on validation.")
@click.option("--device", default=None,
              help="auto, cpu, cuda, cuda:N (default: the config's train.device, else auto).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, exists=True),
              default=None, help="YAML with fixed 'train' and 'model' options (not searched).")
@click.option("--restart", is_flag=True, help="Delete the stored study and start over.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Tuned-config store (default: <data_dir>/tuned, where `run` looks).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--dataset", type=click.Path(file_okay=False, exists=True), default=None,
              help=DATASET_HELP)
def tune_command(model_name: str, task_name: str | None, trials: int | None,
                 epochs: int | None, seed: int, timeout: float | None, pruner: str,
                 device: str | None, config_path: str | None, restart: bool,
                 out_dir: str | None, data_dir: str | None, dataset: str | None) -> None:
    """Search MODEL's hyper-parameters on the validation split (Optuna, same budget for every
    model; the test split is never read) and save the best config for `run`."""
    from benchmark.protocol import load_run_config
    from benchmark.scoring import ProtocolError
    from benchmark.tasks import DEFAULT_TASK, TaskError
    from benchmark.tune import DEFAULT_TRIALS, tune

    try:
        config = load_run_config(config_path)
        output = tune(model_name, task_name or DEFAULT_TASK, trials=trials or DEFAULT_TRIALS,
                      epochs=epochs, seed=seed, timeout=timeout, device=device, config=config,
                      pruner=pruner, restart=restart, data_dir=data_dir, dataset=dataset,
                      out_dir=out_dir, log=lambda m: click.echo(m, err=True))
    except (FileNotFoundError, ProtocolError, TaskError, ValueError, KeyError,
            TypeError) as exc:
        _fail(str(exc) if not isinstance(exc, KeyError) else str(exc.args[0]))
    click.echo(f"tuned config: {output.config_path}")
    click.echo(f"study: {output.study_path}")


@main.command("submit")
@click.argument("results_file", type=click.Path(dir_okay=False))
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--dataset", type=click.Path(file_okay=False, exists=True), default=None,
              help=DATASET_HELP)
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Leaderboard store (default: <data_dir>/leaderboard).")
@click.option("--replace", is_flag=True,
              help="Replace a different result already accepted for this model and task (it "
                   "is kept in the store's .history/ first).")
def submit_command(results_file: str, data_dir: str | None, dataset: str | None,
                   store: str | None, replace: bool) -> None:
    """Re-compute RESULTS_FILE's metrics from its predictions; accept it if they match."""
    from benchmark.submit import SubmissionError, submit

    try:
        accepted = submit(results_file, data_dir=data_dir, dataset=dataset, store=store,
                          replace=replace)
    except SubmissionError as exc:
        _fail(f"submission refused: {exc}")
    except FileNotFoundError as exc:
        _fail(str(exc))
    click.echo(accepted.summary())


@main.command("dataset")
@click.option("--task", "task_name", default=None, help="Task name (default: the main task).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
def dataset_command(task_name: str | None, data_dir: str | None) -> None:
    """Make a task's dataset with its registered source (nothing to do when it is built).

    Generated datasets (`sdme import synth --preset ...`) are made here; a corpus you must
    supply gets its recipe instead.
    """
    from benchmark.reference import make_dataset
    from benchmark.tasks import DEFAULT_TASK, TaskError

    try:
        folder = make_dataset(task_name or DEFAULT_TASK, data_dir,
                              log=lambda m: click.echo(m, err=True))
    except (TaskError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    click.echo(str(folder))


@main.command("leaderboard")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Leaderboard store (default: <data_dir>/leaderboard).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where to write index.md, index.html and plots/ (default: the store).")
@click.option("--task", "task_name", default=None, help="Only this task.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Show the shipped reference results (benchmark/data/reference/) beside yours.")
def leaderboard_command(data_dir: str | None, store: str | None, out_dir: str | None,
                        task_name: str | None, reference: bool) -> None:
    """Render the leaderboard as Markdown and a static HTML page."""
    from benchmark.leaderboard import write_leaderboard
    from benchmark.reference import REFERENCE_DIR
    from benchmark.results import ResultsError
    from benchmark.submit import leaderboard_dir

    try:
        written = write_leaderboard(store or leaderboard_dir(data_dir), out_dir, task_name,
                                    reference=REFERENCE_DIR if reference else None)
    except (FileNotFoundError, ResultsError) as exc:
        _fail(str(exc))
    click.echo(f"markdown: {written.markdown}")
    click.echo(f"html: {written.html}")


@main.command("screenshot")
@click.option("--html", "page", type=click.Path(dir_okay=False), default=None,
              help="The page (default: <data_dir>/leaderboard/index.html).")
@click.option("--out", type=click.Path(dir_okay=False), default="leaderboard.png",
              show_default=True, help="The PNG to write.")
@click.option("--width", type=click.IntRange(min=200), default=1400, show_default=True)
@click.option("--height", type=click.IntRange(min=200), default=2400, show_default=True,
              help="Window height: the part of the page shown (blank rows are cropped).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
def screenshot_command(page: str | None, out: str, width: int, height: int,
                       data_dir: str | None) -> None:
    """Render the leaderboard page to PNG with headless Chromium (what the README shows)."""
    from benchmark.screenshot import ScreenshotError, screenshot
    from benchmark.submit import leaderboard_dir

    try:
        written = screenshot(page or leaderboard_dir(data_dir) / "index.html", out,
                             width=width, height=height)
    except ScreenshotError as exc:
        _fail(str(exc))
    click.echo(str(written))


@main.group("reference")
def reference_group() -> None:
    """The shipped reference results (benchmark/data/reference/): make them, check them."""


@reference_group.command("make")
@click.option("--model", "models", multiple=True,
              help="Only this model (repeatable; default: every registered model).")
@click.option("--task", "tasks", multiple=True,
              help="Only this task (repeatable; default: the reference tasks, REFERENCE_TASKS); "
                   "another task is for your own store (--store).")
@click.option("--seeds", default=None, help="Comma-separated seeds (default: the protocol's 5).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="train.epochs (default: the trainer's; anything else is a trial that "
                   "`reference check` calls stale).")
@click.option("--device", default=None, help="auto, cpu, cuda, cuda:N (default: auto).")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Reference store (default: benchmark/data/reference/ in the package).")
@click.option("--work", type=click.Path(file_okay=False), default=None,
              help="Where the runs write (default: <data_dir>/reference-runs; resumable).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
def reference_make_command(models: tuple[str, ...], tasks: tuple[str, ...], seeds: str | None,
                           epochs: int | None,
                           device: str | None, store: str | None, work: str | None,
                           data_dir: str | None) -> None:
    """Run every registered model on the reference tasks and submit each result into the
    shipped store (`benchmark run` + `benchmark submit --replace`, predictions gzipped)."""
    from benchmark.reference import REFERENCE_DIR, make_reference
    from benchmark.scoring import ProtocolError
    from benchmark.submit import SubmissionError
    from benchmark.tasks import REFERENCE_TASKS, TaskError

    try:
        written = make_reference(models=list(models) or None, tasks=list(tasks) or REFERENCE_TASKS,
                                 seeds=_parse_seeds(seeds),
                                 epochs=epochs, device=device, store=store or REFERENCE_DIR,
                                 work=work, data_dir=data_dir,
                                 log=lambda m: click.echo(m, err=True))
    except (FileNotFoundError, ProtocolError, SubmissionError, TaskError, ValueError,
            KeyError, TypeError) as exc:
        _fail(str(exc) if not isinstance(exc, KeyError) else str(exc.args[0]))
    for path in written:
        click.echo(str(path))


@reference_group.command("check")
@click.option("--store", type=click.Path(file_okay=False), default=None,
              help="Reference store (default: benchmark/data/reference/ in the package).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
def reference_check_command(store: str | None, data_dir: str | None) -> None:
    """Re-verify every shipped result with submit's checks and flag stale ones (exit 1)."""
    from benchmark.reference import (
        REFERENCE_DIR,
        check_reference,
        reference_files,
        stale_message,
    )

    root = store or REFERENCE_DIR
    problems = check_reference(root, data_dir=data_dir)
    if problems:
        _fail(stale_message(problems))
    click.echo(f"{root}: {len(reference_files(root))} reference result(s), all current")


@main.command("export")
@click.argument("results_file", type=click.Path(dir_okay=False))
@click.option("--dataset-id", default=None,
              help="Hub id of the benchmark dataset (default: sdme/<dataset name>).")
@click.option("--format", "fmt", type=click.Choice(["eval-results", "model-index"]),
              default="eval-results", show_default=True)
@click.option("--source-url", default=None, help="Link to the evaluation logs (optional).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder to write into (default: beside RESULTS_FILE).")
def export_command(results_file: str, dataset_id: str | None, fmt: str,
                   source_url: str | None, out_dir: str | None) -> None:
    """Export RESULTS_FILE to the Hugging Face .eval_results (or model-index) YAML format."""
    import yaml

    from benchmark.export import to_eval_results, to_model_index
    from benchmark.results import ResultsError, load_results
    from sdme.fileio import atomic_write_text

    try:
        results = load_results(results_file)
    except ResultsError as exc:
        _fail(str(exc))
    dataset_id = dataset_id or f"sdme/{results.dataset.name}"
    folder = Path(out_dir) if out_dir else Path(results_file).parent
    if fmt == "eval-results":
        target = folder / ".eval_results" / f"{results.task.name}.yaml"
        document: object = to_eval_results(results, dataset_id, source_url)
    else:
        target = folder / f"{results.model.name}.model-index.yaml"
        document = to_model_index(results, dataset_id)
    atomic_write_text(target, yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    click.echo(str(target))


@main.command("eval-yaml")
@click.argument("dataset")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder to write eval.yaml into (default: the built dataset's folder, the "
                   "one to upload as the benchmark dataset repo).")
@click.option("--name", default=None, help="Display name (default: SDME benchmark: DATASET).")
@click.option("--framework", default=None,
              help="evaluation_framework value (default: sdme; see below).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def eval_yaml_command(dataset: str, out_dir: str | None, name: str | None,
                      framework: str | None, data_dir: str | None) -> None:
    """Write the Hub benchmark file eval.yaml for the built dataset DATASET: one task per
    registered task on it (the task_id of `export`'s .eval_results entries)."""
    import yaml

    from benchmark.export import EVAL_FRAMEWORK, EVAL_FRAMEWORKS_URL, to_eval_yaml
    from sdme import paths
    from sdme.fileio import atomic_write_text

    try:
        document = to_eval_yaml(dataset, name=name, framework=framework or EVAL_FRAMEWORK)
    except ValueError as exc:
        _fail(str(exc))
    folder = Path(out_dir) if out_dir else paths.built_dir(dataset, data_dir)
    target = folder / "eval.yaml"
    atomic_write_text(target, yaml.safe_dump(document, sort_keys=False, allow_unicode=True,
                                             width=100))
    click.echo(str(target))
    if document["evaluation_framework"] == EVAL_FRAMEWORK:
        click.echo(f"note: evaluation_framework {EVAL_FRAMEWORK!r} is not (yet) in Hugging "
                   f"Face's list of frameworks ({EVAL_FRAMEWORKS_URL}); the Hub validates the "
                   "file at push time: expect it refused until 'sdme' is added there",
                   err=True)


if __name__ == "__main__":
    main()
