"""Default radam.RAdam is torch.optim.RAdam: bit for bit, params and every state tensor, step after step.

Property tests (hypothesis) over shapes, dtypes, flags, missing grads and frozen params. Each run takes at least
10 steps, so the degenerate phase (steps 1-5 at beta2 = 0.999) and the rectified phase (from step 6) are both
compared.
"""

from __future__ import annotations

import importlib
from unittest import mock

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import radam

TORCH_RADAM_MODULE = importlib.import_module("torch.optim.radam")

SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

shapes = st.lists(
    st.lists(st.integers(min_value=1, max_value=4), min_size=0, max_size=3).map(tuple), min_size=1, max_size=4
)


def make_params(shape_list, dtype, complex_index, seed):
    gen = torch.Generator().manual_seed(seed)
    params = []
    for i, shape in enumerate(shape_list):
        if i == complex_index:
            cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            params.append(torch.randn(shape, generator=gen, dtype=cdtype))
        else:
            params.append(torch.randn(shape, generator=gen, dtype=dtype))
    return params


def run_lockstep(opt_a, params_a, opt_b, params_b, grad_mask, seed, steps):
    """Feed identical gradients to both optimizers; assert params and all state are identical after each step."""
    gen = torch.Generator().manual_seed(seed + 1)
    for t in range(steps):
        for i, (pa, pb) in enumerate(zip(params_a, params_b)):
            if grad_mask[t % len(grad_mask)][i % len(grad_mask[0])] and pa.requires_grad:
                g = torch.randn(pa.shape, generator=gen, dtype=pa.dtype) * 3.0
                pa.grad, pb.grad = g.clone(), g.clone()
            else:
                pa.grad, pb.grad = None, None
        opt_a.step()
        opt_b.step()
        for pa, pb in zip(params_a, params_b):
            assert torch.equal(pa, pb), f"param differs at step {t + 1}: {(pa - pb).abs().max()}"
            sa, sb = opt_a.state.get(pa, {}), opt_b.state.get(pb, {})
            assert set(sa) == set(sb)
            for key in sa:
                assert sa[key].dtype == sb[key].dtype and sa[key].device == sb[key].device, key
                assert torch.equal(sa[key], sb[key]), f"state {key} differs at step {t + 1}"


