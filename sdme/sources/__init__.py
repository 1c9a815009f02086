"""Corpus sources: every corpus SDME can get is a source, one file each, registered by name.

A source is of one of two kinds:

- ``raw`` delivers a raw corpus folder (``sdme.json``, ``annotations.csv``, ``clips/``) that
  ``sdme build`` turns into a dataset: ``sample``, ``hub``, ``folder``, ``chsims``;
- ``built`` delivers a built dataset directly, through ``sdme.built.write_built_dataset``:
  ``synth``, ``mmsa``, ``features``.

**Adding a source is adding one file** ``sdme/sources/<name>.py`` (found by
``sdme.registry.Registry`` discovery, or by a third-party package through the ``sdme.sources``
entry-point group) that decorates its deliver function::

    @dataclass(frozen=True)
    class MyOptions:                      # the source's options: typed, with CLI help
        path: Path = field(metadata={"help": "The corpus folder.", "exists": True})

    @contextmanager
    def fixture(workdir: Path) -> Iterator[dict[str, Any]]:
        ...                               # write a tiny offline input in the documented layout
        yield {"path": workdir / "tiny"}  # the options that deliver it

    @register_source("mine", kind="raw", options=MyOptions, fixture=fixture,
                     card=SourceCard(title=..., summary=..., homepage=..., license=...,
                                     obtain=..., citation=...))
    def download(target: Path, *, path: Path, progress: bool = False) -> Path:
        ...                               # deliver into ``target``; return it

That is all: ``sdme download mine --path ...`` (``sdme import`` for built sources) is generated
from the options dataclass (field name -> ``--flag``; ``metadata["help"]``; a field without a
default is required; ``metadata`` may add ``envvar``, ``secret``, ``exists``, ``path`` =
``"file"``/``"dir"`` and, for per-modality mappings, ``keys``), :func:`source_command` gives the
shell recipe that makes its dataset, and the contract test (``tests/test_sources.py``) runs the
fixture, delivers, and validates the result, with no test code of its own.

The deliver function's keyword parameters are the options' fields (same names and defaults)
plus ``progress``; it returns the raw folder (raw sources) or a report with ``out_dir`` and
``summary()`` (built sources). Errors are one line naming the file and the problem.
"""

from __future__ import annotations

import dataclasses
import shlex
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sdme.registry import Registry, RegistryError

Kind = Literal["raw", "built"]
KINDS: tuple[str, ...] = ("raw", "built")
DeliverFn = Callable[..., Any]
Fixture = Callable[[Path], AbstractContextManager[dict[str, Any]]]
#: Command-line names a source's options cannot take (the generated command adds them).
RESERVED_OPTIONS: dict[str, tuple[str, ...]] = {"raw": ("name", "data_dir", "progress"),
                                                "built": ("out", "data_dir", "progress")}

SOURCES: Registry[DeliverFn] = Registry("source", packages=[__name__])


class SourceError(RuntimeError):
    """A source that could not deliver its corpus; the message says what failed and what to do."""


@dataclass(frozen=True)
class SourceCard:
    """What every corpus card states about where its data comes from.

    Attributes:
        title: Full name of the corpus.
        summary: One line: what the source delivers (the command's help).
        homepage: Where the corpus is published.
        license: Its license (SPDX identifier or words).
        obtain: How to obtain the data.
        citation: What to cite.
    """

    title: str
    summary: str
    homepage: str
    license: str
    obtain: str
    citation: str


@dataclass(frozen=True)
class Source:
    """A registered source (the view :func:`get_source` gives of a registry entry).

    Attributes:
        name: Registered name (``sdme download <name>`` / ``sdme import <name>``).
        kind: ``"raw"`` or ``"built"``.
        deliver: ``deliver(target, *, progress=False, **options)``: delivers into ``target``.
        options: Dataclass of the options (field metadata: ``help`` and the rest, module
            docstring).
        card: Where the data comes from, its license, how to obtain it, what to cite.
        fixture: ``fixture(workdir)``: a context manager that writes a tiny offline input in
            the source's documented layout and yields the options that deliver it.
        dataset_name: The corpus (raw) or dataset (built) name the options give by default, in
            ``<data_dir>/raw`` or ``<data_dir>/built``.
    """

    name: str
    kind: Kind
    deliver: DeliverFn
    options: type
    card: SourceCard
    fixture: Fixture
    dataset_name: Callable[[Mapping[str, Any]], str]

    def option_fields(self) -> list[dataclasses.Field]:
        """The options' fields, in order."""
        return [f for f in dataclasses.fields(self.options) if f.init]

    def option_hints(self) -> dict[str, Any]:
        """The options' type hints."""
        from sdme.config import field_hints

        return field_hints(self.options)

    def check_options(self, options: Mapping[str, Any]) -> Any:
        """The options dataclass from ``options`` (unknown names get a close match).

        Raises:
            sdme.config.ConfigError: an unknown option, a missing one or a wrong type.
        """
        from sdme.config import from_mapping

        return from_mapping(self.options, options, what=f"{self.name} source")


