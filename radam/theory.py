"""The quantities of the RAdam paper's analysis, as vectorised numpy functions.

Notation follows Liu et al. (2020), "On the Variance of the Adaptive Learning Rate and Beyond":

* ``beta2`` is Adam's second-moment decay rate, ``t = 1, 2, ...`` the step count;
* ``rho_t`` is the length of the simple moving average (SMA) whose centre of mass matches that of Adam's
  exponential moving average (EMA) of squared gradients after ``t`` steps; it plays the role of the degrees of
  freedom of the scaled inverse chi-square distribution of the squared adaptive learning rate;
* ``r_t`` is the rectification term that multiplies Adam's adaptive step once ``rho_t`` is large enough.

Every function accepts scalars or numpy arrays (broadcast against each other) and returns numpy float64 values.
No function returns ``nan`` or ``None``: where a formula is undefined (below a threshold) the function says what it
returns instead, in its docstring.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["rho_inf", "rho_t", "r_t", "first_adaptive_step"]


def _check_beta2(beta2: ArrayLike) -> np.ndarray:
    beta2 = np.asarray(beta2, dtype=np.float64)
    if np.any((beta2 <= 0.0) | (beta2 >= 1.0)):
        raise ValueError(f"beta2 must lie in the open interval (0, 1), got {beta2}")
    return beta2


def _check_step(t: ArrayLike) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if np.any(t < 1.0):
        raise ValueError(f"the step count t starts at 1, got {t}")
    return t


def rho_inf(beta2: ArrayLike) -> np.ndarray:
    r"""The maximum length of the approximating SMA, reached as ``t`` goes to infinity.

    .. math:: \rho_\infty = \frac{2}{1-\beta_2} - 1
    """
    beta2 = _check_beta2(beta2)
    return 2.0 / (1.0 - beta2) - 1.0


def rho_t(t: ArrayLike, beta2: ArrayLike) -> np.ndarray:
    r"""The length of the SMA whose centre of mass matches Adam's EMA after ``t`` steps (the paper's Eq. 4).

    .. math:: \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t}

    ``rho_t(1, beta2) == 1`` for every ``beta2``: one squared gradient is an average of one sample. ``beta2**t`` is
    computed as ``exp(t log beta2)`` and ``1 - beta2**t`` with ``expm1`` so that large ``t`` and ``beta2`` close to 1
    keep full precision.
    """
    t = _check_step(t)
    beta2 = _check_beta2(beta2)
    log_beta2 = np.log(beta2)
    beta2_t = np.exp(t * log_beta2)
    one_minus_beta2_t = -np.expm1(t * log_beta2)
    return rho_inf(beta2) - 2.0 * t * beta2_t / one_minus_beta2_t


def r_t(t: ArrayLike, beta2: ArrayLike, threshold: float = 4.0) -> np.ndarray:
    r"""The paper's rectification term, from the first-order (delta-method) variance of the adaptive learning rate.

    .. math:: r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}
              \quad\text{if } \rho_t > \text{threshold}, \qquad r_t = 0 \text{ otherwise.}

    The formula is real only for ``rho_t > 4`` (the approximate variance is finite only there), so ``threshold``
    must be at least 4; the paper uses 4, ``torch.optim.RAdam`` and the official code use 5. Below or at the
    threshold RAdam takes no adaptive step at all, and this function returns exactly 0 there: ``r_t`` is then the
    multiplier of the adaptive step, and that step is switched off. It also requires ``rho_inf > 4``, i.e.
    ``beta2 > 0.6``; for smaller ``beta2`` RAdam never adapts and every ``r_t`` is 0.
    """
    if threshold < 4.0:
        raise ValueError(f"threshold must be at least 4 (the rectifier is undefined below), got {threshold}")
    rho = rho_t(t, beta2)
    rho_max = rho_inf(beta2)
    adaptive = (rho > threshold) & (rho_max > 4.0)
    # Evaluate the formula only where it is real; elsewhere use a harmless stand-in and mask it out.
    safe_rho = np.where(adaptive, rho, 5.0)
    safe_max = np.where(adaptive, rho_max, 5.0)
    ratio = (safe_rho - 4.0) * (safe_rho - 2.0) * safe_max / ((safe_max - 4.0) * (safe_max - 2.0) * safe_rho)
    return np.where(adaptive, np.sqrt(ratio), 0.0)


def first_adaptive_step(beta2: ArrayLike, threshold: float = 4.0) -> np.ndarray:
    r"""The first step ``t`` whose ``rho_t`` exceeds ``threshold``: where RAdam takes its first adaptive step.

    .. math:: t^\star = \min\{t \ge 1 : \rho_t > \text{threshold}\}

    ``rho_t`` increases with ``t`` towards ``rho_inf``, so the answer exists exactly when ``rho_inf > threshold``;
    a ``beta2`` for which it does not exist raises ``ValueError`` (RAdam never adapts there). Returned as int64.
    """
    beta2 = _check_beta2(beta2)
    if np.any(rho_inf(beta2) <= threshold):
        raise ValueError(
            f"rho_inf = 2/(1-beta2) - 1 must exceed the threshold {threshold} for an adaptive step to exist; "
            f"got beta2 = {beta2}"
        )
    beta2_flat = np.atleast_1d(beta2).ravel()
    steps = np.empty(beta2_flat.shape, dtype=np.int64)
    for i, b in enumerate(beta2_flat):
        # rho_t increases with t: bracket the first crossing by doubling, then bisect.
        hi = 1
        while rho_t(hi, b) <= threshold:
            hi *= 2
        lo = hi // 2  # rho_t(lo) <= threshold, or lo == 0
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if rho_t(mid, b) > threshold:
                hi = mid
            else:
                lo = mid
        steps[i] = hi
    return steps.reshape(np.shape(beta2))