@settings(**SETTINGS)
@given(
    shape_list=shapes,
    dtype=st.sampled_from([torch.float64, torch.float32]),
    foreach=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.1]),
    decoupled=st.booleans(),
    maximize=st.booleans(),
    with_complex=st.booleans(),
    tensor_lr=st.booleans(),
    lr=st.sampled_from([1e-3, 0.05, 0.3]),
    betas=st.sampled_from([(0.9, 0.999), (0.8, 0.99), (0.0, 0.95), (0.9, 0.0)]),
    eps=st.sampled_from([1e-8, 1e-6]),
    frozen=st.booleans(),
    grad_mask=st.lists(st.lists(st.booleans(), min_size=4, max_size=4), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_default_radam_is_torch_radam(
    shape_list, dtype, foreach, weight_decay, decoupled, maximize, with_complex, tensor_lr, lr, betas, eps,
    frozen, grad_mask, seed,
):
    grad_mask = [row if any(row) else [True] + row[1:] for row in grad_mask]
    init = make_params(shape_list, dtype, 0 if with_complex else -1, seed)
    params_a = [p.clone().requires_grad_(not (frozen and i == len(init) - 1)) for i, p in enumerate(init)]
    params_b = [p.clone().requires_grad_(not (frozen and i == len(init) - 1)) for i, p in enumerate(init)]
    kwargs = dict(
        betas=betas, eps=eps, weight_decay=weight_decay, decoupled_weight_decay=decoupled, foreach=foreach,
        maximize=maximize,
    )
    lr_a = torch.tensor(lr) if tensor_lr else lr
    lr_b = torch.tensor(lr) if tensor_lr else lr
    opt_torch = torch.optim.RAdam(params_a, lr=lr_a, **kwargs)
    opt_ours = radam.RAdam(params_b, lr=lr_b, **kwargs)
    run_lockstep(opt_torch, params_a, opt_ours, params_b, grad_mask, seed, steps=12)


@settings(max_examples=12, deadline=None)
@given(
    foreach=st.booleans(),
    weight_decay=st.sampled_from([0.0, 0.1]),
    decoupled=st.booleans(),
    maximize=st.booleans(),
    tensor_lr=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_capturable_matches_torch_capturable(foreach, weight_decay, decoupled, maximize, tensor_lr, seed):
    """torch's capturable paths refuse the CPU only by a device list; widened, they are the oracle on the CPU."""
    with mock.patch.object(TORCH_RADAM_MODULE, "_get_capturable_supported_devices", lambda supports_xla=True: ["cpu"]):
        _capturable_case(foreach, weight_decay, decoupled, maximize, tensor_lr, seed)


def _capturable_case(foreach, weight_decay, decoupled, maximize, tensor_lr, seed):
    init = make_params([(3, 2), (), (4,)], torch.float64, 2, seed)
    params_a = [p.clone().requires_grad_() for p in init]
    params_b = [p.clone().requires_grad_() for p in init]
    kwargs = dict(weight_decay=weight_decay, decoupled_weight_decay=decoupled, foreach=foreach,
                  maximize=maximize, capturable=True)
    opt_torch = torch.optim.RAdam(params_a, lr=torch.tensor(0.01) if tensor_lr else 0.01, **kwargs)
    opt_ours = radam.RAdam(params_b, lr=torch.tensor(0.01) if tensor_lr else 0.01, **kwargs)
    run_lockstep(opt_torch, params_a, opt_ours, params_b, [[True] * 4], seed, steps=10)


@settings(max_examples=10, deadline=None)
@given(foreach=st.booleans(), seed=st.integers(0, 2**16))
def test_parity_with_float64_default_dtype(foreach, seed):
    """Under torch.set_default_dtype(float64) the step counter is float64 in both."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        init = make_params([(2, 3), (5,)], torch.float64, -1, seed)
        params_a = [p.clone().requires_grad_() for p in init]
        params_b = [p.clone().requires_grad_() for p in init]
        opt_torch = torch.optim.RAdam(params_a, lr=0.02, foreach=foreach)
        opt_ours = radam.RAdam(params_b, lr=0.02, foreach=foreach)
        run_lockstep(opt_torch, params_a, opt_ours, params_b, [[True] * 4], seed, steps=10)
        assert opt_ours.state[params_b[0]]["step"].dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


def test_parity_mixed_dtypes_and_param_groups():
    """Two groups with different lr/decay, float32 and float64 and complex in one group, 0-d params, foreach."""
    for foreach in (False, True):
        gen = torch.Generator().manual_seed(3)
        init = [
            torch.randn(3, 3, generator=gen, dtype=torch.float64),
            torch.randn(4, generator=gen, dtype=torch.float32),
            torch.randn((), generator=gen, dtype=torch.float64),
            torch.randn(2, generator=gen, dtype=torch.complex64),
        ]

        def groups(ps):
            return [
                {"params": ps[:2], "lr": 0.05, "weight_decay": 0.2},
                {"params": ps[2:], "decoupled_weight_decay": True, "weight_decay": 0.3},
            ]

        params_a = [p.clone().requires_grad_() for p in init]
        params_b = [p.clone().requires_grad_() for p in init]
        opt_torch = torch.optim.RAdam(groups(params_a), lr=0.01, foreach=foreach)
        opt_ours = radam.RAdam(groups(params_b), lr=0.01, foreach=foreach)
        run_lockstep(opt_torch, params_a, opt_ours, params_b, [[True, True, False, True], [True] * 4], 7, 12)
