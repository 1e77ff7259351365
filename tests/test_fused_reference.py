"""The single-tensor reference that the fused step is checked against, and its own check against torch.optim.RAdam.

``reference_step`` is the arithmetic of ``torch.optim.RAdam``'s single-tensor path (same operations, same order,
Python-double scalars), extended with the package's options: degenerate "skip", a threshold, the exact rectifier,
amsgrad. The fused tests (``test_fused.py`` under Triton's interpreter, ``test_fused_cuda.py`` on a GPU) import it.
"""

from __future__ import annotations

import copy

import pytest
import torch

from radam import theory

OPTIONS = dict(
    lr=1e-2,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled_weight_decay=False,
    degenerate="sgd",
    threshold=5.0,
    rectifier="paper",
    amsgrad=False,
    maximize=False,
)

# Every option of the optimizer, one change at a time from OPTIONS (and a few combinations).
CONFIGS = {
    "default": {},
    "skip": dict(degenerate="skip"),
    "threshold-4": dict(threshold=4.0),
    "threshold-6.5": dict(threshold=6.5),
    "exact": dict(rectifier="exact"),
    "exact-threshold-3": dict(rectifier="exact", threshold=3.0),
    "l2": dict(weight_decay=0.1),
    "decoupled": dict(weight_decay=0.1, decoupled_weight_decay=True),
    "decoupled-skip": dict(weight_decay=0.1, decoupled_weight_decay=True, degenerate="skip"),
    "maximize": dict(maximize=True, weight_decay=0.05),
    "amsgrad": dict(amsgrad=True),
    "amsgrad-exact-skip": dict(amsgrad=True, rectifier="exact", degenerate="skip"),
    "beta1-large-weight": dict(beta1=0.3, beta2=0.99),
    "beta2-0.9": dict(beta2=0.9, threshold=4.5),
}

# The same options in fewer runs (each option at least once), for Triton's interpreter, which is slow.
COMBINED_CONFIGS = {
    "torch-default": {},
    "skip-decoupled-amsgrad-exact": dict(
        degenerate="skip", weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True, rectifier="exact"
    ),
    "threshold-4-l2-maximize": dict(threshold=4.0, weight_decay=0.1, maximize=True),
    "threshold-6.5-decoupled": dict(threshold=6.5, weight_decay=0.1, decoupled_weight_decay=True),
    "exact-threshold-3-skip-l2": dict(rectifier="exact", threshold=3.0, degenerate="skip", weight_decay=0.05),
    "beta1-0.3-amsgrad-maximize": dict(beta1=0.3, beta2=0.99, amsgrad=True, maximize=True),
    "beta2-0.9-exact": dict(beta2=0.9, threshold=4.5, rectifier="exact"),
}


def rectifier_value(step: float, beta2: float, threshold: float, rectifier: str) -> float:
    """r_t from radam.theory (0 where the step is not adaptive)."""
    if rectifier == "exact":
        return float(theory.r_t_exact(step, beta2, threshold))
    return float(theory.r_t(step, beta2, threshold))


def reference_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, **options) -> None:
    """One RAdam step, tensor by tensor, in place: the single-tensor path's arithmetic."""
    o = {**OPTIONS, **options}
    lr = float(o["lr"]) if isinstance(o["lr"], torch.Tensor) else o["lr"]
    beta1, beta2, eps, weight_decay = o["beta1"], o["beta2"], o["eps"], o["weight_decay"]
    for i, param in enumerate(params):
        grad = -grads[i] if o["maximize"] else grads[i]
        exp_avg, exp_avg_sq = exp_avgs[i], exp_avg_sqs[i]
        max_exp_avg_sq = max_exp_avg_sqs[i] if o["amsgrad"] else None
        if torch.is_complex(param):
            param, grad = torch.view_as_real(param), torch.view_as_real(grad)
            exp_avg, exp_avg_sq = torch.view_as_real(exp_avg), torch.view_as_real(exp_avg_sq)
            if max_exp_avg_sq is not None:
                max_exp_avg_sq = torch.view_as_real(max_exp_avg_sq)
        state_steps[i] += 1
        step = float(state_steps[i])
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * (beta2**step) / bias_correction2
        adaptive = rho_t > o["threshold"]
        updates = adaptive or o["degenerate"] == "sgd"
        if weight_decay != 0:
            if o["decoupled_weight_decay"]:
                if updates:
                    param.mul_(1 - lr * weight_decay)
            else:
                grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = exp_avg_sq
        if max_exp_avg_sq is not None:
            torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
            denominator = max_exp_avg_sq
        bias_corrected_exp_avg = exp_avg / bias_correction1
        if adaptive:
            rect = rectifier_value(step, beta2, o["threshold"], o["rectifier"])
            adaptive_lr = (bias_correction2**0.5) / denominator.sqrt().add_(eps)
            param.add_(bias_corrected_exp_avg * lr * adaptive_lr * rect, alpha=-1.0)
        elif o["degenerate"] == "sgd":
            param.add_(bias_corrected_exp_avg * lr, alpha=-1.0)


