"""The ``sdme annotate`` commands: thin click wrappers over ``sdme.annotate``.

    sdme annotate prepare RAW               # isolated media, once (serve does it too)
    sdme annotate serve RAW                 # the web app on 127.0.0.1:8765
    sdme annotate add-annotator RAW NAME    # prints NAME's personal link
    sdme annotate annotators RAW            # who, how many votes; your dashboard link
    sdme annotate revoke RAW NAME           # NAME's link stops working
    sdme annotate export RAW                # votes -> annotations.csv, annotation_votes.csv
    sdme annotate labelstudio export RAW    # Label Studio configs + tasks
    sdme annotate labelstudio import RAW F  # Label Studio's JSON export -> votes

RAW is a raw corpus folder or the name of one in the data folder. Importing this module is
cheap: FastAPI, uvicorn and PyAV load only in the commands that need them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from sdme import paths
from sdme.annotate import AnnotateError

DATA_DIR_HELP = f"Data folder for corpus names (default: ${paths.ENV_VAR} or ~/.cache/sdme)."


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def _errors_to_messages(command: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sdme.config import ConfigError
        from sdme.schema import FormatError

        try:
            return command(*args, **kwargs)
        except (AnnotateError, FormatError, ConfigError, OSError) as exc:
            _fail(str(exc))

    return wrapper


def _corpus(raw: str, data_dir: str | None) -> Path:
    from sdme.annotate.project import resolve_corpus

    return resolve_corpus(raw, data_dir)


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--votes-per-item", type=int, default=None,
                     help="Votes wanted per (clip, modality) [stored; first time: 3]."),
        click.option("--modalities", default=None, metavar="LIST",
                     help="Modalities to collect, e.g. text,audio,vision [stored; first time: "
                          "all three]."),
        click.option("--gold-every", type=int, default=None, metavar="N",
                     help="Show each annotator one of their earlier items again after every N "
                          "answers, to measure consistency (0: never) [stored; first time: 0]."),
        click.option("--lease-seconds", type=int, default=None,
                     help="How long a served item stays reserved [stored; first time: 900]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _settings(votes_per_item: int | None, modalities: str | None, gold_every: int | None,
              lease_seconds: int | None) -> dict[str, object]:
    return {"votes_per_item": votes_per_item, "gold_every": gold_every,
            "lease_seconds": lease_seconds,
            "modalities": None if modalities is None else
            [m.strip() for m in modalities.split(",") if m.strip()]}


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        end = "\n" if done == total else "\r"
        click.echo(f"isolating modalities: {done}/{total} clips", err=True, nl=False)
        click.echo(end, err=True, nl=False)


@click.group("annotate", context_settings={"help_option_names": ["-h", "--help"]})
def annotate() -> None:
    """Collect per-modality votes in the browser (transcript only, audio only, silent video)."""


@annotate.command()
@click.argument("raw")
@click.option("--force", is_flag=True, help="Redo every clip's media.")
@click.option("--workers", default=2, show_default=True, help="ffmpeg processes at once.")
@_settings_options
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def prepare(raw: str, force: bool, workers: int, data_dir: str | None,
            **settings: Any) -> None:
    """Make the isolated media of RAW: video without its audio stream, audio alone, text alone."""
    from sdme.annotate.project import open_project

    project = open_project(_corpus(raw, data_dir), prepare=True, force=force, workers=workers,
                           progress=_progress, **_settings(**settings))
    assert project.media is not None
    notes = [f"  {cid}: {note}" for cid, clip in sorted(project.media.clips.items())
             for note in clip.notes]
    click.echo(f"{project.media.root}: {len(project.media.clips)} clips, "
               f"{len(project.store.items())} items to annotate")
    for line in notes:
        click.echo(line)


@annotate.command()
@click.argument("raw")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on. Anything but loopback exposes the app to your "
                   "network (read the warning it prints).")
@click.option("--port", default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--public-url", default=None,
              help="Base URL of links when the app sits behind a reverse proxy.")
@click.option("--workers", default=2, show_default=True,
              help="ffmpeg processes when preparing media.")
@_settings_options
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def serve(raw: str, host: str, port: int, public_url: str | None, workers: int,
          data_dir: str | None, **settings: Any) -> None:
    """Serve the annotation app for RAW (preparing its media first when needed)."""
    from sdme.annotate.project import open_project
    from sdme.annotate.server import serve as run

    project = open_project(_corpus(raw, data_dir), prepare=True, workers=workers,
                           progress=_progress, **_settings(**settings))
    run(project, host=host, port=port, public_url=public_url, echo=click.echo)


@annotate.command("add-annotator")
@click.argument("raw")
@click.argument("name")
@click.option("--new-link", is_flag=True, help="NAME exists: replace their link.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def add_annotator(raw: str, name: str, new_link: bool, data_dir: str | None) -> None:
    """Add annotator NAME to RAW's project and print their personal link (shown once)."""
    from sdme.annotate.project import open_project

    project = open_project(_corpus(raw, data_dir))
    token = project.store.add_person(name, rotate=new_link)
    click.echo(project.link(token))
    click.echo(f"(send it to {name} only: the link is their login; it is not stored and cannot "
               "be shown again, only replaced with --new-link)", err=True)


