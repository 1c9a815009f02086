"""MMSA feature pickles: the restricted unpickler, import, export and the round trip.

The fixtures are small pickles (3-5 clips per split) in the structure MMSA publishes for each of
the four corpora (``aligned_50.pkl`` / ``unaligned_50.pkl`` for CMU-MOSI and CMU-MOSEI,
``unaligned_39.pkl`` for CH-SIMS, ``sims_unaligned.pkl`` for CH-SIMS v2), with the real feature
sizes and short sequences.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sdme import safe_pickle
from sdme.mmsa import export_mmsa, fake_split
from sdme.schema import MODALITIES
from sdme.scores import discretise, score_relevance
from sdme.sources import mmsa
from sdme.sources.mmsa import MMSAError, import_mmsa
from sdme.validate_built import errors, validate_built

REPO = Path(__file__).resolve().parents[1]
FILES = {"mosi": "unaligned_50.pkl", "mosei": "unaligned_50.pkl", "chsims": "unaligned_39.pkl",
         "chsims2": "sims_unaligned.pkl"}
STEPS = {"text": 9, "audio": 12, "vision": 7}
SPLIT_SIZES = {"train": 5, "valid": 3, "test": 4}


def mmsa_split(corpus: str, split: str, n: int, rng: np.random.Generator, *,
               aligned: bool = False) -> dict[str, np.ndarray]:
    """One split of a fake MMSA pickle: padded arrays, lengths, ids, scores."""
    return fake_split(corpus, split, n, rng, aligned=aligned, steps=STEPS)


def make_pickle(folder: Path, corpus: str, *, aligned: bool = False, seed: int = 0,
                name: str | None = None) -> Path:
    rng = np.random.default_rng(seed)
    data = {split: mmsa_split(corpus, split, n, rng, aligned=aligned)
            for split, n in SPLIT_SIZES.items()}
    path = folder / (name or ("aligned_50.pkl" if aligned else FILES[corpus]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    return path


def tables(out: Path) -> dict[str, pa.Table]:
    found: dict[str, list[Path]] = {}
    for path in sorted((out / "data").glob("*.parquet")):
        found.setdefault(path.name.split("-")[0], []).append(path)
    return {s: pa.concat_tables([pq.read_table(p) for p in ps]) for s, ps in found.items()}


def rows_by_id(out: Path) -> dict[str, dict]:
    return {r["clip_id"]: r for t in tables(out).values() for r in t.to_pylist()}


# --- the restricted unpickler ------------------------------------------------------------------

class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": {"id": _Hostile(marker)}}))
    with pytest.raises(safe_pickle.UnsafePickleError) as info:
        safe_pickle.load(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and "refused" in message
    with pytest.raises(safe_pickle.UnsafePickleError):
        import_mmsa(path, "mosi", tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("global_name", ["builtins eval", "subprocess Popen",
                                         "numpy.testing._private.utils runstring",
                                         "numpy load"])
def test_other_globals_are_refused(tmp_path, global_name):
    module, name = global_name.split()
    payload = f"c{module}\n{name}\n(S'1'\ntR.".encode()  # protocol 0: GLOBAL, MARK, args, REDUCE
    with pytest.raises(safe_pickle.UnsafePickleError, match=f"{module}.{name}"):
        safe_pickle.loads(payload, source="hostile.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_and_containers_load(protocol):
    data = {"train": {"audio": np.arange(12, dtype=np.float32).reshape(2, 3, 2),
                      "id": np.array(["a$_$1", "b$_$2"]), "raw_text": np.array(["x", "y"],
                                                                               dtype=object),
                      "n": np.int64(3), "f": np.float32(0.5), "lst": [1, 2.5, "s", (1, 2)],
                      "set": {1, 2}, "b": b"bytes"}}
    loaded = safe_pickle.loads(pickle.dumps(data, protocol=protocol))
    assert loaded["train"]["id"].tolist() == ["a$_$1", "b$_$2"]
    np.testing.assert_array_equal(loaded["train"]["audio"], data["train"]["audio"])
    assert loaded["train"]["raw_text"].dtype == object and loaded["train"]["n"] == 3
    assert loaded["train"]["lst"] == [1, 2.5, "s", (1, 2)] and loaded["train"]["b"] == b"bytes"


def test_numpy1_module_names_load():
    """MMSA's files were pickled under numpy 1 (``numpy.core.multiarray``)."""
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    blob = pickle.dumps(array, protocol=2).replace(b"numpy._core.multiarray",
                                                   b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in blob
    np.testing.assert_array_equal(safe_pickle.loads(blob), array)


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "aligned_50.pkl"
    path.write_bytes(pickle.dumps({"train": np.zeros(1000)})[:200])
    with pytest.raises(pickle.UnpicklingError, match=str(path)):
        safe_pickle.load(path)


_BOUNDED_LOAD = r"""
import json, os, pickle, resource, sys, tracemalloc
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from hostile_pickles import CASES
from sdme import safe_pickle

folder = Path(sys.argv[2])
status = Path("/proc/self/status").read_text().splitlines()
vm = int(next(line for line in status if line.startswith("VmSize")).split()[1]) * 1024
limit = vm + int(sys.argv[3]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
out = {}
try:  # control: the limit is real (the standard unpickler hits it on the first case)
    pickle.loads(CASES["bytearray_3e9"][0])
    out["control"] = "loaded"
except MemoryError:
    out["control"] = "MemoryError"
tracemalloc.start()
for name, (blob, _) in CASES.items():
    path = folder / f"{name}.pkl"
    path.write_bytes(blob)
    tracemalloc.reset_peak()
    try:
        safe_pickle.load(path)
        error, message = None, ""
    except Exception as exc:
        error, message = type(exc).__name__, str(exc)
    out[name] = {"error": error, "message": message, "size": len(blob),
                 "peak": tracemalloc.get_traced_memory()[1]}
print(json.dumps(out))
"""


def test_hostile_pickles_are_refused_in_bounded_memory(tmp_path):
    """Issue #12's pickles (a 32-byte bytearray(3e9), bytes(1e12), a self-referencing list and a
    billion laughs as the `id` array, ndarrays of 3e9 and 1e12 elements, BINBYTES8 with a huge
    length, lists nested 100k deep, `_codecs.encode` with a bogus codec): each is refused with
    one line naming the file and the reason, using at most 4 x its size + 64 MiB. They run in a
    child process whose address space is capped 512 MiB above its start, so a regression dies
    there (the control shows the standard unpickler does) instead of eating the machine."""
    from hostile_pickles import CASES

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", _BOUNDED_LOAD, str(REPO / "tests"),
                           str(tmp_path), "512"], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    assert found.pop("control") == "MemoryError"
    for name, (_, fragment) in CASES.items():
        case = found[name]
        assert case["error"] in ("UnsafePickleError", "UnpicklingError"), (name, case)
        message = case["message"]
        assert message.startswith(str(tmp_path / f"{name}.pkl") + ": "), (name, message)
        assert "\n" not in message and fragment in message, (name, message)
        budget = safe_pickle.MEMORY_FACTOR * case["size"] + safe_pickle.MEMORY_MARGIN
        assert case["peak"] < budget, (name, case["peak"], budget)


