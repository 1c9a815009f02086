"""The contract every registered feature extractor keeps, checked for each one on a real clip of
the bundled sample corpus (adding an extractor adds no test code): its registration's fixture
gives offline parameters (tiny local weights where it needs weights), and the features are
``[T, dim]`` float32, finite, ``dim == info.dim``, with provenance a build can record. An
extractor that needs a module that is not installed is skipped, saying which."""

from __future__ import annotations

import importlib.util
import json
import pickle

import numpy as np
import pytest

from sdme.built import ExtractorRecord
from sdme.features import EXTRACTORS, create_extractor, extractor_entries
from sdme.schema import ANNOTATIONS_NAME, read_annotations
from sdme.sources.sample import sample_dir

EXTRACTOR_KEYS = [(e.meta["modality"], e.name) for e in extractor_entries()]


@pytest.fixture(scope="module")
def sample_clip():
    raw = sample_dir()
    return raw, read_annotations(raw / ANNOTATIONS_NAME)[0]


@pytest.mark.parametrize(("modality", "name"), EXTRACTOR_KEYS,
                         ids=[f"{m}/{n}" for m, n in EXTRACTOR_KEYS])
def test_extractor_contract(modality, name, sample_clip, tmp_path, one_torch_thread):
    entry = EXTRACTORS[modality].entry(name)
    missing = [m for m in entry.meta["requires"] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{modality}/{name} needs {', '.join(missing)}, which is not installed")
    raw, clip = sample_clip
    params = entry.meta["fixture"](tmp_path)
    extractor = create_extractor(modality, name, **params)

    feats = extractor.extract(raw, clip)
    info = extractor.info
    assert isinstance(feats, np.ndarray) and feats.dtype == np.float32
    assert feats.ndim == 2 and feats.shape[0] >= 1 and feats.shape[1] == info.dim
    assert np.isfinite(feats).all()

    assert (info.name, info.modality) == (name, modality) and info.version
    record = ExtractorRecord(**info.to_dict(), fingerprint=info.fingerprint())
    assert json.loads(json.dumps(record.params)) == info.params  # JSON provenance
    again = create_extractor(modality, name, **params)
    assert again.info.fingerprint() == info.fingerprint()  # a stable cache key
    clone = pickle.loads(pickle.dumps(extractor))  # worker processes get a copy
    assert clone.info == info
