"""The `sdme` command as a user runs it: help, download of the embedded default, validate."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from sdme.cli import main
from sdme.schema import MANIFEST_NAME


def test_help_lists_commands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("download", "validate", "manifest"):
        assert command in result.output
    sub = CliRunner().invoke(main, ["download", "--help"])
    for source in ("hub", "folder", "sample"):
        assert source in sub.output


def test_download_default_then_validate_by_name(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["download", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    raw = tmp_path / "raw" / "sample"
    assert (raw / MANIFEST_NAME).is_file()
    again = runner.invoke(main, ["validate", "sample", "--data-dir", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert str(raw) in again.output


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("SDME_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(main, ["download", "sample"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "raw" / "sample" / MANIFEST_NAME).is_file()


def test_validate_unknown_name_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(main, ["validate", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "sdme download" in result.output


def test_console_entry_point_runs():
    # The installed `sdme` script and `python -m sdme.cli` are the same program.
    out = subprocess.run([sys.executable, "-m", "sdme.cli", "--help"], capture_output=True,
                         text=True, check=True)
    assert "download" in out.stdout


def test_registered_folder_builds_under_its_registered_name(tmp_path):
    from builddoubles import tiny_corpus

    own = tiny_corpus(tmp_path / "my_recordings")
    data = tmp_path / "data"
    runner = CliRunner()
    registered = runner.invoke(main, ["download", "folder", "--path", str(own), "--name", "lab",
                                      "--data-dir", str(data)])
    assert registered.exit_code == 0, registered.output
    built = runner.invoke(main, ["build", "lab", "--quiet", "--text-encoder", "double",
                                 "--audio-features", "double", "--vision-features", "double",
                                 "--data-dir", str(data)])
    assert built.exit_code == 0, built.output
    assert (data / "built" / "lab" / "build_info.json").is_file()
    assert not (data / "built" / "my_recordings").exists()


def test_folder_without_manifest_points_to_sdme_manifest(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "annotations.csv").write_text("clip_id\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["download", "folder", "--path", str(folder),
                                       "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    assert "sdme manifest" in result.output and "--name NAME" in result.output
