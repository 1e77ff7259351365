r"""Learning-rate warmup schedules: the package's one warmup API.

Every schedule here is a callable ``factor(s)`` for :class:`torch.optim.lr_scheduler.LambdaLR` that also takes numpy
arrays, so the same object drives a training run and draws the book's figures.

**Step convention.** ``factor(s)`` takes the number ``s = 0, 1, 2, ...`` of optimiser steps already taken and returns
the multiplier :math:`\omega_t` of the base learning rate for the *next* step, :math:`t = s + 1`. This is how
``LambdaLR`` calls it in the usual loop::

    scheduler = LambdaLR(optimizer, linear_warmup(100))   # calls factor(0): the lr of step t = 1
    for batch in data:
        loss(batch).backward()
        optimizer.step()                                   # step t uses factor(t - 1)
        scheduler.step()                                   # calls factor(t): the lr of step t + 1

so the formulas below, written with the 1-based step :math:`t` of the papers, hold exactly for the step the
optimiser takes: :math:`\alpha_t = \omega_t \alpha`. No schedule here gives the very first step a learning rate of
zero. Called with an int, a schedule returns a float; called with an integer array of completed steps, an array
(:func:`warmup_factors` gives :math:`\omega_1, \dots, \omega_T` directly).

**Lengths in units of** :math:`1/(1-\beta_2)`. Adam's second moment averages about :math:`1/(1-\beta_2)` squared
gradients, and every warmup length that the RAdam debate uses is a multiple of it (:func:`warmup_length`): the
paper's recipe warms up linearly over 4000 steps and freezes Adam-2k for 2000 steps at :math:`\beta_2 = 0.999`, i.e.
:math:`4/(1-\beta_2)` and :math:`2/(1-\beta_2)`; Ma and Yarats' untuned linear warmup lasts :math:`2/(1-\beta_2)`
steps; RAdam's own rectifier, read as a warmup (:func:`radam_warmup`), withholds about :math:`1.03/(1-\beta_2)` steps
of learning rate (:func:`effective_warmup_period`).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from radam import theory
from radam.theory._checks import check_beta2

__all__ = [
    "linear_warmup",
    "untuned_linear_warmup",
    "untuned_exponential_warmup",
    "radam_warmup",
    "warmup_factors",
    "effective_warmup_period",
    "warmup_length",
]

Factor = float | np.ndarray
Schedule = Callable[[ArrayLike], Factor]


def _is_real(value: object) -> bool:
    """A real number, Python's or numpy's, but not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_int(value: object) -> bool:
    """An integer, Python's or numpy's, but not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_beta2(beta2: float) -> float:
    """One ``beta2`` as a float: a real number (not text, not a bool), in (0, 1) by the theory's own check."""
    if not _is_real(beta2):
        raise ValueError(f"beta2 must be a number in the open interval (0, 1), got {beta2!r}")
    return float(check_beta2(beta2))


def _steps(s: ArrayLike) -> np.ndarray:
    """The 1-based steps t = s + 1 of completed-step counts ``s`` (an int or an integer array), checked."""
    s = np.asarray(s)
    if s.dtype.kind not in "iu" and not (s.dtype.kind == "f" and np.all(np.floor(s) == s)):
        raise ValueError(f"the number of completed steps must be an integer, got {s!r}")
    if np.any(s < 0):
        raise ValueError(f"the number of completed steps must be >= 0, got {s!r}")
    return s.astype(np.float64) + 1.0


def _as_factor(s: ArrayLike, values: np.ndarray) -> Factor:
    """A float for a scalar ``s`` (what LambdaLR expects), an array otherwise."""
    return float(values) if np.ndim(s) == 0 else values


def warmup_length(multiple: float, beta2: float) -> int:
    r"""A warmup length of ``multiple`` units of :math:`1/(1-\beta_2)` steps, rounded to whole steps.

    .. math:: T = \operatorname{round}\!\left(\frac{k}{1-\beta_2}\right)

    The book's scaling rule: the paper's recipe (linear warmup over 4000 steps, Adam-2k frozen for 2000, at
    :math:`\beta_2 = 0.999`) is ``k = 4`` and ``k = 2``; Ma and Yarats' untuned warmup is ``k = 2``.
    """
    beta2 = _check_beta2(beta2)
    if not _is_real(multiple) or not multiple > 0:
        raise ValueError(f"multiple must be a positive number, got {multiple!r}")
    return int(round(float(multiple) / (1.0 - beta2)))


