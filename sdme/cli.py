"""The ``sdme`` command: thin click wrappers over the library functions.

    sdme download                      # the bundled sample corpus (embedded default)
    sdme download hub --repo ORG/NAME  # an SDME raw release on the Hugging Face Hub
    sdme download folder --path DIR    # register your own raw corpus
    sdme validate NAME_OR_DIR          # check a raw corpus or a built dataset
    sdme manifest DIR --name NAME      # write sdme.json for your own raw corpus
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from sdme import paths
from sdme.schema import MANIFEST_NAME, FormatError

DATA_DIR_HELP = f"Data folder (default: ${paths.ENV_VAR} or ~/.cache/sdme)."


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sdme")
def main() -> None:
    """SDME: multimodal emotion datasets with per-modality relevance annotations."""


# --- download ---------------------------------------------------------------------------------

def _run_source(source: str, name: str, data_dir: str | None, **options: object) -> Path:
    from sdme.sources import get_source

    target = paths.raw_dir(name, data_dir)
    try:
        delivered = get_source(source)(target, **options)
    except (FormatError, OSError, ValueError, KeyError) as exc:
        _fail(str(exc))
    click.echo(f"{source}: corpus {name!r} is at {delivered}")
    return delivered


@main.group(invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def download(ctx: click.Context, data_dir: str | None) -> None:
    """Fetch a raw corpus into the data folder (with no source: the bundled sample)."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir
    if ctx.invoked_subcommand is None:
        _run_source("sample", "sample", data_dir)


@download.command("sample")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def download_sample(ctx: click.Context, data_dir: str | None) -> None:
    """The small constructed corpus that ships inside the package."""
    _run_source("sample", "sample", data_dir or ctx.obj.get("data_dir"))


@download.command("hub")
@click.option("--repo", required=True, help="Hugging Face dataset repo, ORG/NAME.")
@click.option("--revision", default=None, help="Branch, tag or commit (pinned to its commit).")
@click.option("--name", default=None, help="Local corpus name (default: the repo's NAME).")
@click.option("--token", default=None, envvar="HF_TOKEN", help="Hub token for private repos.")
@click.option("--endpoint", default=None, help="Hub endpoint (default: huggingface_hub's).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def download_hub(ctx: click.Context, repo: str, revision: str | None, name: str | None,
                 token: str | None, endpoint: str | None, data_dir: str | None) -> None:
    """An SDME raw release from a Hugging Face dataset repo (verified, resumable)."""
    _run_source("hub", name or repo.rsplit("/", 1)[-1], data_dir or ctx.obj.get("data_dir"),
                repo=repo, revision=revision, token=token, endpoint=endpoint)


@download.command("folder")
@click.option("--path", "folder", required=True, type=click.Path(exists=True, file_okay=False),
              help="Your raw corpus folder (with sdme.json and annotations.csv).")
@click.option("--name", default=None, help="Corpus name (default: the folder's name).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def download_folder(ctx: click.Context, folder: str, name: str | None,
                    data_dir: str | None) -> None:
    """Register a raw corpus that lives elsewhere (linked, not copied)."""
    _run_source("folder", name or Path(folder).resolve().name,
                data_dir or ctx.obj.get("data_dir"), path=folder)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="Corpus name.")
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option("--license", "license_", default="unknown", show_default=True)
@click.option("--taxonomy", default=None,
              help="Comma-separated emotion categories (default: the 7-class SDME taxonomy).")
def manifest(folder: str, name: str, version: str, license_: str, taxonomy: str | None) -> None:
    """Write sdme.json (every file with size and sha256) for your own raw corpus."""
    from sdme.sources.folder import write_manifest

    classes = [t.strip() for t in taxonomy.split(",") if t.strip()] if taxonomy else None
    path = write_manifest(folder, name=name, version=version, license=license_,
                          taxonomy=classes)
    click.echo(f"wrote {path}")


# --- validate ---------------------------------------------------------------------------------

def resolve_target(name_or_path: str, data_dir: str | None) -> Path:
    """A path as given, else a built dataset or raw corpus of that name in the data folder."""
    given = Path(name_or_path)
    if given.exists():
        return given
    for candidate in (paths.built_dir(name_or_path, data_dir),
                      paths.raw_dir(name_or_path, data_dir)):
        if candidate.exists():
            return candidate
    _fail(f"{name_or_path!r} is neither a folder nor a dataset in {paths.data_dir(data_dir)} "
          "(run `sdme download` first)")
    raise AssertionError  # unreachable


def _print_summary(summary: dict[str, object]) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            value = json.dumps(value, default=lambda v: round(v, 3) if isinstance(v, float)
                               else str(v))
            value = value.replace('"', "")
        click.echo(f"  {key + ':':<20} {value}")


@main.command()
@click.argument("target")
@click.option("--raw", "kind", flag_value="raw", help="Treat TARGET as a raw corpus.")
@click.option("--built", "kind", flag_value="built", help="Treat TARGET as a built dataset.")
@click.option("--no-media", is_flag=True, help="Skip decoding every clip (raw corpora).")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def validate(target: str, kind: str | None, no_media: bool, data_dir: str | None) -> None:
    """Check a raw corpus or a built dataset; exit 1 with one line per problem."""
    if kind == "raw" and not Path(target).exists():
        path = paths.raw_dir(target, data_dir)
    else:
        path = resolve_target(target, data_dir)
    if kind == "built" or (kind is None and not (path / MANIFEST_NAME).exists()
                           and (path / "build_info.json").exists()):
        from sdme.validate_built import validate_built

        problems = validate_built(path)
        for problem in problems:
            click.echo(str(problem))
        if problems:
            sys.exit(1)
        click.echo(f"{path}: built dataset OK")
        return

    from sdme.validate import validate_raw

    report = validate_raw(path, check_media=not no_media)
    for problem in report.problems:
        click.echo(str(problem))
    if not report.ok:
        errors = sum(p.severity == "error" for p in report.problems)
        click.echo(f"{path}: {errors} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{path}: raw corpus OK")
    _print_summary(report.summary())


if __name__ == "__main__":  # pragma: no cover
    main()
