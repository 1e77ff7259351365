"""Edge cases where radam.RAdam once differed from torch.optim.RAdam or from its own documentation.

Each test failed on the code before its fix: a 0-dim parameter with a tensor ``lr`` of a wider dtype (torch's
out-of-place product promotes and rounds once), back-propagation through an amsgrad step with L2 decay, a numpy
``threshold`` set on a group in place (which a weights-only load of the state dict then refused), and the step at
which :math:`\\rho_t` is exactly the threshold.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import radam
from radam.step_scalars import host_scalars

# With this beta2, rho_6 = 5.0 exactly in float64 (rho_t as torch computes it)
BETA2_RHO6_IS_5 = 0.8397685748659791


def _lockstep(options, param, steps, seed):
    """Step radam.RAdam and torch.optim.RAdam with the same options on copies of ``param``; every param after each
    step, as (ours, torch's)."""
    ours, theirs = param.clone(), param.clone()
    opt_ours, opt_theirs = radam.RAdam([ours], **options), torch.optim.RAdam([theirs], **options)
    gen = torch.Generator().manual_seed(seed)
    trajectory = []
    for _ in range(steps):
        grad = (torch.randn(param.shape, generator=gen, dtype=torch.float64) * 3).to(param.dtype)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
        trajectory.append((ours.clone(), theirs.clone()))
    return trajectory


def test_zero_dim_param_with_float64_tensor_lr_is_bit_exact_with_torch_reproducer():
    p = torch.tensor(0.5186367630958557)
    opt = radam.RAdam([p], lr=torch.tensor(0.1, dtype=torch.float64))
    p.grad = torch.tensor(-1.3125219345092773)
    opt.step()
    q = torch.tensor(0.5186367630958557)
    torch_opt = torch.optim.RAdam([q], lr=torch.tensor(0.1, dtype=torch.float64))
    q.grad = torch.tensor(-1.3125219345092773)
    torch_opt.step()
    assert p.item() == q.item() == 0.6498889327049255


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize(
    "param_dtype, lr_dtype",
    [
        (torch.float32, torch.float64),
        (torch.bfloat16, torch.float32),
        (torch.float16, torch.float32),
        (torch.float16, torch.float64),
    ],
)
@pytest.mark.parametrize("decoupled", [False, True])
def test_zero_dim_param_with_wider_tensor_lr_is_bit_exact_with_torch(param_dtype, lr_dtype, foreach, decoupled):
    for seed in range(20):
        param = torch.randn((), generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(param_dtype)
        options = dict(
            lr=torch.tensor(0.1, dtype=lr_dtype), foreach=foreach, weight_decay=0.01, decoupled_weight_decay=decoupled
        )
        for step, (ours, theirs) in enumerate(_lockstep(options, param, 12, seed), 1):
            assert torch.equal(ours, theirs), f"seed {seed}, step {step}: {ours.item()} != {theirs.item()}"


def test_amsgrad_differentiable_with_l2_decay_back_propagates_past_the_adaptive_steps():
    """torch.maximum saves both its inputs; the step must not give it a tensor that the next step changes in place.
    (torch.optim.Adam has this fault; here the gradient is checked against finite differences.)"""
    grads = [torch.randn(3, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in range(8)]

    def trajectory(w: torch.Tensor) -> torch.Tensor:
        p = w.clone()
        opt = radam.RAdam([p], lr=0.1, betas=(0.9, 0.6), amsgrad=True, differentiable=True, weight_decay=0.3)
        for g in grads:  # beta2 = 0.6: adaptive from step 2 on (rho_inf = 4 < 5 would never adapt, so threshold 4)
            p.grad = g
            opt.step()
        return p

    w = torch.randn(3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(trajectory, (w,))

    w2 = torch.randn(3, dtype=torch.float64, requires_grad=True)
    p = w2.clone()
    opt = radam.RAdam([p], amsgrad=True, differentiable=True, weight_decay=0.1)
    for g in grads:  # default betas: steps 1-5 degenerate, 6-8 adaptive
        p.grad = g
        opt.step()
    p.sum().backward()
    assert w2.grad is not None and torch.isfinite(w2.grad).all()


@pytest.mark.parametrize("value", [np.float64(4.5), np.float32(4.5), np.int64(5), 6])
def test_threshold_set_in_place_as_a_numpy_or_int_value_is_stored_as_a_python_float(value):
    """A group edited in place is normalised when step() checks it (as the constructor and add_param_group do), so
    that the state dict still loads with weights_only=True."""
    p = torch.zeros(2, requires_grad=True)
    opt = radam.RAdam([p])
    opt.param_groups[0]["threshold"] = value
    opt.param_groups[0]["amsgrad"] = np.bool_(False)
    p.grad = torch.ones(2)
    opt.step()
    assert type(opt.param_groups[0]["threshold"]) is float and opt.param_groups[0]["threshold"] == float(value)
    assert type(opt.param_groups[0]["amsgrad"]) is bool
    buffer = io.BytesIO()
    torch.save(opt.state_dict(), buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded["param_groups"][0]["threshold"] == float(value)


def test_rho_t_can_be_exactly_the_threshold_and_then_the_step_is_degenerate_as_in_torch():
    """rho_6 = 5.0 exactly for this beta2: the test rho_t > 5 says "degenerate", as torch's does (the official code's
    rho_t >= 5 would take an adaptive step here)."""
    step = 6
    scalars = host_scalars(step, 0.9, BETA2_RHO6_IS_5, 5.0, "paper")
    bias_correction2 = 1 - BETA2_RHO6_IS_5**step
    rho_inf = 2 / (1 - BETA2_RHO6_IS_5) - 1
    assert rho_inf - 2 * step * BETA2_RHO6_IS_5**step / bias_correction2 == 5.0
    assert not scalars.adaptive and scalars.rect == 0.0
    assert host_scalars(step + 1, 0.9, BETA2_RHO6_IS_5, 5.0, "paper").adaptive

    for foreach in (False, True):
        options = dict(lr=0.1, betas=(0.9, BETA2_RHO6_IS_5), foreach=foreach)
        trajectory = _lockstep(options, torch.randn(5, dtype=torch.float64), 8, seed=3)
        for ours, theirs in trajectory:
            assert torch.equal(ours, theirs)

    # the capturable path computes rho_t in float64 on the device, and takes the same branch
    ours_c, ours = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    opt_c = radam.RAdam([ours_c], lr=0.1, betas=(0.9, BETA2_RHO6_IS_5), capturable=True)
    opt = radam.RAdam([ours], lr=0.1, betas=(0.9, BETA2_RHO6_IS_5))
    gen = torch.Generator().manual_seed(0)
    for _ in range(8):
        grad = torch.randn(3, generator=gen, dtype=torch.float64)
        ours_c.grad, ours.grad = grad.clone(), grad.clone()
        opt_c.step()
        opt.step()
        torch.testing.assert_close(ours_c, ours, rtol=1e-15, atol=0)
