"""The ``sdme`` command: thin click wrappers over the library functions.

    sdme download                      # the bundled sample corpus (embedded default)
    sdme download hub --repo ORG/NAME  # an SDME raw release on the Hugging Face Hub
    sdme download folder --path DIR    # register your own raw corpus
    sdme validate NAME_OR_DIR          # check a raw corpus or a built dataset
    sdme manifest DIR --name NAME      # write sdme.json for your own raw corpus
    sdme build NAME                    # a raw corpus -> a built dataset
    sdme import synth --n N            # a synthetic corpus with controlled deviation (built)
    sdme synth --preset benchmark      # (alias of `sdme import synth`) the benchmark's dataset
    sdme synth --preset structured     # ... with structured deviation (synth-structured)
    sdme import mmsa --path F --name C # MMSA's CMU-MOSI/MOSEI, CH-SIMS (v2) features (built)
    sdme export mmsa --dataset D --out F

The subcommands of ``sdme download`` (raw sources) and ``sdme import`` (built sources) are made
from the source registry (``sdme.sources``): one per registered source, one option per field of
its options dataclass.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import click
from click.core import ParameterSource

from sdme import config, paths
from sdme.schema import MANIFEST_NAME, MODALITIES, FormatError

if TYPE_CHECKING:
    from sdme.sources import Source

DATA_DIR_HELP = f"Data folder (default: ${paths.ENV_VAR} or ~/.cache/sdme)."
#: Top-level aliases of source commands: ``sdme synth`` is ``sdme import synth``.
ALIASES: dict[str, tuple[str, str]] = {"synth": ("import", "synth")}


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class _Main(click.Group):
    """The ``sdme`` group, with :data:`ALIASES` of source commands."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *ALIASES])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in ALIASES:
            group, source = ALIASES[name]
            return _built_source_command(source, help=f"Alias of `sdme {group} {source}`: "
                                         + _summary(source))
        return super().get_command(ctx, name)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sdme")
def main() -> None:
    """SDME: multimodal emotion datasets with per-modality relevance annotations."""


# --- sources: `sdme download <raw source>`, `sdme import <built source>` -----------------------

def _click_type(hint: Any, meta: Mapping[str, Any]) -> Any:
    """The click type of an option (None: read as text by ``sdme.config.parse_text``)."""
    from sdme.sources import option_is_path

    inner = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = inner[0] if len(inner) == 1 else hint
    if option_is_path(hint):
        kind = meta.get("path")
        return click.Path(exists=bool(meta.get("exists")), file_okay=kind != "dir",
                          dir_okay=kind != "file")
    if typing.get_origin(base) is Literal:
        return click.Choice([str(a) for a in typing.get_args(base)])
    return {int: click.INT, float: click.FLOAT, str: click.STRING}.get(base)


def _source_options(source: Source) -> list[click.Option]:
    """One click option per field of the source's options dataclass."""
    hints = source.option_hints()
    options = []
    for f in source.option_fields():
        meta = f.metadata
        flag = "--" + f.name.replace("_", "-")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        click_type = _click_type(hints[f.name], meta)
        # Simple defaults are shown (the dataclass applies them: only given options are passed).
        default = (f.default if (click_type is not None or hints[f.name] is bool)
                   and f.default is not dataclasses.MISSING else None)
        if hints[f.name] is bool:
            options.append(click.Option([f"{flag}/--no-{flag[2:]}", f.name], default=default,
                                        help=meta.get("help"), show_default=True))
            continue
        options.append(click.Option(
            [flag, f.name], type=click_type or click.STRING, required=required, default=default,
            envvar=meta.get("envvar"), show_envvar=bool(meta.get("envvar")),
            help=meta.get("help"), show_default=default is not None))
    return options


def _given_options(ctx: click.Context, source: Source, values: Mapping[str, Any]
                   ) -> dict[str, Any]:
    """The options given on the command line (or by environment variable), parsed and typed."""
    hints = source.option_hints()
    given = {}
    for f in source.option_fields():
        origin = ctx.get_parameter_source(f.name)
        if origin is None or origin is ParameterSource.DEFAULT or values[f.name] is None:
            continue
        value = values[f.name]
        if isinstance(value, str) and _click_type(hints[f.name], f.metadata) is None:
            value = config.parse_text(value, hints[f.name], f.name, keys=f.metadata.get("keys"))
        given[f.name] = value
    checked = source.check_options(given)
    return {name: getattr(checked, name) for name in given}


def _deliver(source: Source, target: Path, options: Mapping[str, Any]) -> Any:
    import pickle

    from sdme.config import ConfigError
    from sdme.sources import SourceError

    try:
        return source.deliver(target, progress=True, **options)
    except (SourceError, FormatError, ConfigError, OSError, ValueError, KeyError,
            pickle.UnpicklingError) as exc:
        _fail(str(exc))


