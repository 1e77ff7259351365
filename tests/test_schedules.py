"""Warmup schedules (the package's one warmup API): the LambdaLR step convention against hand-computed sequences,
arrays against scalars, formulas, effective warmup periods, the scaling rule, bad arguments."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim.lr_scheduler import LambdaLR

from radam import theory
from radam.schedules import (
    effective_warmup_period,
    linear_warmup,
    radam_warmup,
    untuned_exponential_warmup,
    untuned_linear_warmup,
    warmup_factors,
    warmup_length,
)


def _lrs_seen_by_optimizer(schedule, steps, base_lr=2.0):
    """The lr of optimiser steps t = 1..steps in the standard step()/scheduler.step() loop."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = LambdaLR(opt, schedule)
    seen = []
    for _ in range(steps):
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.zeros(1)
        opt.step()
        sched.step()
    return seen


def test_linear_warmup_with_lambdalr_matches_hand_computed_sequence():
    # warmup over 4 steps, base lr 2: steps t = 1..6 get 2 * t/4 capped at 2.
    assert _lrs_seen_by_optimizer(linear_warmup(4), 6) == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]


def test_no_warmup_is_constant():
    assert _lrs_seen_by_optimizer(linear_warmup(0), 3) == [2.0, 2.0, 2.0]
    assert _lrs_seen_by_optimizer(linear_warmup(1), 3) == [2.0, 2.0, 2.0]


def test_untuned_linear_warmup_spans_two_over_one_minus_beta2():
    f = untuned_linear_warmup(0.99)  # 200 steps
    assert f(0) == pytest.approx(1 / 200)
    assert f(98) == pytest.approx(99 / 200)
    assert f(199) == 1.0 and f(198) < 1.0 and f(10_000) == 1.0
    assert _lrs_seen_by_optimizer(untuned_linear_warmup(0.5), 6, base_lr=1.0) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_untuned_exponential_warmup_formula():
    f = untuned_exponential_warmup(0.999)
    for t in [1, 2, 10, 1000, 5000]:
        assert f(t - 1) == pytest.approx(1 - math.exp(-0.001 * t), rel=1e-12)
    assert f(0) > 0.0


def test_radam_warmup_starts_at_the_first_adaptive_step():
    # threshold 4 (the paper): rho_t > 4 first at t = 5 for beta2 = 0.999, so omega_t = r_{t + 4}
    t = np.arange(1, 10)
    np.testing.assert_array_equal(warmup_factors(radam_warmup(0.999), 9), theory.r_t(t + 4, 0.999))
    # threshold 5 (torch): one step later
    np.testing.assert_array_equal(warmup_factors(radam_warmup(0.999, threshold=5.0), 9), theory.r_t(t + 5, 0.999, 5.0))
    assert 0.0 < radam_warmup(0.999)(0) < radam_warmup(0.999)(1) < 1.0


@pytest.mark.parametrize(
    "schedule",
    [linear_warmup(7), untuned_linear_warmup(0.9), untuned_exponential_warmup(0.95), radam_warmup(0.9)],
)
def test_arrays_give_the_scalar_values(schedule):
    factors = warmup_factors(schedule, 60)
    assert factors.shape == (60,) and factors.dtype == np.float64
    assert factors.tolist() == [schedule(s) for s in range(60)]
    assert all(type(schedule(s)) is float for s in (0, np.int64(3)))


@pytest.mark.parametrize(
    "beta2, radam, untuned", [(0.99, 102.86, 99.5), (0.999, 1029.32, 999.5), (0.9999, 10291.86, 9999.5)]
)
def test_effective_warmup_periods_of_ma_and_yarats(beta2, radam, untuned):
    horizon = int(20 / (1 - beta2))
    assert effective_warmup_period(radam_warmup(beta2), horizon) == pytest.approx(radam, abs=0.01)
    # linear: sum_{t<=2/(1-b)} (1 - t (1-b)/2) = 2/(1-b) - (2/(1-b) + 1)/2 = 1/(1-b) - 1/2, by hand
    assert effective_warmup_period(untuned_linear_warmup(beta2), horizon) == pytest.approx(untuned, abs=1e-6)
    # exponential: sum_t exp(-c t) = 1/(e^c - 1) = 1/c - 1/2 + c/12 - ..., c = 1 - beta2 (truncated at e^-20)
    expected = 1 / np.expm1(1 - beta2)
    assert effective_warmup_period(untuned_exponential_warmup(beta2), horizon) == pytest.approx(expected, rel=1e-7)
    assert expected == pytest.approx(untuned, abs=0.01)


