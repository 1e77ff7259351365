"""The variant options: degenerate="skip", threshold, rectifier="exact", amsgrad; and the paths agree for each."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import radam
from radam import theory

OPTIONS = st.fixed_dictionaries(
    {
        "degenerate": st.sampled_from(["sgd", "skip"]),
        "threshold": st.sampled_from([4.0, 5.0, 6.5]),
        "rectifier": st.sampled_from(["paper", "exact"]),
        "amsgrad": st.booleans(),
        "weight_decay": st.sampled_from([0.0, 0.05]),
        "decoupled_weight_decay": st.booleans(),
        "maximize": st.booleans(),
        "capturable": st.booleans(),
    }
)


def _params(seed, dtype=torch.float64, with_complex=True):
    gen = torch.Generator().manual_seed(seed)
    ps = [torch.randn(3, 2, generator=gen, dtype=dtype), torch.randn((), generator=gen, dtype=dtype)]
    if with_complex:
        ps.append(torch.randn(3, generator=gen, dtype=torch.complex128 if dtype == torch.float64 else torch.complex64))
    return ps


def _grads(params, gen, scale=1.0):
    return [torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale for p in params]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=OPTIONS, seed=st.integers(0, 2**16), missing=st.integers(0, 2))
def test_foreach_matches_single_tensor_for_every_option(options, seed, missing):
    """Params and every state tensor after each of 12 steps, within 1e-12 (float64 params; the paths round in
    different orders); one param misses its grad at steps 2 and 3."""
    tol = dict(rtol=1e-12, atol=1e-13)
    init = _params(seed)
    pa = [p.clone().requires_grad_() for p in init]
    pb = [p.clone().requires_grad_() for p in init]
    opt_a = radam.RAdam(pa, lr=0.03, foreach=False, **options)
    opt_b = radam.RAdam(pb, lr=0.03, foreach=True, **options)
    gen = torch.Generator().manual_seed(seed + 1)
    for t in range(1, 13):
        grads = _grads(init, gen, 2.0)
        for i, (a, b, g) in enumerate(zip(pa, pb, grads)):
            has = not (i == missing and t in (2, 3))
            a.grad, b.grad = (g.clone(), g.clone()) if has else (None, None)
        grads_before = [None if a.grad is None else a.grad.clone() for a in pa]
        opt_a.step()
        opt_b.step()
        for a, b, g in zip(pa, pb, grads_before):  # .grad is never modified, whatever the options
            assert (a.grad is None and b.grad is None) or (torch.equal(a.grad, g) and torch.equal(b.grad, g))
        for a, b in zip(pa, pb):
            torch.testing.assert_close(a, b, **tol)
            assert set(opt_a.state[a]) == set(opt_b.state[b])
            for key in opt_a.state[a]:
                torch.testing.assert_close(opt_a.state[a][key], opt_b.state[b][key], **tol)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize("amsgrad", [False, True])
def test_float32_and_complex64_paths_agree_with_float64(foreach, capturable, amsgrad):
    """The same run in float32 stays within float32 rounding of the float64 run, for every variant at once."""
    options = dict(
        degenerate="skip",
        threshold=4.0,
        rectifier="exact",
        amsgrad=amsgrad,
        foreach=foreach,
        capturable=capturable,
        weight_decay=0.05,
        decoupled_weight_decay=True,
    )
    init = _params(5)
    p64 = [p.clone().requires_grad_() for p in init]
    p32 = [p.clone().to(torch.complex64 if p.is_complex() else torch.float32).requires_grad_() for p in init]
    o64, o32 = radam.RAdam(p64, lr=0.01, **options), radam.RAdam(p32, lr=0.01, **options)
    gen = torch.Generator().manual_seed(9)
    for _ in range(10):
        for a, b, g in zip(p64, p32, _grads(init, gen)):
            a.grad, b.grad = g.clone(), g.to(b.dtype)
        o64.step()
        o32.step()
    for a, b in zip(p64, p32):
        torch.testing.assert_close(b.to(a.dtype), a, rtol=1e-4, atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(
    foreach=st.booleans(),
    capturable=st.booleans(),
    threshold=st.sampled_from([4.0, 5.0]),
    weight_decay=st.sampled_from([0.0, 0.1]),
    decoupled=st.booleans(),
    rectifier=st.sampled_from(["paper", "exact"]),
    seed=st.integers(0, 2**16),
)
def test_skip_never_moves_a_param_in_the_degenerate_phase(
    foreach, capturable, threshold, weight_decay, decoupled, rectifier, seed
):
    init = _params(seed)
    params = [p.clone().requires_grad_() for p in init]
    opt = radam.RAdam(
        params,
        lr=0.5,
        degenerate="skip",
        threshold=threshold,
        weight_decay=weight_decay,
        decoupled_weight_decay=decoupled,
        foreach=foreach,
        capturable=capturable,
        rectifier=rectifier,
    )
    first = int(theory.first_adaptive_step(0.999, threshold))
    gen = torch.Generator().manual_seed(seed + 1)
    for t in range(1, first + 2):
        for p, g in zip(params, _grads(init, gen, 5.0)):
            p.grad = g
        opt.step()
        if t < first:
            for p, p0 in zip(params, init):
                assert torch.equal(p.detach(), p0), f"skip moved a param at step {t} < {first}"
            # ... while the moments accumulate
            assert all(opt.state[p]["exp_avg"].abs().sum() > 0 for p in params)
        else:
            assert all(not torch.equal(p.detach(), p0) for p, p0 in zip(params, init)), "first adaptive step"


def test_skip_applies_l2_decay_to_the_moments_only():
    """With zero gradients and L2 decay, a skipped step leaves theta alone but m_t = (1-beta1) lambda theta."""
    p = torch.tensor([2.0, -1.0], dtype=torch.float64, requires_grad=True)
    opt = radam.RAdam([p], lr=0.1, weight_decay=0.5, degenerate="skip")
    p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.equal(p.detach(), torch.tensor([2.0, -1.0], dtype=torch.float64))
    torch.testing.assert_close(opt.state[p]["exp_avg"], 0.1 * 0.5 * p.detach(), rtol=1e-15, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize(("threshold", "first"), [(4.0, 5), (5.0, 6)])
def test_threshold_4_adapts_from_step_5_and_5_from_step_6(foreach, capturable, threshold, first):
    """beta2 = 0.999: rho_5 = 4.996, rho_6 = 5.994. With degenerate="sgd" and constant gradient g, an SGD step
    moves theta by lr * m_hat = lr * g exactly, an adaptive step by lr * r_t * (about 1) -- much less."""
    assert int(theory.first_adaptive_step(0.999, threshold)) == first
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = radam.RAdam([p], lr=0.1, threshold=threshold, foreach=foreach, capturable=capturable)
    moves = []
    for _ in range(first + 1):
        before = p.detach().clone()
        p.grad = torch.ones_like(p)
        opt.step()
        moves.append(float(before - p.detach()))
    sgd = [abs(m - 0.1) < 1e-12 for m in moves]
    assert sgd == [True] * (first - 1) + [False, False]
    assert moves[first - 1] < 0.1 * 0.1  # r_5 (tau=4) = 0.0052..., r_6 = 0.0067...


def _reference_trajectory(theta0, grads, lr, beta1, beta2, eps, threshold, degenerate, rect):
    """RAdam written out from the equations with numpy scalars (independent of both implementations)."""
    theta, m, v, out = float(theta0), 0.0, 0.0, []
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        rho = rho_inf - 2 * t * beta2**t / (1 - beta2**t)
        if rho > threshold:
            if rect == "paper":
                r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            else:
                r = math.sqrt(float(theory.variance_psi_exact(rho_inf)) / float(theory.variance_psi_exact(rho)))
            theta -= lr * r * m_hat * math.sqrt(1 - beta2**t) / (math.sqrt(v) + eps)
        elif degenerate == "sgd":
            theta -= lr * m_hat
        out.append(theta)
    return out


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
@pytest.mark.parametrize(
    ("threshold", "degenerate", "rectifier"),
    [(5.0, "sgd", "paper"), (4.0, "sgd", "paper"), (5.0, "skip", "exact"), (3.0, "sgd", "exact")],
)
def test_matches_equations_written_out(foreach, capturable, threshold, degenerate, rectifier):
    rng = np.random.default_rng(0)
    grads = rng.normal(size=14) * 3
    eps = 1e-3  # large enough that its placement matters: sqrt(1-beta2^t)/(sqrt(v)+eps)
    expected = _reference_trajectory(0.5, grads, 0.1, 0.9, 0.999, eps, threshold, degenerate, rectifier)
    p = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    # float64 params, float32 step counter: the capturable paths compute their scalars from it in float64, so
    # they too must match to float64 rounding
    opt = radam.RAdam(
        [p],
        lr=0.1,
        eps=eps,
        threshold=threshold,
        degenerate=degenerate,
        rectifier=rectifier,
        foreach=foreach,
        capturable=capturable,
    )
    for g, want in zip(grads, expected):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        assert opt.state[p]["step"].dtype == torch.float32
        assert float(p.detach()) == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_rho_values_quoted_in_the_book():
    rho = theory.rho_t(np.arange(1, 8), 0.999)
    np.testing.assert_allclose(rho, [1.0, 1.9995, 2.9987, 3.9975, 4.996, 5.994, 6.992], atol=6e-4)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_exact_rectifier_tends_to_papers(foreach, capturable):
    """From the same state, one step with each rectifier: the ratio of the moves is r_exact / r_paper, which the
    theory predicts and which tends to 1 as rho_t grows."""
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(8, generator=gen, dtype=torch.float64, requires_grad=True)
    base = radam.RAdam([p], lr=1e-3, foreach=foreach, capturable=capturable)
    gaps, steps = [], [6, 7, 10, 30, 100, 1000, 5000]
    done = 0
    for t in steps:
        while done < t - 1:
            p.grad = torch.randn(8, generator=gen, dtype=torch.float64)
            base.step()
            done += 1
        g = torch.randn(8, generator=gen, dtype=torch.float64)
        moves = {}
        for rect in ("paper", "exact"):
            q = p.detach().clone().requires_grad_()
            opt = radam.RAdam([q], lr=1e-3, rectifier=rect, foreach=foreach, capturable=capturable)
            opt.state[q] = copy.deepcopy(base.state[p])
            q.grad = g.clone()
            opt.step()
            moves[rect] = q.detach() - p.detach()
        ratio = (moves["exact"] / moves["paper"]).mean().item()
        want = float(theory.r_t_exact(t, 0.999, 5.0) / theory.r_t(t, 0.999, 5.0))
        assert ratio == pytest.approx(want, rel=1e-9)
        gaps.append(abs(ratio - 1.0))
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 1e-3 < gaps[0]


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_amsgrad_max_is_monotone_and_used(foreach, capturable):
    gen = torch.Generator().manual_seed(1)
    p = torch.randn(6, generator=gen, dtype=torch.float64, requires_grad=True)
    q = p.detach().clone().requires_grad_()
    opt = radam.RAdam([p], lr=0.01, amsgrad=True, foreach=foreach, capturable=capturable)
    plain = radam.RAdam([q], lr=0.01, foreach=foreach, capturable=capturable)
    previous = torch.zeros(6, dtype=torch.float64)
    for t in range(1, 16):
        scale = 10.0 if t <= 7 else 0.01  # large gradients first, then small: v_t falls, its maximum must not
        g = torch.randn(6, generator=gen, dtype=torch.float64) * scale
        p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        plain.step()
        vmax, v = opt.state[p]["max_exp_avg_sq"], opt.state[p]["exp_avg_sq"]
        assert torch.all(vmax >= previous) and torch.all(vmax >= v)
        assert torch.equal(v, plain.state[q]["exp_avg_sq"])  # v itself is Adam's v
        previous = vmax.clone()
    assert torch.any(vmax > v)
    assert not torch.allclose(p, q)  # the maximum entered the update
    assert "max_exp_avg_sq" not in plain.state[q]


def test_amsgrad_complex_keeps_parts_separate():
    """A complex param and its real view follow the same trajectory under every option."""
    options = dict(amsgrad=True, degenerate="skip", rectifier="exact", threshold=4.0, weight_decay=0.1)
    for foreach, capturable in itertools.product([False, True], [False, True]):
        gen = torch.Generator().manual_seed(2)
        z = torch.randn(4, generator=gen, dtype=torch.complex128)
        pc = z.clone().requires_grad_()
        pr = torch.view_as_real(z).clone().requires_grad_()
        oc = radam.RAdam([pc], lr=0.05, foreach=foreach, capturable=capturable, **options)
        orl = radam.RAdam([pr], lr=0.05, foreach=foreach, capturable=capturable, **options)
        for _ in range(9):
            g = torch.randn(4, generator=gen, dtype=torch.complex128)
            pc.grad, pr.grad = g.clone(), torch.view_as_real(g).clone()
            oc.step()
            orl.step()
            torch.testing.assert_close(torch.view_as_real(pc.detach()), pr.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("foreach", [False, True])
@pytest.mark.parametrize("capturable", [False, True])
def test_exact_rectifier_at_the_threshold_boundary_never_gives_an_adaptive_step_r_zero(foreach, capturable):
    """The test rho_t > threshold and the exact r_t use the same rho_t. With beta2 = 0.95 and the threshold set to
    theory.rho_t(5, 0.95) (computed with expm1), the step-5 rho_t of the optimizer's formula lies one rounding
    above it: step 5 is adaptive, and its r_t must be positive (recomputing rho_t inside r_t gave r_5 = 0 and a
    step that did not move, even with degenerate="sgd")."""
    beta2, lr = 0.95, 0.1
    threshold = float(theory.rho_t(5, beta2))
    rho_inf = 2 / (1 - beta2) - 1
    adaptive = [rho_inf - 2 * t * beta2**t / (1 - beta2**t) > threshold for t in range(1, 9)]
    assert adaptive == [False] * 4 + [True] * 4  # the boundary case this test is about
    p = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = radam.RAdam(
        [p], lr=lr, betas=(0.9, beta2), threshold=threshold, rectifier="exact", foreach=foreach, capturable=capturable
    )
    for t, is_adaptive in enumerate(adaptive, start=1):
        before = p.detach().clone()
        p.grad = torch.ones_like(p)
        opt.step()
        move = float((before - p.detach()).sum())
        if is_adaptive:  # lr r_t l_t with l_t ~ 1 and 0 < r_t < 1
            want = (
                lr
                * float(
                    theory.variance_psi_exact(rho_inf)
                    / theory.variance_psi_exact(rho_inf - 2 * t * beta2**t / (1 - beta2**t))
                )
                ** 0.5
            )
            assert 0 < move < lr and move == pytest.approx(want, rel=1e-6), (t, move)
        else:
            assert move == pytest.approx(lr, rel=1e-12), (t, move)
