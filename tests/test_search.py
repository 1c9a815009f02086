"""Search spaces (``baselines.search``): every registered model's space resolves and builds at
its corners; declarations are checked.

Parametrized over ``baselines.list_models()``: a new model's space is checked with no test code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

import baselines
from baselines.search import (
    SHARED_SPACE,
    Choice,
    FloatRange,
    IntRange,
    SpaceSection,
    describe_space,
    search_space,
)
from baselines.train import make_config
from sdme.config import ConfigError

DIMS = {"text": 6, "audio": 5, "vision": 4}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("corner", [0, -1])
@pytest.mark.parametrize("name", baselines.list_models())
def test_every_model_builds_at_the_corners_of_its_space(name, corner):
    space = search_space(name)
    assert set(SHARED_SPACE["train"]) <= set(space["train"])  # the trainer's, for every model
    spec = baselines.MODELS.get(name)
    assert not set(spec.fixed) & set(space["model"]), "a variant's fixed option is searched"
    values = {section: {k: d.values()[corner] for k, d in space[section].items()}
              for section in space}
    make_config(values["train"])
    model = baselines.create_model(name, input_dims=DIMS, num_classes=3, **values["model"])
    for key, value in values["model"].items():
        assert getattr(model.config, key) == value
    assert torch.isfinite(torch.tensor([p.sum().item() for p in model.parameters()])).all()


def test_models_declare_their_own_ranges():
    assert search_space("lmf")["model"]["rank"] == IntRange(2, 8)
    assert "sim_weight" in search_space("misa")["model"]
    assert "dropout" not in search_space("mult")["model"]  # MulT maps the unused option to None
    assert "modality" not in search_space("text_only")["model"]
    described = describe_space(search_space("late_fusion"))
    assert described["train"]["lr"] == {"type": "float", "low": 1e-4, "high": 3e-3, "log": True}
    assert described["model"]["hidden"] == {"type": "choice", "options": [32, 64, 128]}


def test_dimensions_check_themselves():
    with pytest.raises(ValueError, match="low < high"):
        FloatRange(1.0, 1.0)
    with pytest.raises(ValueError, match="log=True"):
        FloatRange(0.0, 1.0, log=True)
    with pytest.raises(ValueError, match="low < high"):
        IntRange(3, 2)
    with pytest.raises(ValueError, match="two or more distinct"):
        Choice((1,))
    with pytest.raises(ValueError, match="numbers, strings or booleans"):
        Choice(([1], [2]))
    assert IntRange(2, 9, step=3).values() == (2, 8)


def test_a_space_naming_an_unknown_option_is_refused():
    from baselines.models.late_fusion import LateFusion, LateFusionConfig

    @dataclass
    class BadConfig(LateFusionConfig):
        search_space: ClassVar[SpaceSection] = {"widht": Choice((8, 16))}

    class Bad(LateFusion):
        config_class = BadConfig

    @dataclass
    class OddConfig(LateFusionConfig):
        search_space: ClassVar[SpaceSection] = {"hidden": (8, 16)}

    class Odd(LateFusion):
        config_class = OddConfig

    try:
        baselines.register_model("test-bad-space", Bad)
        baselines.register_model("test-odd-space", Odd)
        with pytest.raises(ConfigError, match="'widht' is not an option of BadConfig"):
            search_space("test-bad-space")
        with pytest.raises(ConfigError, match="not a FloatRange, IntRange or Choice"):
            search_space("test-odd-space")
    finally:
        baselines.MODELS.unregister("test-bad-space")
        baselines.MODELS.unregister("test-odd-space")
