"""The ``sdme`` command: thin click wrappers over the library functions.

    sdme download                      # the bundled sample corpus (embedded default)
    sdme download hub --repo ORG/NAME  # an SDME raw release on the Hugging Face Hub
    sdme download folder --path DIR    # register your own raw corpus
    sdme validate NAME_OR_DIR          # check a raw corpus or a built dataset
    sdme manifest DIR --name NAME      # write sdme.json for your own raw corpus
    sdme synth --n N                   # a synthetic corpus with controlled deviation (built)
    sdme synth --preset benchmark      # the synthetic benchmark task's dataset
    sdme synth --preset structured     # ... with structured deviation (synth-structured)
    sdme import mmsa --path F --name C # MMSA's CMU-MOSI/MOSEI, CH-SIMS (v2) features (built)
    sdme export mmsa --dataset D --out F
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
    from sdme.sources import SourceError, get_source

    target = paths.raw_dir(name, data_dir)
    try:
        delivered = get_source(source)(target, **options)
    except (SourceError, FormatError, OSError, ValueError, KeyError) as exc:
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


# --- synthetic corpus; MMSA feature files ------------------------------------------------------

@main.command()
@click.option("--n", "n", type=int, default=1000, show_default=True, help="Number of clips.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <data dir>/built/synth).")
@click.option("--deviation-rate", default="0.2", show_default=True,
              help="Probability that a modality expresses another emotion: one value, or "
                   "text=P,audio=P,vision=P.")
@click.option("--imbalance", type=float, default=1.0, show_default=True,
              help="Zipf exponent of the class prior (0: balanced).")
@click.option("--class-weights", default=None,
              help="Explicit class prior, comma-separated, one per class (overrides "
                   "--imbalance).")
@click.option("--noise", type=float, default=1.0, show_default=True,
              help="Scale of the random walk around the class prototype.")
@click.option("--seq-len", default=None,
              help="Length range per modality, e.g. text=10:50,audio=100:500,vision=75:375 "
                   "(the CMU-MOSEI-like default).")
@click.option("--dims", default=None,
              help="Feature size per modality, e.g. text=768,audio=74,vision=35 (the default).")
@click.option("--missing-rate", type=float, default=0.0, show_default=True,
              help="Probability that a modality is missing from a clip.")
@click.option("--annotators", type=int, default=1, show_default=True,
              help="Simulated annotators per modality.")
@click.option("--annotator-accuracy", type=float, default=1.0, show_default=True,
              help="Probability that an annotator votes the emotion the modality expresses.")
@click.option("--clips-per-video", type=float, default=7.0, show_default=True,
              help="Mean clips per source video.")
@click.option("--videos-per-speaker", type=float, default=3.0, show_default=True,
              help="Mean videos per speaker.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--preset", default=None, metavar="NAME",
              help="A fixed, named parameter set (sdme.synth.PRESETS): 'benchmark' makes the "
                   "dataset 'synth' of the benchmark task sdme-synth-discrete@1, 'structured' "
                   "the dataset 'synth-structured' (structured deviation). Excludes the other "
                   "generator options.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
@click.pass_context
def synth(ctx: click.Context, n: int, out: str | None, deviation_rate: str, imbalance: float,
          class_weights: str | None, noise: float, seq_len: str | None, dims: str | None,
          missing_rate: float, annotators: int, annotator_accuracy: float,
          clips_per_video: float, videos_per_speaker: float, seed: int, preset: str | None,
          data_dir: str | None) -> None:
    """Generate a synthetic corpus with controlled semantic deviation, as a built dataset."""
    from click.core import ParameterSource

    from sdme.synth import (
        PRESET_DATASETS,
        SynthConfig,
        SynthError,
        parse_modality_values,
        preset_config,
        synthesize,
    )

    if preset is not None:
        given = [f"--{name.replace('_', '-')}" for name in ctx.params
                 if name not in ("preset", "out", "data_dir")
                 and ctx.get_parameter_source(name) is not ParameterSource.DEFAULT]
        if given:
            _fail(f"--preset {preset} fixes every generator parameter; drop {', '.join(given)}")
        try:
            config = preset_config(preset)
            synthesize(out or paths.built_dir(PRESET_DATASETS.get(preset, "synth"), data_dir),
                       config, progress=True)
        except SynthError as exc:
            _fail(str(exc))
        return
    try:
        options: dict[str, object] = {
            "deviation_rate": parse_modality_values(deviation_rate, float)}
        if seq_len:
            options["seq_len"] = parse_modality_values(seq_len, tuple)
        if dims:
            options["dims"] = parse_modality_values(dims, int)
        if class_weights:
            try:
                options["class_weights"] = tuple(float(w) for w in class_weights.split(","))
            except ValueError:
                raise SynthError(f"--class-weights {class_weights!r}: expected numbers "
                                 "separated by commas") from None
        config = SynthConfig(n=n, imbalance=imbalance, noise=noise, missing_rate=missing_rate,
                             annotators=annotators, annotator_accuracy=annotator_accuracy,
                             clips_per_video=clips_per_video,
                             videos_per_speaker=videos_per_speaker, seed=seed, **options)
        synthesize(out or paths.built_dir("synth", data_dir), config, progress=True)
    except SynthError as exc:
        _fail(str(exc))


@main.group("import")
def import_() -> None:
    """Import a published feature release as a built dataset."""


@import_.command("mmsa")
@click.option("--path", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="MMSA pickle: aligned_50.pkl, unaligned_50.pkl, unaligned_39.pkl or "
                   "sims_unaligned.pkl.")
@click.option("--name", required=True, type=click.Choice(["mosi", "mosei", "chsims", "chsims2"]),
              help="Which corpus the file holds.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: <data dir>/built/<name>).")
@click.option("--nonfinite", type=click.Choice(["zero", "drop", "error"]), default="zero",
              show_default=True,
              help="NaN/inf in the features: replace with 0 (reported), drop the clip, or stop.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def import_mmsa(path: str, name: str, out: str | None, nonfinite: str,
                data_dir: str | None) -> None:
    """CMU-MOSI, CMU-MOSEI, CH-SIMS or CH-SIMS v2 from MMSA's feature pickle (read safely)."""
    import pickle

    from sdme.sources.mmsa import MMSAError
    from sdme.sources.mmsa import import_mmsa as run

    try:
        report = run(path, name, out or paths.built_dir(name, data_dir), nonfinite=nonfinite)
    except (MMSAError, pickle.UnpicklingError, OSError) as exc:
        _fail(str(exc))
    click.echo(report.summary())


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
    from sdme.sources.mmsa import MMSAError
    from sdme.sources.mmsa import export_mmsa as run

    try:
        report = run(dataset, out_file, data_dir=data_dir)
    except (MMSAError, FileNotFoundError, OSError) as exc:
        _fail(str(exc))
    click.echo(report.summary())