def test_hostile_pickle_import_is_one_line_and_writes_nothing(tmp_path):
    from click.testing import CliRunner
    from hostile_pickles import CASES

    from sdme.cli import main

    runner = CliRunner()
    for name in ("self_referencing_id", "billion_laughs_id", "nested_100k"):
        path = tmp_path / "unaligned_50.pkl"
        path.write_bytes(CASES[name][0])
        result = runner.invoke(main, ["import", "mmsa", "--path", str(path), "--name", "mosi",
                                      "--out", str(tmp_path / "out")])
        assert result.exit_code == 1, (name, result.output)
        assert result.output.count("\n") == 1 and result.output.startswith(f"error: {path}: ")
        assert CASES[name][1] in result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == ["unaligned_50.pkl"]


def test_dtype_states_cannot_reshape_arrays():
    """A pickled dtype state may not set flags, item size or alignment apart from numpy's, nor
    be applied to a dtype once arrays hold it (that would let them read past their data)."""
    honest = pickle.dumps(np.array(["ab"]), protocol=2)
    assert safe_pickle.loads(honest).tolist() == ["ab"]
    flags = honest.replace(b"K\x04K\x08tq", b"K\x04K\x3ftq")  # U2's flags 8 -> object's 63
    assert flags != honest
    with pytest.raises(safe_pickle.UnsafePickleError, match="unlike numpy's"):
        safe_pickle.loads(flags)
    # numpy.dtype(..., copy=False) would hand out numpy's shared dtype for BUILD to change
    shared = honest.replace(b"\x89\x88\x87", b"\x89\x89\x87")
    assert shared != honest
    with pytest.raises(safe_pickle.UnsafePickleError, match="pickles pass copy=True"):
        safe_pickle.loads(shared)