def make_state(shapes, dtype=torch.float32, device="cpu", amsgrad=False, seed=0, state_dtype=None):
    """Random parameters, and moments already warmed (non-zero, v > 0), as the fused step will find them."""
    generator = torch.Generator().manual_seed(seed)
    state_dtype = state_dtype or dtype

    def rand(shape, dtype_, positive=False):
        x = torch.randn(shape, generator=generator, dtype=torch.float64)
        if dtype_.is_complex:
            x = torch.complex(x, torch.randn(shape, generator=generator, dtype=torch.float64))
        x = x.abs() * 1e-2 if positive else x
        return x.to(dtype=dtype_, device=device)

    params = [rand(s, dtype) for s in shapes]
    exp_avgs = [torch.zeros(s, dtype=state_dtype, device=device) for s in shapes]
    exp_avg_sqs = [torch.zeros(s, dtype=state_dtype, device=device) for s in shapes]
    max_exp_avg_sqs = [torch.zeros(s, dtype=state_dtype, device=device) for s in shapes] if amsgrad else []
    steps = [torch.zeros((), dtype=torch.float32, device=device) for _ in shapes]
    return params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps


def random_grads(params, generator, scale=1.0):
    out = []
    for p in params:
        x = torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale
        if p.is_complex():
            x = torch.complex(x, torch.randn(p.shape, generator=generator, dtype=torch.float64) * scale)
        out.append(x.to(dtype=p.dtype, device=p.device))
    return out


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_reference_is_torch_radam(dtype, decoupled, maximize):
    """With torch's options (sgd below threshold 5, paper rectifier) the reference is torch.optim.RAdam, bit for bit."""
    shapes = [(7,), (3, 5), ()]
    params, exp_avgs, exp_avg_sqs, _, steps = make_state(shapes, dtype=dtype)
    torch_params = [p.clone().requires_grad_() for p in params]
    options = dict(weight_decay=0.1, decoupled_weight_decay=decoupled, maximize=maximize)
    optimizer = torch.optim.RAdam(
        torch_params,
        lr=OPTIONS["lr"],
        weight_decay=0.1,
        decoupled_weight_decay=decoupled,
        maximize=maximize,
        foreach=False,
    )
    generator = torch.Generator().manual_seed(1)
    for _ in range(10):  # the switch to adaptive steps happens at step 6
        grads = random_grads(params, generator)
        for p, g in zip(torch_params, grads):
            p.grad = g.clone()
        optimizer.step()
        reference_step(params, grads, exp_avgs, exp_avg_sqs, [], steps, **options)
        for p, q in zip(params, torch_params):
            assert torch.equal(p, q.detach())
        for p, q in zip(exp_avg_sqs, torch_params):
            assert torch.equal(p, optimizer.state[q]["exp_avg_sq"])


def test_configs_cross_the_threshold():
    """Every config has both degenerate and adaptive steps within 20 steps, so the tests see the switch, and the
    combined configs together set every option that the single-option configs set."""
    for name, config in {**CONFIGS, **COMBINED_CONFIGS}.items():
        o = {**OPTIONS, **config}
        r = [rectifier_value(t, o["beta2"], o["threshold"], o["rectifier"]) for t in range(1, 21)]
        assert r[0] == 0.0 and r[-1] > 0.0, name
    combined = {(key, value) for config in COMBINED_CONFIGS.values() for key, value in config.items()}
    for name, config in CONFIGS.items():
        for key, value in config.items():
            assert any(k == key for k, _ in combined), (name, key)
            if isinstance(value, (bool, str)):
                assert (key, value) in combined, (name, key, value)


def test_reference_amsgrad_and_skip_semantics():
    """amsgrad divides by the running maximum of v; skip leaves the parameter (decay included) alone."""
    params, exp_avgs, exp_avg_sqs, max_sqs, steps = make_state([(4,)], amsgrad=True)
    before = params[0].clone()
    grads = [torch.ones(4)]
    reference_step(
        params,
        grads,
        exp_avgs,
        exp_avg_sqs,
        max_sqs,
        steps,
        amsgrad=True,
        degenerate="skip",
        weight_decay=0.5,
        decoupled_weight_decay=True,
    )
    assert torch.equal(params[0], before)
    assert torch.equal(max_sqs[0], exp_avg_sqs[0])
    saved = copy.deepcopy(max_sqs)
    for _ in range(3):
        reference_step(params, [torch.zeros(4)], exp_avgs, exp_avg_sqs, max_sqs, steps, amsgrad=True)
    assert torch.equal(max_sqs[0], saved[0]) and bool((exp_avg_sqs[0] < max_sqs[0]).all())