def linear_warmup(warmup_steps: int) -> Schedule:
    r"""Linear warmup over ``warmup_steps`` steps, then a constant factor 1.

    .. math:: \omega_t = \min\left(1, \frac{t}{T_w}\right), \qquad t = 1, 2, \dots

    ``warmup_steps = 1`` (or 0) is no warmup at all.
    """
    if not _is_int(warmup_steps) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be a non-negative int, got {warmup_steps!r}")
    length = max(int(warmup_steps), 1)

    def factor(s: ArrayLike) -> Factor:
        return _as_factor(s, np.minimum(1.0, _steps(s) / length))

    return factor


def untuned_linear_warmup(beta2: float) -> Schedule:
    r"""Ma and Yarats' untuned linear warmup: linear over :math:`2/(1-\beta_2)` steps (2000 steps at 0.999).

    .. math:: \omega_t = \min\left(1, \frac{(1-\beta_2)\, t}{2}\right)
    """
    beta2 = _check_beta2(beta2)

    def factor(s: ArrayLike) -> Factor:
        return _as_factor(s, np.minimum(1.0, (1.0 - beta2) * _steps(s) / 2.0))

    return factor


def untuned_exponential_warmup(beta2: float) -> Schedule:
    r"""Ma and Yarats' untuned exponential warmup, with time constant :math:`1/(1-\beta_2)`.

    .. math:: \omega_t = 1 - e^{-(1-\beta_2)\, t}
    """
    beta2 = _check_beta2(beta2)

    def factor(s: ArrayLike) -> Factor:
        return _as_factor(s, -np.expm1(-(1.0 - beta2) * _steps(s)))

    return factor


def radam_warmup(beta2: float, threshold: float = 4.0) -> Schedule:
    r"""RAdam's rectifier read as a warmup of Adam's learning rate (Ma and Yarats' "RAdam warmup").

    .. math:: \omega_t = r_{t + \delta - 1}, \qquad \delta = \min\{t : \rho_t > \text{threshold}\}

    with :math:`r_t` from :func:`radam.theory.r_t` and :math:`\delta` RAdam's first adaptive step
    (:func:`radam.theory.first_adaptive_step`). RAdam takes :math:`\delta - 1` non-adaptive (momentum SGD) steps and
    then multiplies Adam's step by :math:`r_\delta, r_{\delta+1}, \dots`; dropping the non-adaptive steps, step
    ``t`` of this schedule is RAdam's adaptive step number ``t``. This is the book's one definition of RAdam's
    implicit warmup: its :func:`effective_warmup_period` is 1029.3 steps at :math:`\beta_2 = 0.999`, about
    :math:`1.03/(1-\beta_2)`. ``threshold`` is 4 as in the paper (``torch.optim.RAdam`` uses 5, which moves
    :math:`\delta` one step later); it must be at least 4, where :math:`r_t` is defined.
    """
    beta2 = _check_beta2(beta2)
    if not _is_real(threshold) or not threshold >= 4.0:
        raise ValueError(f"threshold must be a number >= 4 (r_t is undefined below), got {threshold!r}")
    threshold = float(threshold)
    try:
        delta = int(theory.first_adaptive_step(beta2, threshold))
    except ValueError:
        raise ValueError(
            f"beta2 = {beta2} gives rho_inf = {float(theory.rho_inf(beta2)):.3g} <= threshold {threshold}: RAdam never "
            "takes an adaptive step, so it has no warmup to read"
        ) from None

    def factor(s: ArrayLike) -> Factor:
        return _as_factor(s, theory.r_t(_steps(s) + delta - 1, beta2, threshold))

    return factor


def warmup_factors(schedule: Schedule, steps: int) -> np.ndarray:
    r"""The factors :math:`\omega_1, \dots, \omega_T` of a schedule's first ``steps`` steps, as an array."""
    if not _is_int(steps) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    return np.asarray(schedule(np.arange(int(steps))), dtype=np.float64)


def effective_warmup_period(schedule: Schedule, steps: int) -> float:
    r"""Ma and Yarats' effective warmup period of a schedule, summed over its first ``steps`` steps.

    .. math:: \mathcal{T}(\omega) = \sum_{t=1}^{T} (1 - \omega_t)

    The learning-rate "budget" that warmup withholds, in units of full steps: a linear warmup over :math:`T_w` steps
    has :math:`\mathcal{T} = (T_w - 1)/2`. ``steps`` must be long enough that the schedule has reached 1, or the sum
    is a truncation: :math:`20/(1-\beta_2)` steps leave less than :math:`e^{-19}` of every schedule here.
    """
    return float(np.sum(1.0 - warmup_factors(schedule, steps)))