def test_misshapen_contents_are_mmsa_errors(tmp_path):
    """Valid pickles holding the wrong things (ragged lists, text where numbers belong) are one
    MMSAError naming the file and the split, never a numpy traceback."""
    rng = np.random.default_rng(0)
    data = {split: mmsa_split("mosi", split, 3, rng) for split in ("train", "valid", "test")}
    path = tmp_path / "unaligned_50.pkl"
    bad = {**data, "valid": {**data["valid"], "audio": [[[1.0]], [[1.0, 2.0]], [[1.0]]]}}
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(MMSAError, match=r"unaligned_50\.pkl: split 'valid' is not in MMSA's "
                                        r"layout \(ValueError"):
        import_mmsa(path, "mosi", tmp_path / "out")
    bad = {**data, "test": {**data["test"], "audio_lengths": np.array(["a", "b", "c"])}}
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(MMSAError, match=r"unaligned_50\.pkl: split 'test'"):
        import_mmsa(path, "mosi", tmp_path / "out")
    bad = {**data, "train": {**data["train"], "text_bert": np.full((3, 3, 9), "x")}}
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(MMSAError, match=r"train\['text_bert'\] has dtype <U1, not numbers"):
        import_mmsa(path, "mosi", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- import --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("mmsa")
    out = {}
    for corpus in FILES:
        path = make_pickle(root / corpus, corpus, seed=len(corpus))
        report = import_mmsa(path, corpus, root / "built" / corpus)
        out[corpus] = (path, report)
    return out


@pytest.mark.parametrize("corpus", list(FILES))
def test_import_validates_and_keeps_everything(imported, corpus, tmp_path):
    import datasets

    path, report = imported[corpus]
    out = report.out_dir
    assert errors(validate_built(out)) == []
    with open(path, "rb") as fh:
        source = pickle.load(fh)
    assert report.counts == {"train": 5, "validation": 3, "test": 4}
    # these files are random stand-ins: where MMSA publishes a hash, it cannot match
    published = mmsa.KNOWN_FILES[corpus, path.name].sha256 is not None
    status = "checksum differs" if published else "unverified"
    assert not report.verified and report.verification == status
    assert any(status in w for w in report.warnings), report.warnings
    info = json.loads((out / "build_info.json").read_text())
    assert info["source"]["sha256"] == report.sha256 and info["source"]["verified"] is False
    assert info["source"]["verification"] == status
    assert info["split"]["policy"] == "corpus"
    scale = mmsa.CORPORA[corpus].scale
    rows = rows_by_id(out)
    for key in ("train", "valid", "test"):
        src = source[key]
        for i, clip_id in enumerate(src["id"].tolist()):
            row = rows[clip_id]
            assert row["video_id"] == row["speaker_id"] == clip_id.split("$_$")[0]
            assert row["text"] == src["raw_text"][i]
            assert row["score"] == pytest.approx(float(src["regression_labels"][i]))
            assert row["label"] == ["negative", "neutral", "positive"].index(
                discretise(src["regression_labels"][i], scale))
            text_len = int(src["text_bert"][i, 1].sum())
            assert row["text_len"] == text_len
            np.testing.assert_array_equal(np.asarray(row["text_feat"], dtype=np.float32),
                                          src["text"][i, :text_len])
            np.testing.assert_array_equal(np.asarray(row["text_tokens"])[:, 0],
                                          src["text_bert"][i, 0, :text_len])
            for m in ("audio", "vision"):
                n = int(src[f"{m}_lengths"][i])
                assert row[f"{m}_len"] == n
                np.testing.assert_array_equal(
                    np.asarray(row[f"{m}_feat"], dtype=np.float32).reshape(n, src[m].shape[2]),
                    src[m][i, :n])
            if mmsa.CORPORA[corpus].unimodal:
                uni = {m: float(src[f"regression_labels_{k}"][i])
                       for m, k in (("text", "T"), ("audio", "A"), ("vision", "V"))}
                expected = score_relevance(src["regression_labels"][i], uni, scale).as_row()
                for m in MODALITIES:
                    assert row[f"score_{m}"] == pytest.approx(uni[m])
                    assert row[f"label_{m}"] == expected[f"label_{m}"]
                    assert row[f"relevance_{m}"] == pytest.approx(
                        1 - abs(uni[m] - float(src["regression_labels"][i])) / 2, abs=1e-6)
                assert row["deviation"] == expected["deviation"]
            else:
                assert row["deviation"] is None and row["relevance_text"] is None
                assert "score_text" not in row
            assert row["votes_text"] == [] and row["start"] is None
    # The first clip of each split has no vision track: kept, marked missing.
    assert {(e["clip_id"], e["modality"]) for e in info["missing"]} == {
        (source[k]["id"][0], "vision") for k in ("train", "valid", "test")}
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert ds["train"].features["label"].names == ["negative", "neutral", "positive"]
    assert ds["validation"].features["score"].dtype == "float32"
    row = ds["test"].with_format("numpy")[1]
    assert row["audio_feat"].shape == (row["audio_len"], info["features"]["audio"]["dim"])
    assert "negative if score < 0" in (out / "README.md").read_text() or scale == "sims"


def test_sims_relevance_rule_on_known_numbers():
    rel = score_relevance(0.6, {"text": 0.8, "audio": -0.4, "vision": 0.0}, "sims")
    assert rel.label == {"text": "positive", "audio": "negative", "vision": "neutral"}
    assert rel.relevance["text"] == pytest.approx(0.9)
    assert rel.relevance["audio"] == pytest.approx(0.5)
    assert rel.relevance["vision"] == pytest.approx(0.7)
    assert rel.deviation == 2
    assert discretise(-0.1, "sims") == "negative" and discretise(0.1, "sims") == "neutral"
    assert discretise(-1 / 3, "mosi") == "negative" and discretise(0.0, "mosi") == "neutral"
    assert discretise(2.8, "mosi") == "positive"


def test_aligned_file_keeps_the_padded_length(tmp_path):
    path = make_pickle(tmp_path, "mosei", aligned=True)
    with open(path, "rb") as fh:
        source = pickle.load(fh)
    assert "audio_lengths" not in source["train"]
    report = import_mmsa(path, "mosei", tmp_path / "out")
    assert errors(validate_built(report.out_dir)) == []
    for row in rows_by_id(report.out_dir).values():
        assert row["audio_len"] == row["vision_len"] == STEPS["text"]


def test_nonfinite_values_are_counted_and_handled(tmp_path, capsys):
    rng = np.random.default_rng(3)
    data = {split: mmsa_split("mosei", split, n, rng) for split, n in SPLIT_SIZES.items()}
    audio, lengths = data["train"]["audio"], data["train"]["audio_lengths"]
    audio[1, 0, :3] = -np.inf          # 3 values inside clip 1's audio
    audio[2, 1, 0] = np.nan            # 1 inside clip 2's
    audio[3, lengths[3]:, :] = -np.inf  # padding only: not counted, not kept
    bad_ids = {data["train"]["id"][1], data["train"]["id"][2]}
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps(data))

    report = import_mmsa(path, "mosei", tmp_path / "zero", progress=True)
    err = capsys.readouterr().err
    assert "NON-FINITE" in err and "train/audio: 4 non-finite value(s) in 2 clip(s)" in err
    assert report.nonfinite["train"]["audio"] == {"values": 4, "clips": 2}
    assert report.nonfinite["test"]["audio"] == {"values": 0, "clips": 0}
    info = json.loads((tmp_path / "zero" / "build_info.json").read_text())
    assert info["nonfinite"]["policy"] == "zero"
    assert info["nonfinite"]["counts"]["train"]["audio"]["values"] == 4
    rows = rows_by_id(tmp_path / "zero")
    row = rows[data["train"]["id"][1]]
    assert np.asarray(row["audio_feat"])[0, :3].tolist() == [0.0, 0.0, 0.0]
    assert errors(validate_built(tmp_path / "zero")) == []
    assert "replaced with 0" in (tmp_path / "zero" / "README.md").read_text()

    report = import_mmsa(path, "mosei", tmp_path / "drop", nonfinite="drop")
    assert {d["clip_id"] for d in report.dropped} == bad_ids
    assert report.counts["train"] == 3 and not bad_ids & set(rows_by_id(tmp_path / "drop"))
    assert errors(validate_built(tmp_path / "drop")) == []

    with pytest.raises(MMSAError, match=r"unaligned_50\.pkl: 4 non-finite.*train/audio"):
        import_mmsa(path, "mosei", tmp_path / "error", nonfinite="error")
    assert not (tmp_path / "error").exists()


