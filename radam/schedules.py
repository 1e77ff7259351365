r"""Learning-rate warmup schedules, each a callable for :class:`torch.optim.lr_scheduler.LambdaLR`.

**Step convention.** Every function here returns a callable ``factor(s)`` that takes the number ``s = 0, 1, 2, ...``
of optimiser steps already taken and returns the multiplier :math:`\omega_t` of the base learning rate for the *next*
step, :math:`t = s + 1`. This is how ``LambdaLR`` calls it in the usual loop::

    scheduler = LambdaLR(optimizer, linear_warmup(100))   # calls factor(0): the lr of step t = 1
    for batch in data:
        loss(batch).backward()
        optimizer.step()                                   # step t uses factor(t - 1)
        scheduler.step()                                   # calls factor(t): the lr of step t + 1

so the formulas below, written with the 1-based step :math:`t` of the papers, hold exactly for the step the
optimiser takes: :math:`\alpha_t = \omega_t \alpha`. In particular no schedule here gives the very first step a
learning rate of zero (except :func:`rectification_warmup`, whose first few factors are zero by design).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from radam import theory

__all__ = [
    "linear_warmup",
    "untuned_linear_warmup",
    "untuned_exponential_warmup",
    "rectification_warmup",
    "effective_warmup_period",
]

Schedule = Callable[[int], float]


def _is_real(value: object) -> bool:
    """A real number, Python's or numpy's, but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value: object) -> bool:
    """An integer, Python's or numpy's, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_beta2(beta2: float) -> float:
    if not _is_real(beta2) or not 0.0 < beta2 < 1.0:
        raise ValueError(f"beta2 must be a number in the open interval (0, 1), got {beta2!r}")
    return float(beta2)


def _check_completed_steps(s: int) -> int:
    if s < 0:
        raise ValueError(f"the number of completed steps must be >= 0, got {s}")
    return s


def linear_warmup(warmup_steps: int) -> Schedule:
    r"""Linear warmup over ``warmup_steps`` steps, then a constant factor 1.

    .. math:: \omega_t = \min\left(1, \frac{t}{T_w}\right), \qquad t = 1, 2, \dots

    ``warmup_steps = 1`` (or 0) is no warmup at all.
    """
    if not _is_int(warmup_steps) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be a non-negative int, got {warmup_steps!r}")
    length = max(int(warmup_steps), 1)

    def factor(s: int) -> float:
        t = _check_completed_steps(s) + 1
        return min(1.0, t / length)

    return factor


def untuned_linear_warmup(beta2: float) -> Schedule:
    r"""Ma & Yarats' untuned linear warmup: linear over :math:`2/(1-\beta_2)` steps (2000 steps at 0.999).

    .. math:: \omega_t = \min\left(1, \frac{(1-\beta_2)\, t}{2}\right)
    """
    beta2 = _check_beta2(beta2)

    def factor(s: int) -> float:
        t = _check_completed_steps(s) + 1
        return min(1.0, (1.0 - beta2) * t / 2.0)

    return factor


def untuned_exponential_warmup(beta2: float) -> Schedule:
    r"""Ma & Yarats' untuned exponential warmup, with time constant :math:`1/(1-\beta_2)`.

    .. math:: \omega_t = 1 - e^{-(1-\beta_2)\, t}
    """
    beta2 = _check_beta2(beta2)

    def factor(s: int) -> float:
        t = _check_completed_steps(s) + 1
        return -math.expm1(-(1.0 - beta2) * t)

    return factor


def rectification_warmup(beta2: float, threshold: float = 5.0) -> Schedule:
    r"""RAdam's rectification term :math:`r_t` used as a warmup schedule for Adam.

    .. math:: \omega_t = r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}
              \ \text{ if } \rho_t > \text{threshold}, \qquad \omega_t = 0 \text{ otherwise,}

    from :func:`radam.theory.r_t`. Adam under this schedule takes no step while :math:`\rho_t \le` ``threshold`` (its
    moments still accumulate) and afterwards is RAdam with ``degenerate="skip"``, except that :math:`\epsilon` is
    added to the bias-corrected :math:`\sqrt{\hat v_t}` as in Adam. ``threshold`` is 5 as in ``torch.optim.RAdam``
    and the official code (the paper uses 4); it must be at least 4.
    """
    beta2 = _check_beta2(beta2)
    if not _is_real(threshold) or not threshold >= 4.0:
        raise ValueError(f"threshold must be a number >= 4 (r_t is undefined below), got {threshold!r}")
    threshold = float(threshold)

    def factor(s: int) -> float:
        t = _check_completed_steps(s) + 1
        return float(theory.r_t(t, beta2, threshold))

    return factor


def effective_warmup_period(schedule: Schedule, steps: int) -> float:
    r"""Ma & Yarats' effective warmup period of a schedule, summed over its first ``steps`` steps.

    .. math:: \mathcal{T}(\omega) = \sum_{t=1}^{T} (1 - \omega_t)

    The learning-rate "budget" that warmup withholds, in units of full steps: a linear warmup over :math:`T_w` steps
    has :math:`\mathcal{T} = (T_w - 1)/2`. ``steps`` must be long enough that the schedule has reached 1, or the sum is
    a truncation. ``schedule`` follows this module's convention (called with ``t - 1``).
    """
    if not _is_int(steps) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    steps = int(steps)
    factors = np.fromiter((schedule(s) for s in range(steps)), dtype=np.float64, count=steps)
    return float(np.sum(1.0 - factors))