def test_effective_warmup_periods():
    assert effective_warmup_period(linear_warmup(11), 100) == pytest.approx(5.0)  # (T_w - 1) / 2
    assert effective_warmup_period(untuned_linear_warmup(0.999), 5000) == pytest.approx(999.5)
    # threshold 5 starts RAdam one step later, on a slightly larger rectifier: one step less withheld
    t4 = effective_warmup_period(radam_warmup(0.999), 20_000)
    t5 = effective_warmup_period(radam_warmup(0.999, threshold=5.0), 20_000)
    assert t4 - t5 == pytest.approx(1.0, abs=0.05)


@settings(max_examples=50, deadline=None)
@given(beta2=st.floats(min_value=0.9, max_value=0.9999))
def test_effective_warmup_periods_are_about_one_over_one_minus_beta2(beta2):
    scale = 1 / (1 - beta2)
    horizon = int(20 * scale)
    radam = effective_warmup_period(radam_warmup(beta2), horizon)
    linear = effective_warmup_period(untuned_linear_warmup(beta2), horizon)
    # T(RAdam) (1 - beta2) rises from 0.989 at beta2 = 0.9 to C = 1.029 (chapter 4's integral) as beta2 -> 1
    assert 0.98 * scale < radam < 1.035 * scale
    if beta2 >= 0.99:
        assert radam == pytest.approx(1.0292 * scale, rel=0.001)
    n = np.floor(2 * scale)  # the steps with omega_t < 1: sum_{t<=n} (1 - t / (2 scale)) = n - n (n + 1) / (4 scale)
    assert linear == pytest.approx(n - n * (n + 1) / (4 * scale), rel=1e-9)


def test_warmup_length_counts_units_of_one_over_one_minus_beta2():
    assert warmup_length(4, 0.999) == 4000 and warmup_length(2, 0.999) == 2000  # the paper's recipe
    assert warmup_length(4, 0.9) == 40 and warmup_length(1, 0.98) == 50
    assert warmup_length(2, 0.9) == round(2 / (1 - 0.9))
    # the untuned linear warmup is a linear warmup of 2 units
    np.testing.assert_allclose(
        warmup_factors(untuned_linear_warmup(0.98), 300),
        warmup_factors(linear_warmup(warmup_length(2, 0.98)), 300),
        rtol=1e-13,
    )


def test_numpy_numbers_are_numbers():
    """Values from numpy (a beta2 read from an array, a step count from np.arange) work like Python's."""
    assert untuned_linear_warmup(np.float32(0.5))(0) == untuned_linear_warmup(0.5)(0)
    assert linear_warmup(np.int64(4))(1) == linear_warmup(4)(1) == 0.5
    assert radam_warmup(0.999, threshold=np.float64(4.0))(9) == radam_warmup(0.999)(9)
    assert effective_warmup_period(linear_warmup(11), np.int64(100)) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: untuned_linear_warmup(np.float64("nan")), "beta2"),
        (lambda: radam_warmup(0.999, threshold=float("nan")), "threshold"),
        (lambda: linear_warmup(np.bool_(True)), "warmup_steps"),
    ],
)
def test_nan_and_bools_are_refused(call, word):
    with pytest.raises(ValueError, match=word):
        call()


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: linear_warmup(-1), "warmup_steps"),
        (lambda: linear_warmup(2.5), "warmup_steps"),
        (lambda: untuned_linear_warmup(1.0), "beta2"),
        (lambda: untuned_exponential_warmup(0.0), "beta2"),
        (lambda: radam_warmup(0.999, threshold=3.0), "threshold"),
        (lambda: radam_warmup("0.9"), "beta2"),
        (lambda: radam_warmup(0.65, threshold=5.0), "never"),
        (lambda: effective_warmup_period(linear_warmup(3), 0), "steps"),
        (lambda: linear_warmup(3)(-1), "completed steps"),
        (lambda: linear_warmup(3)(np.array([0, -1])), "completed steps"),
        (lambda: linear_warmup(3)(1.5), "integer"),
        (lambda: warmup_length(0, 0.9), "multiple"),
        (lambda: warmup_length(2, 1.0), "beta2"),
    ],
)
def test_bad_arguments_name_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
