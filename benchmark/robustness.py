"""Robustness conditions applied to test batches: a modality dropped, or Gaussian noise added.

``benchmark.scoring`` names the conditions of a task (``robustness_conditions``) and scores the
predictions made under them; this module realises them on the padded batches the model reads
(:class:`BatchConditions`, the ``variants`` of ``baselines.train.predict_variants``), so that
the test split is read and collated once per seed and every condition is made from the same
batch:

* ``drop:<m>`` — modality m removed: its features become one zero step with an all-False mask,
  which is exactly what ``baselines.data.collate`` gives a batch in which no clip has m.
* ``noise:<m>:<level>`` / ``noise:all:<level>`` — every real step of m's features (of every
  modality) gets Gaussian noise of standard deviation ``level * s_m``, where ``s_m`` is the
  standard deviation of all of m's feature values on the *training* split (:func:`noise_scales`
  of the moments recorded in the dataset's provenance, ``sdme.loading.feature_stats``; written
  in the results file as ``protocol.noise_scale``). Padded steps stay zero.

How the noise is drawn (metric spec v2, ``benchmark.metrics.METRIC_SPEC_VERSION``): each
modality has one standard-normal stream per seed (a CPU ``torch.Generator`` seeded from
(:data:`NOISE_STREAM`, seed, the modality's index in ``sdme.schema.MODALITIES``) through
``numpy.random.SeedSequence``; float32), consumed in split order, one ``[steps, dim]`` draw per
clip into the batch's padded tensor; a clip's noise thus depends on the seed and its place in
the split, not on the batch size or the device. The draw ``z_m`` of a batch is shared by every
noise condition of that batch (common random numbers): ``noise:m:x`` adds ``x * s_m * z_m`` to
m, ``noise:all:x`` adds it to every modality. Each condition is, as before, i.i.d. Gaussian
noise of the stated scale on every real step; the points of a curve now differ by their level
only, not by their draw. (v1 drew the noise per clip and condition, with a generator per
row.)

The perturbation follows MultiBench's robustness protocol (Liang et al., 2021: missing
modalities and noise of increasing level applied at test time only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.scoring import ProtocolError
from sdme.schema import MODALITIES

if TYPE_CHECKING:
    from baselines.models.base import Batch
    from sdme.built import FeatureStats

#: First entry of the noise generators' seeds (keeps their streams apart from other uses of
#: the protocol seed).
NOISE_STREAM = 0x6E6F697365


def parse_condition(condition: str, modalities: Sequence[str]) -> tuple[str, list[str], float]:
    """``(kind, modalities it touches, level)`` of a condition name.

    Raises:
        ProtocolError: an unknown kind, modality or level.
    """
    kind, _, rest = condition.partition(":")
    if kind == "drop" and rest in modalities:
        return kind, [rest], 0.0
    if kind == "noise":
        target, _, level = rest.partition(":")
        try:
            value = float(level)
        except ValueError:
            value = float("nan")
        if (target == "all" or target in modalities) and np.isfinite(value) and value > 0:
            return kind, list(modalities) if target == "all" else [target], value
    raise ProtocolError(f"unknown robustness condition {condition!r}")


class BatchConditions:
    """Every robustness condition of a run, applied to each batch (module docstring).

    Called with a batch, yields ``("", batch)`` (the clean prediction) and then
    ``(condition, perturbed batch)`` for each condition, in order: the ``variants`` of
    ``baselines.train.predict_variants``. Make one per seed, for one pass over the test split.

    Args:
        conditions: condition names (``benchmark.scoring.robustness_conditions``).
        scales: ``s_m`` per modality (:func:`noise_scales`).
        seed: the protocol seed.
        modalities: the task's modalities.

    Raises:
        ProtocolError: an unknown condition, or a noisy modality without a scale.
    """

    def __init__(self, conditions: Sequence[str], scales: Mapping[str, float], seed: int,
                 modalities: Sequence[str]) -> None:
        self.conditions = [(name, *parse_condition(name, modalities)) for name in conditions]
        noisy = sorted({m for _, kind, targets, _ in self.conditions if kind == "noise"
                        for m in targets}, key=_modality_index)
        lacking = [m for m in noisy if m not in scales]
        if lacking:
            raise ProtocolError(f"no noise scale for modality(ies) {lacking}")
        self.scales = {m: float(scales[m]) for m in noisy}
        self.streams = {m: _generator(seed, m) for m in noisy}

    def noise(self, batch: Batch) -> dict[str, Any]:
        """``z_m`` per noisy modality of the batch: ``[B, T, dim]`` standard-normal draws at the
        real steps, zero at the padded ones (draws the batch's share of each stream, row by
        row into the padded array: the real steps of a row are its first ones).

        Raises:
            ProtocolError: a mask whose real steps are not the first ones of its row.
        """
        import torch

        from baselines.data import pooled_empty_like

        out = {}
        for m, stream in self.streams.items():
            if m not in batch.features:
                continue
            feat, mask = batch.features[m], batch.masks[m].bool()
            lengths = mask.sum(dim=1)
            steps = torch.arange(mask.shape[1], device=mask.device)
            if not torch.equal(mask, steps.unsqueeze(0) < lengths.unsqueeze(1)):
                raise ProtocolError(f"modality {m!r}: the batch's masks are not left-aligned")
            z = pooled_empty_like(feat, dtype=torch.float32, device="cpu")
            for row, length in enumerate(lengths.tolist()):
                if length:
                    z[row, :length].normal_(generator=stream)
                z[row, length:] = 0.0
            out[m] = z.to(device=feat.device, dtype=feat.dtype)
        return out

    def __call__(self, batch: Batch) -> Iterator[tuple[str, Batch]]:
        import torch

        from baselines.data import pooled_empty_like

        yield "", batch
        noise = self.noise(batch)
        noisy: dict[tuple[str, float], Any] = {}  # (m, level) -> features; `all` reuses them
        for name, kind, targets, level in self.conditions:
            features, masks = dict(batch.features), dict(batch.masks)
            for m in targets:
                if m not in features:
                    continue
                if kind == "drop":
                    feat = features[m]
                    features[m] = feat.new_zeros(feat.shape[0], 1, feat.shape[-1])
                    masks[m] = torch.zeros(feat.shape[0], 1, dtype=torch.bool,
                                           device=feat.device)
                else:
                    if (m, level) not in noisy:
                        noisy[m, level] = torch.add(
                            features[m], noise[m], alpha=level * self.scales[m],
                            out=pooled_empty_like(features[m]))
                    features[m] = noisy[m, level]
            yield name, dataclasses.replace(batch, features=features, masks=masks)


def noise_scales(stats: Mapping[str, FeatureStats], modalities: Sequence[str]
                 ) -> dict[str, float]:
    """``s_m``: the standard deviation of all of m's feature values on the training split
    (real steps only), from its recorded moments; 1.0 where it is 0.

    Raises:
        ProtocolError: a modality has no feature values at all.
    """
    scales = {}
    for m in modalities:
        if m not in stats or stats[m].values == 0:
            raise ProtocolError(f"modality {m!r} has no feature values in the training split")
        scales[m] = float(stats[m].std) or 1.0
    return scales


def _generator(seed: int, modality: str) -> Any:
    """The CPU ``torch.Generator`` of one modality's noise stream for a protocol seed."""
    import torch

    state = np.random.SeedSequence([NOISE_STREAM, int(seed), _modality_index(modality)])
    return torch.Generator().manual_seed(int(state.generate_state(1, np.uint64)[0]))


def _modality_index(modality: str) -> int:
    return MODALITIES.index(modality) if modality in MODALITIES else len(MODALITIES)


__all__ = ["NOISE_STREAM", "BatchConditions", "noise_scales", "parse_condition"]
