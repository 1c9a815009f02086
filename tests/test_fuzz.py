"""Property-based fuzzing (Hypothesis) of every parser that reads user files (issue #12):

- raw corpora: ``sdme.json`` and ``annotations.csv`` through ``sdme.validate.validate_raw`` (what
  ``sdme validate`` and ``sdme build`` run), ``CorpusManifest.load`` and ``read_annotations``;
- benchmark results and predictions: ``load_results``, ``read_predictions`` and
  ``check_submission`` up to the dataset it needs;
- MMSA feature pickles: ``sdme.safe_pickle`` and ``sdme.mmsa.read_split``, in a child process
  whose address space is capped, with a check of the memory each input used.

The inputs are valid files mutated where mistakes and attacks happen: a JSON value replaced by
any other (including valid JSON nested 5,000 deep or an integer of 5,000 digits), text edited
with nasty fragments, CSV fields replaced, pickle opcodes inserted, removed or flipped. Each test
also runs, every time, the issue's cases as explicit examples. Properties: only the documented
error types come out (no traceback), memory stays within the documented budget, and nothing on
disk changes (each parser only reads). The budget is fixed — ``derandomize=True`` (the same
examples every run), a few dozen examples each, no deadline — so the file runs in about 20 s on
2 CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
FUZZ = settings(max_examples=50, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

#: Fragments that break parsers: brackets (nesting), long digit runs, quotes and escapes,
#: separators, NUL and non-ASCII, non-finite numbers, path tricks, a CSV field over csv's limit.
NASTY = ["[" * 70, "[" * 5000, '{"a":' * 5000, "]", "}", '"', "\\", "9" * 50, "9" * 4500, "-",
         ",", ";", "\x00", "é\u2028", "\n", "\r", "NaN", "Infinity", "-1e999", "1e309", "nan",
         "inf", "-0.5", "", "../..", "/etc/passwd", "clips\\x.mp4", "'", "null", "0x10",
         "\ufeff", "x" * 140_000]
#: Valid JSON that breaks unbounded parsers, put in place of a value (:func:`apply_json`).
RAW_VALUES = {"\x00deep-array": "[" * 5000 + "]" * 5000,
              "\x00deep-object": '{"a":' * 5000 + "1" + "}" * 5000,
              "\x00huge-integer": "9" * 5000}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
    | st.sampled_from(NASTY[:-1]) | st.sampled_from(sorted(RAW_VALUES)),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)
#: (where in the text as a fraction, characters cut there, fragment inserted, times).
text_edits = st.lists(st.tuples(st.floats(0, 1), st.integers(0, 8),
                                st.sampled_from(NASTY) | st.text(max_size=6),
                                st.integers(1, 3)), min_size=1, max_size=3)
#: ("set", path, value) | ("del", path) | ("text", edits); a path is an index into the
#: document's paths (modulo their number) or an explicit tuple of keys.
json_mutations = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**6), json_values),
    st.tuples(st.just("del"), st.integers(0, 10**6)),
    st.tuples(st.just("text"), text_edits))


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every path under ``root`` with its mode, mtime and content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        digest = (hashlib.sha256(path.read_bytes()).hexdigest()
                  if path.is_file() and not path.is_symlink() else "")
        found[str(path.relative_to(root))] = (stat.st_mode, stat.st_mtime_ns, digest)
    return found


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += _paths(item, (*prefix, i))
    return out


def apply_text(text: str, edits: list[tuple[float, int, str, int]]) -> str:
    for where, cut, insert, times in edits:
        at = int(where * len(text))
        text = text[:at] + insert * times + text[at + cut:]
    return text


def apply_json(document: Any, mutation: tuple) -> str:
    """The document as JSON text after ``mutation`` (see :data:`json_mutations`)."""
    if mutation[0] == "text":
        return apply_text(json.dumps(document), mutation[1])
    document = json.loads(json.dumps(document))
    path = mutation[1]
    if isinstance(path, int):
        paths = _paths(document)
        path = paths[path % len(paths)]
    if not path:
        document = mutation[2] if mutation[0] == "set" else None
    else:
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        if mutation[0] == "del" and isinstance(parent, dict):
            del parent[path[-1]]
        elif mutation[0] == "set":
            parent[path[-1]] = mutation[2]
    text = json.dumps(document, allow_nan=True)
    for marker, raw in RAW_VALUES.items():
        text = text.replace(json.dumps(marker), raw)
    return text


# --- raw corpora -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def raw_corpus(tmp_path_factory) -> Path:
    from builddoubles import tiny_corpus

    return tiny_corpus(tmp_path_factory.mktemp("fuzz-raw") / "raw")


#: (line index, field index, new field value or None, text edits of the line).
csv_mutations = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 20),
                                   st.none() | st.sampled_from(NASTY) | st.text(max_size=10),
                                   text_edits | st.just([])), min_size=1, max_size=3)


def apply_csv(text: str, mutations: list[tuple]) -> str:
    lines = text.splitlines(keepends=True)
    for line, field, value, edits in mutations:
        i = line % len(lines)
        if value is not None:
            fields = lines[i].rstrip("\n").split(",")
            fields[field % len(fields)] = value
            lines[i] = ",".join(fields) + "\n"
        lines[i] = apply_text(lines[i], edits)
    return "".join(lines)


@FUZZ
@given(manifest=st.none() | json_mutations, annotations=st.none() | csv_mutations)
@example(manifest=("set", ("annotation_protocol",), "majority of five"), annotations=None)
@example(manifest=("set", ("annotation_protocol",), ["five"]), annotations=None)
@example(manifest=("set", ("files", 0, "path"), "../../etc/passwd"), annotations=None)
@example(manifest=("set", ("files", 0, "path"), "/etc/hostname"), annotations=None)
@example(manifest=("set", ("taxonomy",), "\x00deep-array"), annotations=None)
@example(manifest=("set", ("files", 0, "size"), "\x00huge-integer"), annotations=None)
@example(manifest=None, annotations=[(1, 3, "nan", []), (2, 4, "inf", []), (3, 3, "-1", [])])
@example(manifest=None, annotations=[(1, 5, " ", []), (2, 5, "x" * 140_000, [])])
def test_fuzz_raw_corpus(raw_corpus, manifest, annotations):
    from sdme.schema import (
        ANNOTATIONS_NAME,
        MANIFEST_NAME,
        CorpusManifest,
        FormatError,
        read_annotations,
    )
    from sdme.validate import validate_raw

    work = raw_corpus.parent / "work"
    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw"
    shutil.copytree(raw_corpus, raw)
    if manifest is not None:
        document = json.loads((raw / MANIFEST_NAME).read_text(encoding="utf-8"))
        (raw / MANIFEST_NAME).write_text(apply_json(document, manifest), encoding="utf-8")
    if annotations is not None:
        text = (raw / ANNOTATIONS_NAME).read_text(encoding="utf-8")
        (raw / ANNOTATIONS_NAME).write_text(apply_csv(text, annotations), encoding="utf-8")
    before = snapshot(work)

    report = validate_raw(raw, check_media=False)  # never raises: every problem is a line
    for problem in report.problems:
        assert "\n" not in str(problem) and problem.severity in ("error", "warning")
    for reader in (lambda: CorpusManifest.load(raw),
                   lambda: read_annotations(raw / ANNOTATIONS_NAME)):
        try:
            reader()
        except FormatError as exc:
            assert str(exc).startswith(str(raw))
    assert snapshot(work) == before


# --- results and predictions -------------------------------------------------------------------

@pytest.fixture(scope="module")
def results_run(tmp_path_factory):
    from benchmarkdata import toy_results

    return toy_results(tmp_path_factory.mktemp("fuzz-results") / "results")


@FUZZ
@given(which=st.sampled_from(["results", "predictions"]), line=st.integers(0, 10**6),
       mutation=json_mutations)
@example(which="results", line=0, mutation=("set", ("model", "config"), "\x00deep-array"))
@example(which="results", line=0, mutation=("set", ("seeds", 0), "\x00huge-integer"))
@example(which="results", line=0, mutation=("text", [(0.0, 0, "[" * 5000, 1)]))
@example(which="predictions", line=1, mutation=("set", ("conditions",), "\x00deep-object"))
@example(which="predictions", line=2, mutation=("set", ("seed",), "\x00huge-integer"))
def test_fuzz_results_and_predictions(results_run, which, line, mutation):
    from benchmark.results import ResultsError, load_results, read_predictions
    from benchmark.submit import SubmissionError, check_submission

    work = results_run.results_path.parent.parent / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    document = json.loads(results_run.results_path.read_text())
    lines = results_run.predictions_path.read_text().splitlines()
    if which == "predictions":
        i = line % len(lines)
        lines[i] = apply_json(json.loads(lines[i]), mutation).replace("\n", " ")
        blob = ("\n".join(lines) + "\n").encode()
        document["predictions"]["sha256"] = hashlib.sha256(blob).hexdigest()
        document["predictions"]["rows"] = len(lines)
        text = json.dumps(document)
    else:
        blob = results_run.predictions_path.read_bytes()
        text = apply_json(document, mutation)
    results_file = work / "r.json"
    results_file.write_text(text, encoding="utf-8")
    (work / document["predictions"]["path"]).write_bytes(blob)
    data_dir = work / "data"
    data_dir.mkdir()
    before = snapshot(work)

    try:
        load_results(results_file)
    except ResultsError as exc:
        assert str(exc).startswith(str(results_file)) and "\n" not in str(exc)
    try:
        read_predictions(work / document["predictions"]["path"], discrete=True)
    except ResultsError as exc:
        assert "\n" not in str(exc)
    try:  # every check up to the dataset (absent here: FileNotFoundError says how to build it)
        check_submission(results_file, data_dir=data_dir)
    except (SubmissionError, FileNotFoundError) as exc:
        assert str(exc)
    assert snapshot(work) == before


# --- MMSA feature pickles (in a child process with an address-space cap) --------------------

_PICKLE_FUZZ = r'''
import pickle, resource, sys, tracemalloc
from pathlib import Path
import numpy as np
from hypothesis import example, given, settings, strategies as st
sys.path.insert(0, sys.argv[3])
from hostile_pickles import CASES
from sdme import safe_pickle
from sdme.mmsa import MMSAError, count_nonfinite, read_split

status = Path("/proc/self/status").read_text().splitlines()
vm = int(next(line for line in status if line.startswith("VmSize")).split()[1]) * 1024
hard = resource.getrlimit(resource.RLIMIT_AS)[1]
resource.setrlimit(resource.RLIMIT_AS, (vm + 768 * 2**20, hard))
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))  # a regression that hangs dies here
folder = Path(sys.argv[1])
rng = np.random.default_rng(0)

def split(n):
    return {"id": np.array([f"v{i // 2}$_${i % 2}" for i in range(n)]),
            "raw_text": np.array([f"words {i}" for i in range(n)], dtype=object),
            "text": rng.standard_normal((n, 3, 4)).astype(np.float32),
            "audio": rng.standard_normal((n, 5, 2)).astype(np.float32),
            "vision": rng.standard_normal((n, 2, 3)).astype(np.float32),
            "audio_lengths": np.array([5, 2][:n]), "vision_lengths": np.array([0, 2][:n]),
            "text_bert": np.ones((n, 3, 3), dtype=np.float32),
            "regression_labels": np.array([0.5, -1.0][:n], dtype=np.float32),
            "regression_labels_T": np.array([0.2, 0.4][:n], dtype=np.float32)}

honest = {"train": split(2), "valid": split(1), "test": split(1)}
SEEDS = [pickle.dumps(honest, protocol=p) for p in (2, 4, 5)] + [b for b, _ in CASES.values()]
OPCODES = [bytes([c]) for c in
           b"()]}.012abcdeghjlpqrstuJKNRXC\x85\x86\x87\x88\x89\x8a\x8c\x8e\x93\x94\x95\x96"]
FRAGMENTS = OPCODES + [b"\x8e" + b"\xff" * 8, b"\x8a\x08" + b"\xff" * 8, b"h\x00" * 50,
                       b"]" * 200, b"c__builtin__\nbytearray\n", b"cnumpy\nndarray\n",
                       b"c_codecs\nencode\n", b"cos\nsystem\n", b"J\xff\xff\xff\x7f"]
edits = st.lists(st.tuples(st.sampled_from(["insert", "delete", "flip", "truncate"]),
                           st.floats(0, 1), st.integers(0, len(FRAGMENTS) - 1),
                           st.integers(1, 255)), max_size=4)

@settings(max_examples=int(sys.argv[2]), derandomize=True, deadline=None, database=None)
@given(seed=st.integers(0, 2), edits=edits)
@example(seed=0, edits=[])
def check(seed, edits):
    blob = bytearray(SEEDS[seed])
    for op, where, fragment, n in edits:
        at = int(where * len(blob))
        if op == "insert":
            blob[at:at] = FRAGMENTS[fragment]
        elif op == "delete":
            del blob[at:at + n % 17]
        elif op == "flip" and at < len(blob):
            blob[at] ^= n
        elif op == "truncate":
            del blob[at:]
    path = folder / "unaligned_50.pkl"
    path.write_bytes(bytes(blob))
    tracemalloc.start()
    try:
        loaded = safe_pickle.load(path)
        for key in ("train", "valid", "test"):
            if isinstance(loaded, dict) and key in loaded:
                count_nonfinite(read_split(loaded, key, path))
    except (pickle.UnpicklingError, MMSAError) as exc:  # UnsafePickleError is an UnpicklingError
        assert str(exc).startswith(str(path)) and "\n" not in str(exc), str(exc)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    budget = safe_pickle.MEMORY_FACTOR * len(blob) + safe_pickle.MEMORY_MARGIN
    assert peak < budget, (peak, budget)
    assert sorted(p.name for p in folder.iterdir()) == ["unaligned_50.pkl"]

for case in range(3, len(SEEDS)):  # the issue's hostile files, whole, every run
    check.hypothesis.inner_test(case, [])
check()
print("ok")
'''


def test_fuzz_mmsa_pickles(tmp_path):
    """Mutated honest MMSA pickles (protocols 2, 4, 5) and the issue's hostile ones load or are
    refused with one line naming the file; none exceeds the memory budget; a regression dies at
    the child's caps (address space, CPU time), not here."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", _PICKLE_FUZZ, str(tmp_path), "150",
                           str(REPO / "tests")], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-4000:]
