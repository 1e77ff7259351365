"""radam.step_scalars: one rule set for the variant options, used by every path; the threshold at the edge of
each rectifier's domain; a sparse gradient refused with one message everywhere."""

from __future__ import annotations

import pytest
import torch

import radam
import radam.functional as F
import radam.step_scalars as S
from radam import fused


@pytest.mark.parametrize("rectifier, lowest", [("paper", 4.0), ("exact", 2.0)])
def test_the_lowest_threshold_is_where_the_rectifier_starts_to_be_real_on_every_path(rectifier, lowest):
    """The optimizer, the functional step and the fused step accept the same thresholds: at least 4 for the paper's
    rectifier, at least 2 for the exact one (the step is adaptive only where rho_t > threshold, strictly)."""
    S.check_variant_options("sgd", lowest, rectifier, False)
    p = torch.zeros(2, requires_grad=True)
    radam.RAdam([p], threshold=lowest, rectifier=rectifier)
    below = lowest - 1e-9
    with pytest.raises(ValueError, match=f"must be >= {lowest:g}"):
        S.check_variant_options("sgd", below, rectifier, False)
    with pytest.raises(ValueError, match=f"must be >= {lowest:g}"):
        radam.RAdam([p], threshold=below, rectifier=rectifier)
    lists = [[torch.zeros(2)], [torch.zeros(2)], [torch.zeros(2)], [torch.zeros(2)], [torch.zeros(())]]
    options = dict(
        beta1=0.9,
        beta2=0.999,
        lr=0.1,
        weight_decay=0.0,
        eps=1e-8,
        degenerate="sgd",
        threshold=below,
        rectifier=rectifier,
        amsgrad=False,
    )
    with pytest.raises(ValueError, match=f"must be >= {lowest:g}"):
        F.radam(*lists, **options)
    with pytest.raises(ValueError, match=f"must be >= {lowest:g}"):
        fused.fused_radam(
            lists[0],
            lists[1],
            lists[2],
            lists[3],
            [],
            lists[4],
            decoupled_weight_decay=False,
            maximize=False,
            capturable=False,
            **options,
        )


def test_exact_rectifier_at_threshold_two_steps_with_a_positive_finite_rectifier():
    """beta2 = 0.6: rho_inf = 4, rho_t rises from 1 towards 4; with threshold 2 every step above 2 is adaptive."""
    p = torch.ones(3, dtype=torch.float64, requires_grad=True)
    opt = radam.RAdam([p], lr=0.1, betas=(0.9, 0.6), threshold=2.0, rectifier="exact")
    for t in range(1, 8):
        scalars = S.host_scalars(float(t), 0.9, 0.6, 2.0, "exact")
        assert scalars.adaptive == (S.rho_t(float(t), 0.6, 1 - 0.6**t) > 2.0)
        if scalars.adaptive:
            assert 0.0 < scalars.rect < 1.0
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        assert torch.isfinite(p).all()


def test_a_sparse_gradient_is_refused_with_one_message():
    grad = torch.sparse_coo_tensor([[0]], [1.0], (2,), check_invariants=True)
    with pytest.raises(RuntimeError, match="^RAdam does not support sparse gradients$"):
        S.check_dense_gradients([torch.zeros(2), None, grad])
    p = torch.zeros(2, requires_grad=True)
    p.grad = grad
    with pytest.raises(RuntimeError, match="^RAdam does not support sparse gradients$"):
        radam.RAdam([p]).step()
