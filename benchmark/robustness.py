"""Robustness conditions applied to test inputs: a modality dropped, or Gaussian noise added.

``benchmark.scoring`` names the conditions of a task (``robustness_conditions``) and scores the
predictions made under them; this module realises them on the test rows the model reads:

* ``drop:<m>`` — modality m removed: the collator gives it an all-False mask (as for a clip
  that lacks it).
* ``noise:<m>:<level>`` / ``noise:all:<level>`` — every real step of m's features (of every
  modality) gets i.i.d. Gaussian noise of standard deviation ``level * s_m``, where ``s_m`` is
  the standard deviation of all of m's feature values on the *training* split
  (:func:`feature_scales`; recorded in the results file as ``protocol.noise_scale``). The noise
  generator is seeded from (seed, condition, clip index), so a run is reproducible.

The perturbation follows MultiBench's robustness protocol (Liang et al., 2021: missing
modalities and noise of increasing level applied at test time only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from benchmark.scoring import ProtocolError


def _as_array(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    array = np.asarray(value)
    if array.dtype == object:
        if array.size == 0:
            return None
        array = np.stack([np.asarray(v, dtype=np.float32) for v in array])
    return array.astype(np.float32, copy=False)


class ConditionedRows:
    """A map-style view of test rows under one robustness condition (a torch-style dataset)."""

    def __init__(self, rows: Any, condition: str, scales: Mapping[str, float], seed: int,
                 condition_index: int) -> None:
        kind, _, rest = condition.partition(":")
        if kind == "drop":
            self.drop, self.noisy, self.level = {rest}, set(), 0.0
        elif kind == "noise":
            target, _, level = rest.partition(":")
            self.drop = set()
            self.noisy = set(scales) if target == "all" else {target}
            self.level = float(level)
        else:
            raise ProtocolError(f"unknown robustness condition {condition!r}")
        self.rows, self.scales, self.seed, self.index = rows, scales, seed, condition_index

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = dict(self.rows[int(i)])
        for m in self.drop:
            row[f"{m}_feat"] = None
            row[f"{m}_len"] = 0
        if self.noisy:
            rng = np.random.default_rng([self.seed, self.index, int(i)])
            for m in sorted(self.noisy):
                feat = _as_array(row.get(f"{m}_feat"))
                if feat is None or feat.size == 0:
                    continue
                noise = rng.standard_normal(feat.shape).astype(np.float32)
                row[f"{m}_feat"] = feat + np.float32(self.level * self.scales[m]) * noise
        return row


def _feature_values(rows: Any, modalities: Sequence[str], batch_size: int
                    ) -> Iterable[tuple[str, Any]]:
    """(modality, feature value) of every row, in row order per modality."""
    if hasattr(rows, "with_format"):  # a datasets.Dataset: read in column batches
        numpy_split = rows.with_format("numpy")
        for start in range(0, len(numpy_split), batch_size):
            chunk = numpy_split[start:start + batch_size]
            for m in modalities:
                for value in chunk[f"{m}_feat"]:
                    yield m, value
        return
    for row in rows:
        for m in modalities:
            yield m, row.get(f"{m}_feat")


def feature_scales(rows: Any, modalities: Sequence[str], batch_size: int = 256
                   ) -> dict[str, float]:
    """Standard deviation of all feature values of each modality on a split (real steps only).

    Args:
        rows: the split: a ``datasets.Dataset`` or any iterable of rows (e.g.
            ``sdme.loading.ParquetRows``); the values are summed in row order either way.
        modalities: the modalities.
        batch_size: rows per column batch of a ``datasets.Dataset``.

    Raises:
        ProtocolError: a modality has no feature values at all.
    """
    sums = {m: 0.0 for m in modalities}
    squares = {m: 0.0 for m in modalities}
    counts = {m: 0 for m in modalities}
    for m, value in _feature_values(rows, modalities, batch_size):
        array = _as_array(value)
        if array is None or array.size == 0:
            continue
        x = array.astype(np.float64)
        sums[m] += float(x.sum())
        squares[m] += float((x * x).sum())
        counts[m] += x.size
    scales = {}
    for m in modalities:
        if counts[m] == 0:
            raise ProtocolError(f"modality {m!r} has no feature values in the training split")
        mean = sums[m] / counts[m]
        var = max(squares[m] / counts[m] - mean * mean, 0.0)
        scales[m] = float(np.sqrt(var)) or 1.0
    return scales


__all__ = ["ConditionedRows", "feature_scales"]
