r"""Adam's exponential moving average (EMA) of squared gradients, treated as a simple moving average (SMA).

The bias-corrected EMA after ``t`` steps weighs the squared gradients with :func:`ema_weights`. The SMA whose centre of
mass matches the EMA's (the paper's Eq. 4) has the length :math:`\rho_t` (:func:`rho_t`), which grows towards
:math:`\rho_\infty` (:func:`rho_inf`) and plays the role of the degrees of freedom of the law of the squared adaptive
learning rate. Kish's effective sample size (:func:`kish_effective_sample_size`) is another reading of the same
weights. Every function accepts scalars or numpy arrays and returns float64.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from radam.theory._checks import check_beta2 as _check_beta2
from radam.theory._checks import check_step as _check_step

__all__ = [
    "rho_inf",
    "rho_t",
    "ema_weights",
    "ema_centre_of_mass",
    "sma_centre_of_mass",
    "sma_length",
    "sma_length_numeric",
    "kish_effective_sample_size",
    "kish_effective_sample_size_of_weights",
]


def rho_inf(beta2: ArrayLike) -> np.ndarray:
    r"""The maximum length of the approximating SMA, reached as ``t`` goes to infinity.

    .. math:: \rho_\infty = \frac{2}{1-\beta_2} - 1
    """
    beta2 = _check_beta2(beta2)
    return 2.0 / (1.0 - beta2) - 1.0


def rho_t(t: ArrayLike, beta2: ArrayLike) -> np.ndarray:
    r"""The length of the SMA whose centre of mass matches Adam's EMA after ``t`` steps (solving the paper's Eq. 4).

    .. math:: \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t} = 1 + 2\,a_t

    with :math:`a_t` the mean age of the EMA's samples (:func:`ema_centre_of_mass`). ``rho_t(1, beta2) == 1`` for
    every ``beta2``: one squared gradient is an average of one sample. While :math:`t(1-\beta_2)` is small the two
    terms of the first form are nearly equal, large numbers (about :math:`2/(1-\beta_2)`), and their difference would
    lose digits, so there the second form is used, whose mean age is computed without cancellation; otherwise the
    first, with ``beta2**t`` as ``exp(t log beta2)`` and ``1 - beta2**t`` with ``expm1``.
    """
    t = _check_step(t)
    beta2 = _check_beta2(beta2)
    x = -np.log(beta2)
    tx = t * x
    from_mean_age = 1.0 + 2.0 * _ema_mean_age(t, x)
    # t beta2^t as exp(log t - t x): neither factor overflows, even for t near the largest float
    from_difference = rho_inf(beta2) - 2.0 * np.exp(np.log(t) - tx) / -np.expm1(-tx)
    rho = np.where(tx < 1.0, from_mean_age, from_difference)
    return np.where(t == 1.0, 1.0, rho)  # exactly 1 at the first step, whatever rounding the forms above do


def ema_weights(t: int, beta2: float) -> np.ndarray:
    r"""The weights of the bias-corrected EMA after ``t`` steps, on the squared gradients ``g_1^2 .. g_t^2``.

    .. math:: w_i = \frac{(1-\beta_2)\,\beta_2^{t-i}}{1-\beta_2^t}, \qquad i = 1, \dots, t,
              \qquad \sum_{i=1}^t w_i = 1.

    Returned in the order ``i = 1 .. t`` (oldest first), so the newest gradient has the largest weight.
    """
    _check_beta2(beta2)
    t = int(t)
    if t < 1:
        raise ValueError(f"the step count t starts at 1, got {t}")
    age = np.arange(t - 1, -1, -1, dtype=np.float64)  # t - i
    return (1.0 - beta2) * np.exp(age * np.log(beta2)) / -np.expm1(t * np.log(beta2))


def ema_centre_of_mass(t: ArrayLike, beta2: ArrayLike) -> np.ndarray:
    r"""The centre of mass of the EMA weights: the weighted mean index of the samples (left side of the paper's Eq. 4).

    .. math:: c_{\text{EMA}}(t) = \sum_{i=1}^t w_i\, i
              = \frac{(1-\beta_2)\sum_{i=1}^t \beta_2^{t-i}\, i}{1-\beta_2^t}
              = t - \frac{\beta_2}{1-\beta_2} + \frac{t\,\beta_2^t}{1-\beta_2^t}

    The last two terms are minus the mean age :math:`\sum_i w_i (t-i)` of the samples, which is evaluated in a
    form that keeps full precision when :math:`t(1-\beta_2)` is small.
    """
    t = _check_step(t)
    beta2 = _check_beta2(beta2)
    return t - _ema_mean_age(t, -np.log(beta2))


# h(y) = 1/(e^y - 1) - 1/y + 1/2 = sum_k B_2k y^(2k-1) / (2k)!, the smooth part of 1/(e^y - 1).
_H_SERIES = np.array([1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160])


def _h(y: np.ndarray) -> np.ndarray:
    small = np.minimum(y, 0.1)
    series = small * np.polynomial.polynomial.polyval(small * small, _H_SERIES)
    large = np.maximum(y, 0.1)
    direct = 1.0 / np.expm1(np.minimum(large, 700.0)) - 1.0 / large + 0.5  # 1/(e^700 - 1) < 1e-300: no overflow
    return np.where(y < 0.1, series, direct)


def _ema_mean_age(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """sum_a a e^(-x a) / sum_a e^(-x a) over a = 0 .. t-1, i.e. beta2/(1-beta2) - t beta2^t/(1-beta2^t) with
    x = -log(beta2), written as (t-1)/2 + h(x) - t h(t x) so that small t x loses no digits."""
    return (t - 1.0) / 2.0 + _h(x) - t * _h(t * x)


def sma_centre_of_mass(f: ArrayLike, t: ArrayLike) -> np.ndarray:
    r"""The centre of mass of a simple moving average of the last ``f`` of ``t`` samples (right side of Eq. 4).

    .. math:: c_{\text{SMA}}(f, t) = \frac{1}{f}\sum_{i=1}^{f} (t + 1 - i) = t - \frac{f - 1}{2}

    The closed form is linear in ``f`` and is used for non-integer ``f`` as well.
    """
    return np.asarray(t, dtype=np.float64) - (np.asarray(f, dtype=np.float64) - 1.0) / 2.0


def sma_length(t: ArrayLike, beta2: ArrayLike) -> np.ndarray:
    r"""The length ``f(t, beta2)`` of the SMA whose centre of mass equals the EMA's: the closed form, i.e. ``rho_t``.

    .. math:: c_{\text{SMA}}(f, t) = c_{\text{EMA}}(t) \iff
              f(t, \beta_2) = \frac{2}{1-\beta_2} - 1 - \frac{2 t \beta_2^t}{1-\beta_2^t} = \rho_t

    Identical to :func:`rho_t`; :func:`sma_length_numeric` solves the same equation by root finding.
    """
    return rho_t(t, beta2)


def sma_length_numeric(t: int, beta2: float) -> float:
    r"""Solve the centre-of-mass equation for the SMA length numerically, as a check of :func:`sma_length`.

    .. math:: \text{find } f:\quad \sum_{i=1}^t w_i\,(t - i) = \frac{f-1}{2}
              \quad\left(\iff c_{\text{EMA}}(t) = c_{\text{SMA}}(f, t)\right)

    The EMA's side is summed directly from :func:`ema_weights` (no closed form), written as the mean *age* of the
    samples so that no digits are lost to the subtraction from ``t``; the root is found by ``scipy.optimize.brentq``
    on ``[0, 2t + 1]``.
    """
    from scipy import optimize

    weights = ema_weights(t, beta2)
    mean_age = float(np.sum(weights * np.arange(t - 1, -1, -1, dtype=np.float64)))
    return optimize.brentq(lambda f: (f - 1.0) / 2.0 - mean_age, 0.0, 2.0 * t + 1.0, xtol=1e-13, rtol=1e-15)


def kish_effective_sample_size(t: ArrayLike, beta2: ArrayLike) -> np.ndarray:
    r"""Kish's effective sample size of the EMA weights: an alternative to ``rho_t`` for the degrees of freedom.

    .. math:: n_{\text{eff}}(t) = \frac{\left(\sum_i w_i\right)^2}{\sum_i w_i^2}
              = \frac{(1+\beta_2)(1-\beta_2^t)}{(1-\beta_2)(1+\beta_2^t)}
              = \rho_\infty \tanh\!\left(\frac{-t \ln \beta_2}{2}\right)

    It is also the Welch-Satterthwaite degrees of freedom: the scaled :math:`\chi^2_\nu` with the same mean and
    variance as :math:`\sum_i w_i g_i^2` (for i.i.d. zero-mean Gaussian :math:`g_i`) has :math:`\nu = n_{\text{eff}}`.
    Equal to 1 at ``t = 1`` and tending to :math:`\rho_\infty` like ``rho_t``, but never smaller than ``rho_t``.
    """
    t = _check_step(t)
    beta2 = _check_beta2(beta2)
    return rho_inf(beta2) * np.tanh(-t * np.log(beta2) / 2.0)


def kish_effective_sample_size_of_weights(weights: ArrayLike, axis: int = -1) -> np.ndarray:
    r"""Kish's effective sample size of arbitrary non-negative weights (a numeric check of the closed form).

    .. math:: n_{\text{eff}} = \frac{\left(\sum_i w_i\right)^2}{\sum_i w_i^2}
    """
    weights = np.asarray(weights, dtype=np.float64)
    return np.sum(weights, axis=axis) ** 2 / np.sum(weights**2, axis=axis)
