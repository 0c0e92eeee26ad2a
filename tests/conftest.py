"""Shared test settings: the tolerance table and paths."""

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

#: Tolerances of oracle comparisons, per dtype, in one place. float64 checks
#: compare hand-written maths against autograd or torch.optim; float32 checks
#: compare two float32 computations of the same quantity.
TOLERANCES = {
    torch.float64: {"rtol": 1e-10, "atol": 1e-12},
    torch.float32: {"rtol": 1e-5, "atol": 1e-6},
}


@pytest.fixture
def root() -> Path:
    """The repository root."""
    return ROOT
