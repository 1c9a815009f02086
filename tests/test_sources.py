"""The contract every registered source keeps, checked for each one (adding a source adds no test
code): a typed options dataclass with command-line help that its deliver function takes, card
facts, and an offline fixture that goes through the generated command line (the exact
``source_command`` recipe) and delivers what validates — raw: ``sdme validate``'s raw checks,
media decoded; built: the built-dataset validator and plain ``datasets.load_dataset``."""

from __future__ import annotations

import dataclasses
import inspect
import shlex

import pytest
from click.testing import CliRunner

from sdme.built import BuildInfo
from sdme.cli import main
from sdme.config import ConfigError
from sdme.sources import KINDS, get_source, list_sources, source_command
from sdme.validate import validate_raw
from sdme.validate_built import errors, validate_built

SOURCES = list_sources()


@pytest.mark.parametrize("name", SOURCES)
def test_declaration(name):
    source = get_source(name)
    assert source.kind in KINDS
    for fact in dataclasses.astuple(source.card):
        assert isinstance(fact, str) and fact.strip(), (name, source.card)
    parameters = inspect.signature(source.deliver).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    assert "progress" in parameters
    for field in source.option_fields():
        assert field.metadata.get("help"), f"{name}: option {field.name!r} has no help"
        if field.name in parameters:
            param = parameters[field.name]
            default = param.default if param.default is not param.empty else dataclasses.MISSING
            assert default == field.default, f"{name}: {field.name} defaults differ"
        else:
            assert takes_any, f"{name}: deliver does not take option {field.name!r}"


@pytest.mark.parametrize("name", SOURCES)
def test_fixture_delivers_through_its_command_and_validates(name, tmp_path):
    import datasets

    source = get_source(name)
    data = tmp_path / "data"
    with source.fixture(tmp_path / "input") as options:
        command = source_command(name, **options)
        words = shlex.split(command.split(" && ")[0])
        assert words[:3] == ["sdme", "download" if source.kind == "raw" else "import", name]
        result = CliRunner().invoke(main, [*words[1:], "--data-dir", str(data)])
        assert result.exit_code == 0, result.output
    dataset = source.dataset_name(options)
    if source.kind == "raw":
        assert command.endswith(f" && sdme build {shlex.quote(dataset)}")
        report = validate_raw(data / "raw" / dataset)
        assert report.ok, [str(p) for p in report.problems]
        assert report.clips
        return
    built = data / "built" / dataset
    assert errors(validate_built(built)) == []
    loaded = datasets.load_dataset(str(built), cache_dir=str(tmp_path / "hf"))
    info = BuildInfo.load(built)
    assert {s: loaded[s].num_rows for s in loaded} == info.counts.splits
    assert info.counts.rows == sum(info.counts.splits.values()) > 0


def test_source_command_recipes():
    assert source_command("sample") == "sdme download sample && sdme build sample"
    assert source_command("synth", preset="benchmark") == "sdme import synth --preset benchmark"
    assert source_command("mmsa", name="mosi", path="PATH/TO/unaligned_50.pkl") == \
        "sdme import mmsa --name mosi --path PATH/TO/unaligned_50.pkl"
    assert source_command("folder", path="/data/my corpus") == \
        "sdme download folder --path '/data/my corpus' && sdme build 'my corpus'"
    # a token is read from HF_TOKEN by the command, never written into it
    assert source_command("hub", repo="org/corpus", revision="v1", token="hf_secret") == \
        "sdme download hub --repo org/corpus --revision v1 && sdme build corpus"
    assert source_command("synth", n=50, deviation_rate={"text": 0.1, "audio": 0.2,
                                                          "vision": 0.3}) == \
        "sdme import synth --n 50 --deviation-rate text=0.1,audio=0.2,vision=0.3"
    with pytest.raises(ConfigError, match="did you mean 'repo'"):
        source_command("hub", rep="org/corpus")
    with pytest.raises(ConfigError, match="'nonfinite'"):
        source_command("mmsa", name="mosi", path="p.pkl", nonfinite="ignore")
    with pytest.raises(KeyError, match="Did you mean 'sample'"):
        source_command("sampel")


def test_registration_refuses_reserved_option_names():
    from sdme.sources import SourceCard, register_source

    @dataclasses.dataclass(frozen=True)
    class Clashing:
        name: str = dataclasses.field(default="x", metadata={"help": "clashes with --name"})

    card = SourceCard(*(["x"] * 6))
    with pytest.raises(ValueError, match="reserved"):
        register_source("clash", kind="raw", options=Clashing, card=card,
                        fixture=lambda workdir: None)
    assert "clash" not in list_sources()
