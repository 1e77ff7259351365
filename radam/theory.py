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

from math import comb

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import bernoulli, gammaln

__all__ = [
    "rho_inf",
    "rho_t",
    "r_t",
    "r_t_exact",
    "first_adaptive_step",
    "variance_psi_exact",
    "variance_psi_approx",
]


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


def _check_dof(rho: ArrayLike, minimum: float) -> np.ndarray:
    rho = np.asarray(rho, dtype=np.float64)
    if np.any(rho <= minimum):
        raise ValueError(f"the degrees of freedom rho must exceed {minimum:g} here, got {rho}")
    return rho


# Coefficients of the large-x expansion of log(Gamma(x - 1/2) / Gamma(x)) + log(x)/2, from Bernoulli polynomials:
# log Gamma(x+a)/Gamma(x+b) = (a-b) log x + sum_n (-1)^(n+1) [B_{n+1}(a) - B_{n+1}(b)] / (n (n+1) x^n).
def _bernoulli_polynomial(n: int, x: float) -> float:
    numbers = bernoulli(n)
    return float(sum(comb(n, k) * numbers[k] * x ** (n - k) for k in range(n + 1)))


_LOG_GAMMA_RATIO_TERMS = 12
_LOG_GAMMA_RATIO_COEFFS = np.array(
    [
        (-1) ** (n + 1) * (_bernoulli_polynomial(n + 1, -0.5) - _bernoulli_polynomial(n + 1, 0.0)) / (n * (n + 1))
        for n in range(1, _LOG_GAMMA_RATIO_TERMS + 1)
    ]
)
_ASYMPTOTIC_FROM = 10.0  # x = rho/2 from which the series is used (truncation error there about 1e-13, relative)


def _log_q(rho: np.ndarray) -> np.ndarray:
    """log of q = (rho/2 - 1) Gamma((rho-1)/2)^2 / Gamma(rho/2)^2, accurate even when q is within 1e-7 of 1."""
    x = rho / 2.0
    direct = np.log(np.maximum(x - 1.0, 1e-300)) + 2.0 * (gammaln(np.maximum(x - 0.5, 1e-300)) - gammaln(x))
    inv_x = 1.0 / np.maximum(x, _ASYMPTOTIC_FROM)
    series = np.polynomial.polynomial.polyval(inv_x, np.concatenate([[0.0], _LOG_GAMMA_RATIO_COEFFS]))
    asymptotic = np.log1p(-inv_x) + 2.0 * series
    return np.where(x >= _ASYMPTOTIC_FROM, asymptotic, direct)


def variance_psi_exact(rho: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    r"""The exact variance of the adaptive learning rate psi when psi^2 ~ Scale-inv-chi^2(rho, 1/sigma^2).

    With :math:`\psi^2 = \rho / (\sigma^2 X)`, :math:`X \sim \chi^2_\rho`, the moments
    :math:`E[\psi^2] = \rho / ((\rho-2)\sigma^2)` and
    :math:`E[\psi] = \sqrt{\rho}\,\Gamma(\tfrac{\rho-1}{2}) / (\sqrt{2}\,\sigma\,\Gamma(\tfrac{\rho}{2}))`
    (the paper's Eqs. 6 and 7) give

    .. math:: \operatorname{Var}[\psi] = \frac{1}{\sigma^2}\left(\frac{\rho}{\rho-2}
              - \frac{\rho}{2}\,\frac{\Gamma(\frac{\rho-1}{2})^2}{\Gamma(\frac{\rho}{2})^2}\right)
              = \frac{\rho}{(\rho-2)\,\sigma^2}\,(1 - q), \qquad
              q = \left(\frac{\rho}{2}-1\right)\frac{\Gamma(\frac{\rho-1}{2})^2}{\Gamma(\frac{\rho}{2})^2}.

    Finite for every ``rho > 2`` (``ValueError`` otherwise). The two terms in brackets agree to about
    ``log10(rho)`` digits, so the difference is computed as ``-expm1(log q)``, with ``log q`` from log-gamma for
    moderate ``rho`` and from its asymptotic (Bernoulli-polynomial) series for ``rho >= 20``: a relative error below 1e-12
    (checked against 50-digit arithmetic) from ``rho`` just above 2 up to ``rho = 1e6`` and beyond.
    """
    rho = _check_dof(rho, 2.0)
    sigma = np.asarray(sigma, dtype=np.float64)
    return rho / ((rho - 2.0) * sigma**2) * -np.expm1(_log_q(rho))


def variance_psi_approx(rho: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    r"""The paper's first-order (delta-method) approximation of Var[psi] (its Eq. 5), finite for ``rho > 4``.

    .. math:: \operatorname{Var}[\psi] \approx \frac{\operatorname{Var}[\psi^2]}{4\,E[\psi^2]}
              = \frac{\rho}{2(\rho-2)(\rho-4)\,\sigma^2}
    """
    rho = _check_dof(rho, 4.0)
    sigma = np.asarray(sigma, dtype=np.float64)
    return rho / (2.0 * (rho - 2.0) * (rho - 4.0) * sigma**2)


def r_t_exact(t: ArrayLike, beta2: ArrayLike, threshold: float = 4.0) -> np.ndarray:
    r"""The rectification term from the exact variance of psi instead of the paper's first-order approximation.

    .. math:: r_t^{\text{exact}} = \sqrt{\frac{\operatorname{Var}[\psi]\,|_{\rho_\infty}}
              {\operatorname{Var}[\psi]\,|_{\rho_t}}} \quad\text{if } \rho_t > \text{threshold},
              \qquad 0 \text{ otherwise,}

    with :func:`variance_psi_exact` for both variances (sigma cancels). The exact variance is finite for
    ``rho > 2``, so ``threshold`` may be as low as 2; returns 0 at or below the threshold (no adaptive step) and
    wherever ``rho_inf`` itself does not exceed the threshold. Tends to :func:`r_t` as ``rho_t`` grows.
    """
    if threshold < 2.0:
        raise ValueError(f"threshold must be at least 2 (the exact variance is infinite below), got {threshold}")
    rho = rho_t(t, beta2)
    rho_max = rho_inf(beta2)
    adaptive = (rho > threshold) & (rho_max > threshold)
    safe_rho = np.where(adaptive, rho, 5.0)
    safe_max = np.where(adaptive, rho_max, 5.0)
    ratio = variance_psi_exact(safe_max) / variance_psi_exact(safe_rho)
    return np.where(adaptive, np.sqrt(ratio), 0.0)
