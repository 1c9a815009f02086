"""Fixtures shared across test modules."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture()
def one_torch_thread():
    """Tiny tensors: extra threads only add overhead on a 2-core CI machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