def test_published_hashes_are_recorded_from_mmsas_readme():
    # exactly the five MMSA's README publishes (sdme.mmsa.SHA256_SOURCE), none invented
    published = {key: f.sha256 for key, f in mmsa.KNOWN_FILES.items() if f.sha256}
    assert published == {
        ("mosi", "unaligned_50.pkl"):
            "78e0f8b5ef8ff71558e7307848fc1fa929ecb078203f565ab22b9daab2e02524",
        ("mosi", "aligned_50.pkl"):
            "d3994fd25681f9c7ad6e9c6596a6fe9b4beb85ff7d478ba978b124139002e5f9",
        ("mosei", "unaligned_50.pkl"):
            "ad8b23d50557045e7d47959ce6c5b955d8d983f2979c7d9b7b9226f6dd6fec1f",
        ("mosei", "aligned_50.pkl"):
            "45eccfb748a87c80ecab9bfac29582e7b1466bf6605ff29d3b338a75120bf791",
        ("chsims", "unaligned_39.pkl"):
            "c9e20c13ec0454d98bb9c1e520e490c75146bfa2dfeeea78d84de047dbdd442f",
    }
    assert mmsa.KNOWN_FILES["chsims2", "sims_unaligned.pkl"].sha256 is None
    assert "thuiar/MMSA" in mmsa.SHA256_SOURCE