def _raw_source_command(name: str) -> click.Command:
    from sdme.sources import get_source

    source = get_source(name)

    @click.pass_context
    def run(ctx: click.Context, name: str | None, data_dir: str | None, **values: Any) -> None:
        options = _checked(ctx, source, values)
        corpus = name or source.dataset_name(options)
        data_dir = data_dir or (ctx.obj or {}).get("data_dir")
        delivered = _deliver(source, paths.raw_dir(corpus, data_dir), options)
        click.echo(f"{source.name}: corpus {corpus!r} is at {delivered}")

    return click.Command(name, callback=run, help=source.card.summary, params=[
        *_source_options(source),
        click.Option(["--name"], default=None,
                     help="Local corpus name (default: " + _name_hint(source) + ")."),
        click.Option(["--data-dir"], type=click.Path(file_okay=False), help=DATA_DIR_HELP)])


def _built_source_command(name: str, help: str | None = None) -> click.Command:
    from sdme.sources import get_source

    source = get_source(name)

    @click.pass_context
    def run(ctx: click.Context, out: str | None, data_dir: str | None, **values: Any) -> None:
        options = _checked(ctx, source, values)
        target = Path(out) if out else paths.built_dir(source.dataset_name(options), data_dir)
        _deliver(source, target, options)  # reports on stderr
        click.echo(f"{source.name}: dataset at {target}")

    return click.Command(name, callback=run, help=help or source.card.summary, params=[
        *_source_options(source),
        click.Option(["--out"], type=click.Path(file_okay=False), default=None,
                     help="Output folder (default: <data dir>/built/" + _name_hint(source)
                          + ")."),
        click.Option(["--data-dir"], type=click.Path(file_okay=False), help=DATA_DIR_HELP)])


def _checked(ctx: click.Context, source: Source, values: Mapping[str, Any]) -> dict[str, Any]:
    from sdme.config import ConfigError

    try:
        return _given_options(ctx, source, values)
    except ConfigError as exc:
        _fail(str(exc))
        raise AssertionError from exc  # unreachable


def _name_hint(source: Source) -> str:
    """The default corpus/dataset name: the naming function's docstring, else its result with
    ``<option>`` for the options it comes from."""
    import inspect

    doc = inspect.getdoc(source.dataset_name)
    if doc:
        first = doc.splitlines()[0].rstrip(".")
        return first[:1].lower() + first[1:]
    try:
        return source.dataset_name({f.name: f"<{f.name}>" for f in source.option_fields()})
    except Exception:  # noqa: BLE001 - a name rule that needs real values: describe it
        return "<derived from the options>"


def _summary(name: str) -> str:
    from sdme.sources import get_source

    return get_source(name).card.summary


class _SourceGroup(click.Group):
    """A group whose subcommands are the registered sources of one kind (made when asked)."""

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind

    def list_commands(self, ctx: click.Context) -> list[str]:
        from sdme.sources import list_sources

        return list_sources(self.kind)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.list_commands(ctx):
            return None
        return (_raw_source_command if self.kind == "raw" else _built_source_command)(name)


