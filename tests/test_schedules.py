"""Warmup schedules: the LambdaLR step convention against hand-computed sequences, formulas, bad arguments."""

import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from radam import theory
from radam.schedules import (
    effective_warmup_period,
    linear_warmup,
    rectification_warmup,
    untuned_exponential_warmup,
    untuned_linear_warmup,
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


def test_rectification_warmup_is_r_t_zero_until_threshold():
    f = rectification_warmup(0.999)
    values = [f(s) for s in range(10)]
    assert values[:5] == [0.0] * 5  # rho_t <= 5 for t <= 5 at beta2 = 0.999
    assert values[5] > 0.0
    assert values[5:] == pytest.approx(theory.r_t(np.arange(6, 11), 0.999, 5.0).tolist(), rel=1e-15)
    # the paper's threshold 4 starts one step earlier
    assert rectification_warmup(0.999, threshold=4.0)(4) > 0.0


def test_effective_warmup_periods():
    assert effective_warmup_period(linear_warmup(11), 100) == pytest.approx(5.0)  # (T_w - 1) / 2
    assert effective_warmup_period(untuned_linear_warmup(0.999), 5000) == pytest.approx(999.5)
    # Ma & Yarats: RAdam's implicit warmup is 102.9 steps at beta2 = 0.99 when counted from its first adaptive step
    # (t = 5 for threshold 4); this schedule also withholds the 4 steps before it, each a full 1.
    t_radam = effective_warmup_period(rectification_warmup(0.99, threshold=4.0), 5000)
    assert t_radam - 4 == pytest.approx(102.9, abs=0.05)
    assert effective_warmup_period(untuned_exponential_warmup(0.99), 5000) == pytest.approx(99.5, abs=0.01)


def test_numpy_numbers_are_numbers():
    """Values from numpy (a beta2 read from an array, a step count from np.arange) work like Python's."""
    assert untuned_linear_warmup(np.float32(0.5))(0) == untuned_linear_warmup(0.5)(0)
    assert linear_warmup(np.int64(4))(1) == linear_warmup(4)(1) == 0.5
    assert rectification_warmup(0.999, threshold=np.float64(5.0))(9) == rectification_warmup(0.999)(9)
    assert effective_warmup_period(linear_warmup(11), np.int64(100)) == pytest.approx(5.0)


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: untuned_linear_warmup(np.float64("nan")), "beta2"),
        (lambda: rectification_warmup(0.999, threshold=float("nan")), "threshold"),
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
        (lambda: rectification_warmup(0.999, threshold=3.0), "threshold"),
        (lambda: rectification_warmup("0.9"), "beta2"),
        (lambda: effective_warmup_period(linear_warmup(3), 0), "steps"),
        (lambda: linear_warmup(3)(-1), "completed steps"),
    ],
)
def test_bad_arguments_name_the_argument(call, word):
    with pytest.raises(ValueError, match=word):
        call()