def test_sha256_is_checked_against_known_files(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from sdme.cli import main

    path = make_pickle(tmp_path, "chsims")
    digest = mmsa.verify_file(path, "chsims")[0]
    known = mmsa.KNOWN_FILES[("chsims", "unaligned_39.pkl")]
    # the real published hash: a random stand-in differs from it
    report = import_mmsa(path, "chsims", tmp_path / "differs")
    assert report.verification == "checksum differs" and not report.verified
    assert str(path) in report.warnings[0] and "checksum differs" in report.warnings[0]
    assert known.sha256 in report.warnings[0]
    assert "CHECKSUM DIFFERS" in report.summary()
    card = (tmp_path / "differs" / "README.md").read_text()
    assert "CHECKSUM DIFFERS from MMSA's published sha256" in card
    # the table patched with this file's own hash (never a real MMSA file faked)
    monkeypatch.setitem(mmsa.KNOWN_FILES, ("chsims", "unaligned_39.pkl"),
                        mmsa.KnownFile("chsims", "unaligned_39.pkl", digest, known.dims))
    result = CliRunner().invoke(main, ["import", "mmsa", "--name", "chsims", "--path",
                                       str(path), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert f"sha256 {digest} (verified against MMSA's published sha256)" in result.output
    info = json.loads((tmp_path / "data" / "built" / "chsims" / "build_info.json").read_text())
    assert info["source"]["verification"] == "verified" and info["source"]["verified"] is True
    report = import_mmsa(path, "chsims", tmp_path / "out")
    assert report.verified and report.verification == "verified" and report.warnings == []
    renamed = make_pickle(tmp_path, "chsims", name="features.pkl")
    assert "unknown file name" in mmsa.verify_file(renamed, "chsims")[2][0]
    assert mmsa.file_status("chsims", "features.pkl", digest) == "unverified"


def test_malformed_files_are_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    data = {split: mmsa_split("mosi", split, 3, rng) for split in ("train", "valid", "test")}
    del data["valid"]["regression_labels"]
    path = tmp_path / "unaligned_50.pkl"
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(MMSAError, match=r"unaligned_50\.pkl: split 'valid' has no "
                                        r"'regression_labels'"):
        import_mmsa(path, "mosi", tmp_path / "out")
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(MMSAError, match="top level is a list"):
        import_mmsa(path, "mosi", tmp_path / "out")
    with pytest.raises(MMSAError, match="unknown MMSA corpus 'iemocap'"):
        import_mmsa(path, "iemocap", tmp_path / "out")


# --- export and the round trip ------------------------------------------------------------------

@pytest.mark.parametrize("corpus", list(FILES))
def test_import_export_import_round_trip(imported, corpus, tmp_path):
    _, report = imported[corpus]
    exported = tmp_path / FILES[corpus]
    result = export_mmsa(report.out_dir, exported)
    assert result.counts == report.counts
    data = safe_pickle.load(exported)
    assert set(data) == {"train", "valid", "test"}
    train = data["train"]
    assert train["audio"].shape[0] == 5 and train["audio"].shape[1] == result.padded["audio"]
    assert train["text_bert"].shape == (5, 3, result.padded["text"])
    assert train["regression_labels"].dtype == np.float32
    if mmsa.CORPORA[corpus].unimodal:
        assert {"regression_labels_T", "classification_labels_V"} <= set(train)
    again = import_mmsa(exported, corpus, tmp_path / "again")
    first, second = tables(report.out_dir), tables(again.out_dir)
    assert sorted(first) == sorted(second)
    for split in first:
        assert first[split].schema == second[split].schema
        for name in first[split].column_names:
            assert first[split].column(name).equals(second[split].column(name)), (split, name)


def test_export_of_a_discrete_dataset_has_classification_labels(tmp_path):
    from sdme.synth import SynthConfig, synthesize

    config = SynthConfig(n=30, dims={"text": 4, "audio": 3, "vision": 2},
                         seq_len={"text": (1, 3), "audio": (2, 4), "vision": (1, 2)},
                         clips_per_video=2, videos_per_speaker=1)
    synthesize(tmp_path / "syn", config)
    result = export_mmsa(tmp_path / "syn", tmp_path / "syn.pkl")
    data = safe_pickle.load(tmp_path / "syn.pkl")
    assert "regression_labels" not in data["train"] and "text_bert" not in data["train"]
    labels = data["train"]["classification_labels"]
    assert labels.shape == (result.counts["train"],)
    assert set(np.unique(labels)) <= set(range(len(config.taxonomy)))
    assert data["test"]["classification_labels_T"].shape == (result.counts["test"],)


def test_cli_import_and_export(tmp_path):
    from click.testing import CliRunner

    from sdme.cli import main

    path = make_pickle(tmp_path, "chsims2")
    runner = CliRunner()
    result = runner.invoke(main, ["import", "mmsa", "--path", str(path), "--name", "chsims2",
                                  "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    built = tmp_path / "data" / "built" / "chsims2"
    assert "UNVERIFIED: MMSA publishes no sha256" in result.output
    assert (built / "build_info.json").is_file()
    # In a fresh process: export must not rely on `datasets` having been imported.
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-m", "sdme.cli", "export", "mmsa", "--dataset",
                           "chsims2", "--out", str(tmp_path / "back.pkl"), "--data-dir",
                           str(tmp_path / "data")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "exported 12 clips" in done.stdout
    assert safe_pickle.load(tmp_path / "back.pkl")["valid"]["audio"].shape[0] == 3

    hostile = tmp_path / "evil.pkl"
    hostile.write_bytes(pickle.dumps(_Hostile(tmp_path / "pwned")))
    result = runner.invoke(main, ["import", "mmsa", "--path", str(hostile), "--name", "mosi",
                                  "--out", str(tmp_path / "evil")])
    assert result.exit_code == 1 and "refused to load global" in result.output
    assert not (tmp_path / "pwned").exists()


def test_validation_rederives_score_labels_and_relevance(imported, tmp_path):
    import shutil

    _, report = imported["chsims"]
    broken = tmp_path / "broken"
    shutil.copytree(report.out_dir, broken)
    shard = next((broken / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    clip = table.column("clip_id")[1].as_py()
    for name, value in (("relevance_audio", 0.123), ("label", (table.column("label")[1].as_py()
                                                              + 1) % 3)):
        index = table.schema.get_field_index(name)
        values = table.column(name).to_pylist()
        values[1] = value
        table = table.set_column(index, table.schema.field(index),
                                 pa.array(values, table.schema.field(index).type))
    pq.write_table(table, shard)
    found = {(p.clip_id, p.column): p.message for p in errors(validate_built(broken))}
    assert "does not follow from score" in found[(clip, "label")]
    assert "the stored scores give" in found[(clip, "relevance_audio")]