@annotate.command()
@click.argument("raw")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def annotators(raw: str, data_dir: str | None) -> None:
    """List RAW's annotators with their counts, and print your dashboard link."""
    from sdme.annotate.project import open_project

    project = open_project(_corpus(raw, data_dir), create=False)
    click.echo(f"dashboard: {project.link(project.owner_token())}")
    for p in project.store.people():
        state = "" if p["active"] else " (revoked)"
        click.echo(f"  a{p['id']:03d}  {p['name']}{state}: {p['votes']} votes, {p['skipped']} "
                   f"skipped, {p['repeats']} repeats")


@annotate.command()
@click.argument("raw")
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def revoke(raw: str, name: str, data_dir: str | None) -> None:
    """Make NAME's link stop working (their votes stay)."""
    from sdme.annotate.project import open_project

    open_project(_corpus(raw, data_dir), create=False).store.revoke(name)
    click.echo(f"{name}: link revoked")


@annotate.command("export")
@click.argument("raw")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def export(raw: str, data_dir: str | None) -> None:
    """Write the collected votes into RAW's annotations.csv (votes_<m>) and sdme.json."""
    from sdme.annotate.export import export_votes

    report = export_votes(_corpus(raw, data_dir))
    click.echo(report.summary())
    click.echo(f"check it with: sdme validate {report.annotations.parent}")


@annotate.group("labelstudio")
def labelstudio() -> None:
    """Interop with Label Studio: configs and tasks out, its JSON export in."""


@labelstudio.command("export")
@click.argument("raw")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: RAW/.annotate/labelstudio).")
@click.option("--url-prefix", default=None,
              help="Put before each media path in the tasks (default: Label Studio's "
                   "local-files URL, /data/local-files/?d=).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def labelstudio_export(raw: str, out: str | None, url_prefix: str | None,
                       data_dir: str | None) -> None:
    """Write a Label Studio labelling config and tasks per modality for RAW."""
    from sdme.annotate.labelstudio import LOCAL_FILES_PREFIX, export_labelstudio
    from sdme.annotate.project import open_project

    project = open_project(_corpus(raw, data_dir), prepare=True, progress=_progress)
    target = Path(out) if out else project.work_dir / "labelstudio"
    counts = export_labelstudio(project, target, url_prefix or LOCAL_FILES_PREFIX)
    click.echo(f"{target}: " + ", ".join(f"{m} {n} tasks" for m, n in counts.items())
               + f" (see {target / 'README.txt'})")


@labelstudio.command("import")
@click.argument("raw")
@click.argument("export_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@_errors_to_messages
def labelstudio_import(raw: str, export_file: str, data_dir: str | None) -> None:
    """Add the votes of a Label Studio JSON export (EXPORT_FILE) to RAW's project."""
    from sdme.annotate.labelstudio import import_labelstudio
    from sdme.annotate.project import open_project

    project = open_project(_corpus(raw, data_dir), prepare=True, progress=_progress)
    report = import_labelstudio(project, export_file)
    click.echo(f"{export_file}: {len(report['imported'])} votes imported, "
               f"{len(report['already'])} already there, {len(report['left_out'])} left out")
    for line in report["left_out"]:
        click.echo(f"  left out {line}")


__all__ = ["annotate"]
