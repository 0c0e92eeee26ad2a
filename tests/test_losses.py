"""Losses on logits: stable values and exact gradients."""

import pytest
import torch

from conftest import TOLERANCES
from parity_learning.losses import accuracy, bce_with_logits, get_loss, hinge

F64 = TOLERANCES[torch.float64]


def logits_and_labels(scale, dtype=torch.float64):
    z = torch.tensor([-1.0, -0.3, 0.0, 0.4, 2.0, 1.0, -1.0], dtype=dtype) * scale
    y = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, 1.0, -1.0], dtype=dtype)
    return z, y


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_bce_matches_torch_and_autograd(scale):
    z, y = logits_and_labels(scale)
    z.requires_grad_(True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z, (y + 1) / 2)
    (expected_grad,) = torch.autograd.grad(expected, z)
    loss, dz = bce_with_logits(z.detach(), y)
    assert torch.isfinite(loss) and torch.isfinite(dz).all()
    torch.testing.assert_close(loss, expected.detach(), **F64)
    torch.testing.assert_close(dz, expected_grad, **F64)


@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_hinge_matches_autograd(scale):
    z, y = logits_and_labels(scale)
    z.requires_grad_(True)
    expected = torch.clamp(1 - y * z, min=0).mean()
    (expected_grad,) = torch.autograd.grad(expected, z)
    loss, dz = hinge(z.detach(), y)
    torch.testing.assert_close(loss, expected.detach(), **F64)
    torch.testing.assert_close(dz, expected_grad, **F64)


def test_bce_float32_stays_finite_where_naive_form_fails():
    z = torch.tensor([-1e4, 1e4, -100.0, 100.0])
    y = torch.tensor([1.0, -1.0, 1.0, -1.0])
    loss, dz = bce_with_logits(z, y)
    assert torch.isfinite(loss)
    # Each wrong-sided logit of size s costs about s.
    torch.testing.assert_close(loss, torch.tensor((1e4 + 1e4 + 100 + 100) / 4))
    naive = -((y + 1) / 2 * torch.log(torch.sigmoid(z))).mean()
    assert not torch.isfinite(naive)


def test_accuracy_counts_sign_agreement():
    z = torch.tensor([[0.5, -0.5, 0.0], [-1.0, 1.0, -2.0]])
    y = torch.tensor([1.0, 1.0, 1.0])
    torch.testing.assert_close(accuracy(z, y), torch.tensor([2 / 3, 1 / 3]))


def test_unknown_loss():
    with pytest.raises(ValueError, match="loss must be one of \\['bce', 'hinge'\\], got 'mse'"):
        get_loss("mse")


@pytest.mark.parametrize("loss_fn", [bce_with_logits, hinge], ids=["bce", "hinge"])
@pytest.mark.parametrize("scale", [1.0, 100.0, 1e4])
def test_float32_matches_float64(loss_fn, scale):
    z64, y64 = logits_and_labels(scale)
    z32, y32 = logits_and_labels(scale, torch.float32)
    loss32, dz32 = loss_fn(z32, y32)
    loss64, dz64 = loss_fn(z64, y64)
    assert torch.isfinite(loss32)
    assert torch.isfinite(dz32).all()
    torch.testing.assert_close(loss32.double(), loss64, **TOLERANCES[torch.float32])
    torch.testing.assert_close(dz32.double(), dz64, **TOLERANCES[torch.float32])
