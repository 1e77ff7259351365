r"""RAdam's rectification term: the paper's first-order :func:`r_t`, the exact :func:`r_t_exact`, and the first step
on which RAdam adapts (:func:`first_adaptive_step`)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from radam.theory._checks import check_beta2 as _check_beta2
from radam.theory.ema import rho_inf, rho_t
from radam.theory.psi import variance_psi_exact

__all__ = ["r_t", "r_t_exact", "first_adaptive_step"]


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
    if not threshold >= 4.0:
        raise ValueError(f"threshold must be at least 4 (the rectifier is undefined below), got {threshold}")
    rho = rho_t(t, beta2)
    rho_max = rho_inf(beta2)
    adaptive = (rho > threshold) & (rho_max > 4.0)
    # Evaluate the formula only where it is real; elsewhere use a harmless stand-in and mask it out.
    safe_rho = np.where(adaptive, rho, 5.0)
    safe_max = np.where(adaptive, rho_max, 5.0)
    ratio = (safe_rho - 4.0) * (safe_rho - 2.0) * safe_max / ((safe_max - 4.0) * (safe_max - 2.0) * safe_rho)
    return np.where(adaptive, np.sqrt(ratio), 0.0)


def r_t_exact(t: ArrayLike, beta2: ArrayLike, threshold: float = 4.0) -> np.ndarray:
    r"""The rectification term from the exact variance of psi instead of the paper's first-order approximation.

    .. math:: r_t^{\text{exact}} = \sqrt{\frac{\operatorname{Var}[\psi]\,|_{\rho_\infty}}
              {\operatorname{Var}[\psi]\,|_{\rho_t}}} \quad\text{if } \rho_t > \text{threshold},
              \qquad 0 \text{ otherwise,}

    with :func:`variance_psi_exact` for both variances (sigma cancels). The exact variance is finite for
    ``rho > 2``, so ``threshold`` may be as low as 2; returns 0 at or below the threshold (no adaptive step) and
    wherever ``rho_inf`` itself does not exceed the threshold. Tends to :func:`r_t` as ``rho_t`` grows.
    """
    if not threshold >= 2.0:
        raise ValueError(f"threshold must be at least 2 (the exact variance is infinite below), got {threshold}")
    rho = rho_t(t, beta2)
    rho_max = rho_inf(beta2)
    adaptive = (rho > threshold) & (rho_max > threshold)
    safe_rho = np.where(adaptive, rho, 5.0)
    safe_max = np.where(adaptive, rho_max, 5.0)
    ratio = variance_psi_exact(safe_max) / variance_psi_exact(safe_rho)
    return np.where(adaptive, np.sqrt(ratio), 0.0)


def first_adaptive_step(beta2: ArrayLike, threshold: float = 4.0) -> np.ndarray:
    r"""The first step ``t`` whose ``rho_t`` exceeds ``threshold``: where RAdam takes its first adaptive step.

    .. math:: t^\star = \min\{t \ge 1 : \rho_t > \text{threshold}\}

    ``rho_t`` increases with ``t`` towards ``rho_inf``, so the answer exists exactly when ``rho_inf > threshold``;
    a ``beta2`` for which it does not exist raises ``ValueError`` (RAdam never adapts there). Returned as int64.
    """
    beta2 = _check_beta2(beta2)
    if not np.all(rho_inf(beta2) > threshold):
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