def register_source(name: str, *, kind: Kind, options: type, card: SourceCard,
                    fixture: Fixture,
                    dataset_name: Callable[[Mapping[str, Any]], str] | None = None
                    ) -> Callable[[DeliverFn], DeliverFn]:
    """Registers the decorated deliver function as the source ``name`` (module docstring).

    Args:
        name: Source name.
        kind: ``"raw"`` or ``"built"``.
        options: The options dataclass.
        card: Card facts.
        fixture: The offline-input hook.
        dataset_name: Default corpus/dataset name from the options (default: ``name``).

    Raises:
        RegistryError: Another object already has the name.
        ValueError: An unknown kind, options that are not a dataclass, or a reserved option
            name.
    """
    if kind not in KINDS:
        raise ValueError(f"source {name!r}: kind must be one of {KINDS}, got {kind!r}")
    if not dataclasses.is_dataclass(options):
        raise ValueError(f"source {name!r}: options must be a dataclass")
    reserved = [f.name for f in dataclasses.fields(options) if f.name in RESERVED_OPTIONS[kind]]
    if reserved:
        raise ValueError(f"source {name!r}: option name(s) {reserved} are reserved for the "
                         f"generated command")

    def decorator(deliver: DeliverFn) -> DeliverFn:
        return SOURCES.register(name, deliver, kind=kind, options=options, card=card,
                                fixture=fixture,
                                dataset_name=dataset_name or (lambda _options: name))

    return decorator


def get_source(name: str) -> Source:
    """The registered source ``name``.

    Raises:
        RegistryError: Unknown name (with the known ones and a close match).
    """
    entry = SOURCES.entry(name)
    return Source(name=entry.name, deliver=entry.obj, **entry.meta)


def list_sources(kind: Kind | None = None) -> list[str]:
    """Registered source names (of one kind when given), sorted."""
    return [e.name for e in SOURCES.entries() if kind is None or e.meta["kind"] == kind]


def source_command(source: str, **options: Any) -> str:
    """The shell command that makes the source's dataset, e.g. ``sdme download sample && sdme
    build sample``, ``sdme import synth --preset benchmark``, ``sdme import mmsa --name mosi
    --path PATH``.

    Options are checked (names and types, as the command would), written in the options'
    field order; secret ones (tokens) are left out: the command reads them from their
    environment variable.

    Raises:
        RegistryError: Unknown source.
        sdme.config.ConfigError: An unknown option, a missing required one, or a wrong type.
    """
    from sdme.config import format_text

    spec = get_source(source)
    checked = spec.check_options(options)
    hints = spec.option_hints()
    words = ["sdme", "download" if spec.kind == "raw" else "import", spec.name]
    for f in spec.option_fields():
        if f.name not in options or f.metadata.get("secret"):
            continue
        value = getattr(checked, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag if value else f"--no-{flag[2:]}")
        elif value is not None:
            words += [flag, shlex.quote(format_text(value, hints[f.name]))]
    command = " ".join(words)
    if spec.kind == "raw":
        command += f" && sdme build {shlex.quote(spec.dataset_name(options))}"
    return command


def option_is_path(hint: Any) -> bool:
    """Whether an option's type is a path (``Path`` or ``Path | None``)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint is Path or (len(args) == 1 and args[0] is Path)


def iter_sources() -> Iterator[Source]:
    """Every registered source, by name."""
    for name in list_sources():
        yield get_source(name)


__all__ = ["KINDS", "SOURCES", "RegistryError", "Source", "SourceCard", "SourceError",
           "get_source", "iter_sources", "list_sources", "register_source", "source_command"]