@main.group(cls=_SourceGroup, kind="raw", invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def download(ctx: click.Context, data_dir: str | None) -> None:
    """Fetch a raw corpus into the data folder (with no source: the bundled sample)."""
    ctx.ensure_object(dict)
    ctx.obj["data_dir"] = data_dir
    if ctx.invoked_subcommand is None:
        ctx.invoke(_raw_source_command("sample"), data_dir=data_dir)


@main.group("import", cls=_SourceGroup, kind="built")
def import_() -> None:
    """Make a built dataset from a built source: a published feature release, or a generator."""


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


def _rounded(value: object) -> object:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    return value


def _print_summary(summary: dict[str, object]) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            value = json.dumps(_rounded(value)).replace('"', "")
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
        from sdme.validate_built import errors, validate_built

        problems = validate_built(path)
        for problem in problems:
            click.echo(str(problem))
        if errors(problems):
            click.echo(f"{path}: {len(errors(problems))} problem(s)", err=True)
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


# --- export ---------------------------------------------------------------------------------

@main.group("export")
def export() -> None:
    """Export a built dataset to another toolkit's format."""


@export.command("mmsa")
@click.option("--dataset", required=True, help="Built dataset name or folder.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False),
              help="The pickle to write.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def export_mmsa(dataset: str, out_file: str, data_dir: str | None) -> None:
    """Write a built dataset as an MMSA feature pickle (train/valid/test dicts of arrays)."""
    from sdme.mmsa import MMSAError
    from sdme.mmsa import export_mmsa as run

    try:
        report = run(dataset, out_file, data_dir=data_dir)
    except (MMSAError, FileNotFoundError, OSError) as exc:
        _fail(str(exc))
    click.echo(report.summary())


# --- build ------------------------------------------------------------------------------------

def _extractor_params(values: tuple[str, ...]) -> dict[str, dict[str, object]]:
    """``--param MODALITY.NAME=VALUE`` options as ``{modality: {name: value}}``."""
    params = config.parse_assignments(values, "--param")
    for modality, group in params.items():
        if not isinstance(group, dict) or modality not in MODALITIES:
            raise config.ConfigError(f"--param {modality}...: expected MODALITY.NAME=VALUE with "
                                     f"MODALITY in {', '.join(MODALITIES)}, e.g. "
                                     "vision.crop_size=32")
    return params


@main.command()
@click.argument("corpus", default="sample")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder (default: <data dir>/built/<name>).")
@click.option("--name", default=None, help="Dataset name (default: the corpus folder's name).")
@click.option("--text-encoder", default="minilm", show_default=True)
@click.option("--audio-features", default="logmel", show_default=True)
@click.option("--vision-features", default="face", show_default=True)
@click.option("--fps", type=float, default=None,
              help="Video frames sampled per second: shorthand for --param vision.fps=FPS "
                   "(default: the vision extractor's, 5).")
@click.option("--workers", default=1, show_default=True, help="Parallel worker processes.")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Extract on a Dask cluster instead: a scheduler address (tcp://HOST:8786), a "
                   "scheduler file, or local:N (N worker processes here). Workers need the "
                   "corpus and the cache at the same paths; see the README.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", default=0, show_default=True, help="Split assignment seed.")
@click.option("--param", "params", multiple=True, metavar="MODALITY.NAME=VALUE",
              help="Extractor parameter, e.g. --param audio.n_mels=64 (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def build(corpus: str, out: str | None, name: str | None, text_encoder: str,
          audio_features: str, vision_features: str, fps: float | None, workers: int,
          scheduler: str | None, device: str, seed: int, params: tuple[str, ...], quiet: bool,
          data_dir: str | None) -> None:
    """Build a dataset (features, relevance fields, splits) from a raw corpus (default: sample)."""
    from sdme.build import BuildError
    from sdme.build import build as run_build
    from sdme.features import ClipError

    given_path = Path(corpus).exists()
    raw = Path(corpus) if given_path else paths.raw_dir(corpus, data_dir)
    if not (raw / MANIFEST_NAME).exists():
        _fail(f"no raw corpus at {raw} (run `sdme download` first, or give a raw folder)")
    # A registered corpus keeps its registered name (its folder may be a link elsewhere).
    default_name = raw.resolve().name if given_path else corpus
    target = Path(out) if out else paths.built_dir(name or default_name, data_dir)
    try:
        report = run_build(raw, target, text_encoder=text_encoder,
                           audio_features=audio_features, vision_features=vision_features,
                           fps=fps, workers=workers, scheduler=scheduler, device=device,
                           seed=seed, progress=not quiet,
                           extractor_params=_extractor_params(params))
    except (BuildError, ClipError, FormatError, KeyError, ValueError) as exc:
        _fail(str(exc))
    if quiet:
        click.echo(report.summary())
    click.echo(f"dataset: {report.out_dir}\n  load it with sdme.load_dataset("
               f"{str(report.out_dir)!r}) or datasets.load_dataset")


@main.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def list_(data_dir: str | None) -> None:
    """Sources, feature extractors, and the corpora and datasets in the data folder."""
    from sdme.features import list_extractors
    from sdme.sources import list_sources

    click.echo(f"{'raw sources:':<17}" + ", ".join(list_sources("raw")) + "  (sdme download)")
    click.echo(f"{'built sources:':<17}" + ", ".join(list_sources("built")) + "  (sdme import)")
    for modality, names in list_extractors().items():
        click.echo(f"{modality + ' features:':<17}{', '.join(names)}")
    root = paths.data_dir(data_dir)
    for kind in ("raw", "built"):
        folder = root / kind
        found = sorted(p.name for p in folder.iterdir()
                       if not p.name.startswith(".") and not p.name.endswith(".cache")) \
            if folder.is_dir() else []
        click.echo(f"{kind + ':':<17}{', '.join(found) or '(none)'}  [{folder}]")


main.add_command(__import__("sdme.annotate.cli", fromlist=["annotate"]).annotate)  # cheap import

if __name__ == "__main__":  # pragma: no cover
    main()
