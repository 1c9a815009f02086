"""``sdme build`` on a Dask cluster: a real ``distributed.LocalCluster`` on loopback, two worker
processes, the cheap test-double extractors of ``builddoubles`` (so the time goes to the cluster,
not to models). The cluster build must write the same parquet bytes as a local build, keep the
drop report and the per-clip cache, and survive one of its workers being SIGKILLed mid-clip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from builddoubles import (
    DOUBLES,
    KILL_WORKER_ENV,
    MARKER_NO_AUDIO,
    MARKER_NO_FACE,
    MARKER_UNDECODABLE,
    synthetic_clips,
    tiny_corpus,
    with_text,
)
from test_build import assert_same_dataset

from sdme.build import BuildError, build

distributed = pytest.importorskip("distributed", reason="the cluster extra is not installed")


def corpus(root: Path) -> Path:
    """24 clips of 6 speakers, one of each bad kind among them."""
    clips = with_text(synthetic_clips(), "s1c1", "  ")
    return tiny_corpus(root, {"s0c0": MARKER_NO_AUDIO, "s2c2": MARKER_NO_FACE,
                              "s3c3": MARKER_UNDECODABLE}, clips)


def shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "data").glob("*.parquet"))}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two single-threaded worker processes; the kill switch folder is in their environment."""
    kill = tmp_path_factory.mktemp("kill")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KILL_WORKER_ENV, str(kill))  # inherited by the worker processes only:
        local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                         host="127.0.0.1", dashboard_address=None)
    with local, distributed.Client(local) as client:  # ... gone here before any build runs
        yield client, kill


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    raw = corpus(root / "raw")
    out = root / "out" / "tiny"
    return raw, out, build(raw, out, progress=False, **DOUBLES)


@pytest.mark.slow
def test_cluster_build_equals_local_build_and_resumes(cluster, reference, tmp_path):
    client, _ = cluster
    raw, local_out, local = reference
    out = tmp_path / "out" / "tiny"
    report = build(raw, out, progress=False, executor=client.get_executor(pure=False), **DOUBLES)
    assert shards(out) == shards(local_out)  # the same parquet, byte for byte
    assert_same_dataset(out, local_out)
    assert report.events == local.events and report.counts == local.counts
    assert report.extracted == local.extracted == 24 * 3 - 3 - 1  # dropped clips stop early
    info = json.loads((out / "build_info.json").read_text())
    assert info["build"]["executor"] == "dask" and info["build"]["device"] == "cpu"
    assert info["build"]["scheduler"] == client.scheduler.address
    assert info["timings"]["load_models_wall"] >= 0

    # Resume: the clips whose cache entries are gone, and only they, are extracted again.
    cache = tmp_path / "out" / "tiny.cache"
    gone = sorted(cache.glob("vision-*/*.npz"))[:3]
    for path in gone:
        path.unlink()
    again = build(raw, out, progress=False, executor=client.get_executor(pure=False), **DOUBLES)
    assert again.extracted == len(gone) and again.reused == local.extracted - len(gone)
    assert shards(out) == shards(local_out)


@pytest.mark.slow
def test_worker_killed_mid_build_still_gives_the_same_dataset(cluster, reference, tmp_path):
    """Through the CLI, by scheduler address: a worker process SIGKILLs itself in the middle of
    a clip (its text and audio cached, vision not); Dask reschedules its in-flight clips and the
    build ends in the same dataset."""
    from click.testing import CliRunner

    from sdme.cli import main

    client, kill = cluster
    raw, local_out, _ = reference
    (kill / "armed").touch()
    out = tmp_path / "tiny"
    doubles = ["--text-encoder", "double", "--audio-features", "double", "--vision-features",
               "double", "--quiet"]
    result = CliRunner().invoke(main, ["build", str(raw), "--out", str(out), *doubles,
                                       "--scheduler", client.scheduler.address])
    assert result.exit_code == 0, result.output
    assert (kill / "fired").is_file(), "no worker was killed: the test did not test anything"
    assert int((kill / "fired").read_text()) != os.getpid()
    assert shards(out) == shards(local_out)
    assert_same_dataset(out, local_out)
    info = json.loads((out / "build_info.json").read_text())
    assert info["build"]["executor"] == "dask" and info["build"]["dask_workers"] >= 1


def test_scheduler_options_are_checked_before_anything_runs(tmp_path):
    raw = tiny_corpus(tmp_path / "raw")
    with pytest.raises(BuildError, match="give one of"):
        build(raw, tmp_path / "a", progress=False, workers=2, scheduler="local:2", **DOUBLES)
    with pytest.raises(BuildError, match=r"expected local:N with N >= 1"):
        build(raw, tmp_path / "b", progress=False, scheduler="local:none", **DOUBLES)


def test_a_worker_that_sees_another_corpus_stops_the_build(tmp_path):
    """Every task first checks that the worker reads the corpus the driver validated."""
    from sdme.features import create_extractor
    from sdme.parallel import corpus_digest, extract_task
    from sdme.schema import read_annotations

    raw = tiny_corpus(tmp_path / "raw")
    clip = read_annotations(raw / "annotations.csv")[0]
    extractors = {m: create_extractor(m, "double") for m in ("text", "audio", "vision")}
    cache = {m: tmp_path / "cache" / m for m in extractors}
    with pytest.raises(BuildError, match="is not the manifest `sdme build` validated"):
        extract_task(extractors, "cpu", None, raw, "0" * 64, clip, cache, "key")
    with pytest.raises(BuildError, match=r"cannot read the raw corpus at .*elsewhere.*shared"):
        extract_task(extractors, "cpu", None, tmp_path / "elsewhere", corpus_digest(raw), clip,
                     cache, "key")
    assert not (tmp_path / "cache").exists()  # nothing was extracted or cached
    result = extract_task(extractors, "cpu", None, raw, corpus_digest(raw), clip, cache, "key")
    assert result.lengths["text"] > 0 and result.device == "cpu" and result.load is not None


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the module's cluster has it
def test_a_scheduler_without_workers_is_a_clear_error(capsys):
    from sdme.parallel import dask_executor

    with distributed.LocalCluster(n_workers=0, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as empty:
        with pytest.raises(BuildError, match=r"no Dask worker joined .* within 1 s; start "
                                             r"some with `dask worker tcp://127\.0\.0\.1"):
            with dask_executor(empty.scheduler_address, worker_timeout=1):
                pass
    assert "waiting up to 1 s for a Dask worker" in capsys.readouterr().err