# --- build ------------------------------------------------------------------------------------

def _parse_params(values: tuple[str, ...]) -> dict[str, dict[str, object]]:
    import yaml

    params: dict[str, dict[str, object]] = {}
    for item in values:
        key, sep, value = item.partition("=")
        modality, dot, name = key.partition(".")
        if not sep or not dot or modality not in ("text", "audio", "vision"):
            raise click.BadParameter(f"{item!r}: expected MODALITY.NAME=VALUE, e.g. "
                                     "vision.crop_size=32", param_hint="--param")
        params.setdefault(modality, {})[name] = yaml.safe_load(value)
    return params


@main.command()
@click.argument("corpus", default="sample")
@click.option("--out", type=click.Path(file_okay=False),
              help="Output folder (default: <data dir>/built/<name>).")
@click.option("--name", default=None, help="Dataset name (default: the corpus folder's name).")
@click.option("--text-encoder", default="minilm", show_default=True)
@click.option("--audio-features", default="logmel", show_default=True)
@click.option("--vision-features", default="face", show_default=True)
@click.option("--fps", default=5.0, show_default=True, help="Video frames sampled per second.")
@click.option("--workers", default=1, show_default=True, help="Parallel worker processes.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--seed", default=0, show_default=True, help="Split assignment seed.")
@click.option("--param", "params", multiple=True, metavar="MODALITY.NAME=VALUE",
              help="Extractor parameter, e.g. --param audio.n_mels=64 (repeatable).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--data-dir", type=click.Path(file_okay=False), help=DATA_DIR_HELP)
def build(corpus: str, out: str | None, name: str | None, text_encoder: str,
          audio_features: str, vision_features: str, fps: float, workers: int, device: str,
          seed: int, params: tuple[str, ...], quiet: bool, data_dir: str | None) -> None:
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
                           fps=fps, workers=workers, device=device, seed=seed,
                           progress=not quiet, extractor_params=_parse_params(params))
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

    click.echo(f"{'sources:':<17}" + ", ".join(list_sources()))
    for modality, names in list_extractors().items():
        click.echo(f"{modality + ' features:':<17}{', '.join(names)}")
    root = paths.data_dir(data_dir)
    for kind in ("raw", "built"):
        folder = root / kind
        found = sorted(p.name for p in folder.iterdir()
                       if not p.name.startswith(".") and not p.name.endswith(".cache")) \
            if folder.is_dir() else []
        click.echo(f"{kind + ':':<17}{', '.join(found) or '(none)'}  [{folder}]")


if __name__ == "__main__":  # pragma: no cover
    main()
