"""The quantities of the RAdam paper's analysis, as vectorised numpy functions.

Notation follows Liu et al. (2020), "On the Variance of the Adaptive Learning Rate and Beyond":

* ``beta2`` is Adam's second-moment decay rate, ``t = 1, 2, ...`` the step count;
* ``rho_t`` is the length of the simple moving average (SMA) whose centre of mass matches that of Adam's
  exponential moving average (EMA) of squared gradients after ``t`` steps; it plays the role of the degrees of
  freedom of the scaled inverse chi-square distribution of the squared adaptive learning rate;
* ``r_t`` is the rectification term that multiplies Adam's adaptive step once ``rho_t`` is large enough.

The module has four parts (the book's chapters 2 to 4 use them): the rectification quantities above; the
adaptive learning rate ``psi`` and the scaled inverse chi-square law of its square, with its exact mean and variance,
the paper's first-order approximation and a Monte Carlo estimate with its standard error; the EMA treated as an SMA
(centre of mass, ``rho_t`` by root finding, Kish's effective sample size, and the exact moments of ``psi`` for the
EMA itself); and the streaming simulation of the paper's Figure 9. RAdam read as a warmup schedule, the untuned
warmups and the effective warmup period live in :mod:`radam.schedules`, the package's one warmup API.

Unless a docstring says otherwise, every function accepts scalars or numpy arrays (broadcast against each other)
and returns numpy float64 values.
No function returns ``nan`` or ``None``: where a formula is undefined (below a threshold) the function says what it
returns instead, in its docstring.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import bernoulli, gammaln

if TYPE_CHECKING:  # scipy.stats, .integrate and .optimize are imported where used: `import radam` stays fast
    import scipy.stats

__all__ = [
    "rho_inf",
    "rho_t",
    "r_t",
    "r_t_exact",
    "first_adaptive_step",
    "variance_psi_exact",
    "variance_psi_approx",
    # the adaptive learning rate and its distribution
    "psi_squared",
    "psi",
    "scaled_inv_chi2",
    "sample_psi",
    "mean_psi_squared",
    "variance_psi_squared",
    "mean_psi_exact",
    "variance_psi_monte_carlo",
    "MonteCarloEstimate",
    # the EMA treated as an SMA
    "ema_weights",
    "ema_centre_of_mass",
    "sma_centre_of_mass",
    "sma_length",
    "sma_length_numeric",
    "kish_effective_sample_size",
    "kish_effective_sample_size_of_weights",
    "weighted_chi2_psi_moments",
    "ema_psi_moments",
    # the paper's Figure 9 simulation
    "simulate_adaptive_lr_variance",
    "AdaptiveLRVariance",
]


def _check_beta2(beta2: ArrayLike) -> np.ndarray:
    beta2 = np.asarray(beta2, dtype=np.float64)
    if not np.all((beta2 > 0.0) & (beta2 < 1.0)):  # written so that nan fails too
        raise ValueError(f"beta2 must lie in the open interval (0, 1), got {beta2}")
    return beta2


def _check_step(t: ArrayLike) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if not np.all((t >= 1.0) & np.isfinite(t)):
        raise ValueError(f"the step count t is a finite number starting at 1, got {t}")
    return t


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
    from_difference = rho_inf(beta2) - 2.0 * t * np.exp(-tx) / -np.expm1(-tx)
    return np.where(tx < 1.0, from_mean_age, from_difference)


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


def _check_dof(rho: ArrayLike, minimum: float) -> np.ndarray:
    rho = np.asarray(rho, dtype=np.float64)
    if not np.all(rho > minimum):  # written so that nan fails too
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
    if not threshold >= 2.0:
        raise ValueError(f"threshold must be at least 2 (the exact variance is infinite below), got {threshold}")
    rho = rho_t(t, beta2)
    rho_max = rho_inf(beta2)
    adaptive = (rho > threshold) & (rho_max > threshold)
    safe_rho = np.where(adaptive, rho, 5.0)
    safe_max = np.where(adaptive, rho_max, 5.0)
    ratio = variance_psi_exact(safe_max) / variance_psi_exact(safe_rho)
    return np.where(adaptive, np.sqrt(ratio), 0.0)


# ---------------------------------------------------------------------------------------------------------------------
# The adaptive learning rate psi and the distribution of its square
# ---------------------------------------------------------------------------------------------------------------------


def psi_squared(grads: ArrayLike, beta2: float, axis: int = -1) -> np.ndarray:
    r"""The square of Adam's bias-corrected adaptive learning rate after the gradients ``g_1 .. g_t`` along ``axis``.

    .. math:: \psi_t^2 = \frac{1-\beta_2^t}{(1-\beta_2)\sum_{i=1}^t \beta_2^{t-i} g_i^2}
              = \frac{1}{\sum_{i=1}^t w_i\, g_i^2}, \qquad w_i = \frac{(1-\beta_2)\,\beta_2^{t-i}}{1-\beta_2^t},

    i.e. one over the bias-corrected EMA of squared gradients, without Adam's ``eps``. ``t`` is the length of
    ``grads`` along ``axis``; the other axes are independent coordinates or runs. The weights are
    :func:`ema_weights`. Returns ``inf`` where every gradient is zero.
    """
    grads = np.moveaxis(np.asarray(grads, dtype=np.float64), axis, -1)
    weights = ema_weights(grads.shape[-1], beta2)
    with np.errstate(divide="ignore"):
        return 1.0 / (grads**2 @ weights)


def psi(grads: ArrayLike, beta2: float, axis: int = -1) -> np.ndarray:
    r"""Adam's bias-corrected adaptive learning rate after the gradients ``g_1 .. g_t`` along ``axis``.

    .. math:: \psi_t = \sqrt{\frac{1-\beta_2^t}{(1-\beta_2)\sum_{i=1}^t \beta_2^{t-i} g_i^2}}

    The square root of :func:`psi_squared`; Adam's update is :math:`\alpha\,\hat m_t\,\psi_t` (without ``eps``).
    """
    return np.sqrt(psi_squared(grads, beta2, axis))


def scaled_inv_chi2(rho: float, sigma: float = 1.0) -> scipy.stats.rv_continuous:
    r"""The scaled inverse chi-square distribution the paper assumes for :math:`\psi^2`, as a frozen scipy distribution.

    .. math:: \psi^2 \sim \text{Scale-inv-}\chi^2\!\left(\rho, \tfrac{1}{\sigma^2}\right)
              \iff \psi^2 = \frac{\rho}{\sigma^2 X},\; X \sim \chi^2_\rho
              \iff \psi^2 \sim \text{Inv-Gamma}\!\left(\tfrac{\rho}{2}, \tfrac{\rho}{2\sigma^2}\right),

    with density :math:`p(x) = \frac{(\rho/(2\sigma^2))^{\rho/2}}{\Gamma(\rho/2)}\, x^{-1-\rho/2}
    e^{-\rho/(2\sigma^2 x)}`. It is ``scipy.stats.invgamma(rho / 2, scale=rho / (2 sigma**2))``: an SMA of ``rho``
    squared zero-mean Gaussian gradients of variance ``sigma**2``, inverted, has exactly this law.
    """
    from scipy import stats

    if rho <= 0:
        raise ValueError(f"the degrees of freedom rho must be positive, got {rho}")
    return stats.invgamma(rho / 2.0, scale=rho / (2.0 * sigma**2))


def sample_psi(rho: float, size: int | tuple[int, ...], rng: np.random.Generator, sigma: float = 1.0) -> np.ndarray:
    r"""Draw ``psi`` with :math:`\psi^2 \sim \text{Scale-inv-}\chi^2(\rho, 1/\sigma^2)` (:func:`scaled_inv_chi2`).

    .. math:: \psi = \sqrt{\psi^2}, \qquad
              \psi^2 \sim \text{Inv-Gamma}\!\left(\tfrac{\rho}{2}, \tfrac{\rho}{2\sigma^2}\right)

    The draws come from scipy's sampler driven by the given numpy ``Generator``, so a seeded generator gives the
    same samples on every run.
    """
    return np.sqrt(scaled_inv_chi2(rho, sigma).rvs(size=size, random_state=rng))


def mean_psi_squared(rho: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    r"""The mean of :math:`\psi^2 \sim \text{Scale-inv-}\chi^2(\rho, 1/\sigma^2)`, finite for ``rho > 2``.

    .. math:: E[\psi^2] = \frac{\rho}{(\rho-2)\,\sigma^2}
    """
    rho = _check_dof(rho, 2.0)
    return rho / ((rho - 2.0) * np.asarray(sigma, dtype=np.float64) ** 2)


def variance_psi_squared(rho: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    r"""The variance of :math:`\psi^2 \sim \text{Scale-inv-}\chi^2(\rho, 1/\sigma^2)`, finite for ``rho > 4``.

    .. math:: \operatorname{Var}[\psi^2] = \frac{2\rho^2}{(\rho-2)^2(\rho-4)\,\sigma^4}
    """
    rho = _check_dof(rho, 4.0)
    return 2.0 * rho**2 / ((rho - 2.0) ** 2 * (rho - 4.0) * np.asarray(sigma, dtype=np.float64) ** 4)


def _log_sqrt_x_gamma_ratio(x: np.ndarray) -> np.ndarray:
    """log( sqrt(x) Gamma(x - 1/2) / Gamma(x) ) for x > 1/2, with full relative precision for large x."""
    direct = 0.5 * np.log(x) + gammaln(np.maximum(x - 0.5, 1e-300)) - gammaln(x)
    inv_x = 1.0 / np.maximum(x, _ASYMPTOTIC_FROM)
    series = np.polynomial.polynomial.polyval(inv_x, np.concatenate([[0.0], _LOG_GAMMA_RATIO_COEFFS]))
    return np.where(x >= _ASYMPTOTIC_FROM, series, direct)


def mean_psi_exact(rho: ArrayLike, sigma: ArrayLike = 1.0) -> np.ndarray:
    r"""The exact mean of ``psi`` when :math:`\psi^2 \sim \text{Scale-inv-}\chi^2(\rho, 1/\sigma^2)` (paper's Eq. 7).

    .. math:: E[\psi] = \frac{1}{\sigma}\sqrt{\frac{\rho}{2}}\,
              \frac{\Gamma(\frac{\rho-1}{2})}{\Gamma(\frac{\rho}{2})}

    Finite for every ``rho > 1`` (``ValueError`` otherwise). The ratio of gamma functions is evaluated as the
    exponential of a difference of log-gamma values, and for ``rho >= 20`` from the same asymptotic series that
    :func:`variance_psi_exact` uses, so that neither the gamma functions nor their ratio overflow; the result tends
    to :math:`1/\sigma` as ``rho`` grows.
    """
    rho = _check_dof(rho, 1.0)
    return np.exp(_log_sqrt_x_gamma_ratio(rho / 2.0)) / np.asarray(sigma, dtype=np.float64)


@dataclass(frozen=True)
class MonteCarloEstimate:
    r"""A Monte Carlo estimate of ``Var[psi]`` with its standard error.

    ``value`` is the unbiased sample variance :math:`s^2` of ``n_samples`` independent draws of ``psi``;
    ``standard_error`` estimates the standard deviation of :math:`s^2` itself (see
    :func:`variance_psi_monte_carlo`); ``mean`` is the sample mean of ``psi``.
    """

    value: float
    standard_error: float
    mean: float
    n_samples: int


def variance_psi_monte_carlo(
    rho: float,
    n_samples: int,
    rng: np.random.Generator,
    sigma: float = 1.0,
    chunk: int = 1_000_000,
) -> MonteCarloEstimate:
    r"""Estimate ``Var[psi]`` by sampling (:func:`sample_psi`), with the standard error of the estimate.

    With :math:`s^2` the unbiased sample variance of :math:`n` draws, :math:`\mu_4` their fourth central moment,

    .. math:: \operatorname{Var}[s^2] = \frac{1}{n}\left(\mu_4 - \frac{n-3}{n-1}\,\sigma_\psi^4\right),
              \qquad \widehat{\mathrm{SE}} = \sqrt{\frac{1}{n}\left(m_4 - \frac{n-3}{n-1}\, s^4\right)},

    with the sample fourth central moment :math:`m_4` in place of :math:`\mu_4`. The samples are drawn in chunks of
    ``chunk`` and only power sums are kept, so memory stays small for any ``n_samples``.

    How far to trust it: :math:`s^2` is consistent for ``rho > 2`` (where ``Var[psi]`` is finite), but its own
    variance needs :math:`E[\psi^4] < \infty`, i.e. ``rho > 4``, and the standard error *estimate* is itself
    reliable only when :math:`E[\psi^8] < \infty`, i.e. ``rho > 8``. For ``2 < rho <= 8`` the draws are heavy-tailed:
    :math:`s^2` is usually a little too small and now and then far too large, and the reported standard error
    moves with it.
    """
    if n_samples < 2:
        raise ValueError(f"need at least two samples, got {n_samples}")
    shift = None
    power_sums = np.zeros(5)  # n, sum d, sum d^2, sum d^3, sum d^4 with d = psi - shift
    remaining = n_samples
    while remaining > 0:
        draws = sample_psi(rho, min(chunk, remaining), rng, sigma)
        if shift is None:
            shift = float(np.mean(draws))  # centring near the mean keeps the power sums well conditioned
        d = draws - shift
        d2 = d * d
        power_sums += [d.size, d.sum(), d2.sum(), (d2 * d).sum(), (d2 * d2).sum()]
        remaining -= d.size
    n = power_sums[0]
    m1 = power_sums[1] / n
    raw2, raw3, raw4 = power_sums[2] / n, power_sums[3] / n, power_sums[4] / n
    m2 = raw2 - m1**2
    m4 = raw4 - 4.0 * m1 * raw3 + 6.0 * m1**2 * raw2 - 3.0 * m1**4
    s2 = m2 * n / (n - 1.0)
    var_s2 = (m4 - (n - 3.0) / (n - 1.0) * s2**2) / n
    return MonteCarloEstimate(
        value=float(s2), standard_error=float(np.sqrt(max(var_s2, 0.0))), mean=float(shift + m1), n_samples=int(n)
    )


# ---------------------------------------------------------------------------------------------------------------------
# The EMA treated as a simple moving average
# ---------------------------------------------------------------------------------------------------------------------


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


def weighted_chi2_psi_moments(weights: ArrayLike) -> tuple[float, float]:
    r"""The exact mean and variance of :math:`\psi = S^{-1/2}`, :math:`S = \sum_i w_i Z_i^2`, i.i.d. standard normal Z.

    No scaled-inverse-chi-square assumption: the negative moments of ``S`` come from its Laplace transform
    :math:`E[e^{-uS}] = \prod_i (1 + 2 w_i u)^{-1/2}` and
    :math:`E[S^{-s}] = \frac{1}{\Gamma(s)}\int_0^\infty u^{s-1}\, E[e^{-uS}]\, du`, so

    .. math:: E[\psi] = \frac{2}{\sqrt{\pi}}\int_0^\infty \prod_i (1 + 2 w_i v^2)^{-1/2}\, dv, \qquad
              E[\psi^2] = \int_0^\infty \prod_i (1 + 2 w_i u)^{-1/2}\, du,

    each one a one-dimensional integral done by ``scipy.integrate.quad``. The mean needs at least two positive
    weights and the variance at least three (otherwise the integrals diverge; ``ValueError``). With the equal
    weights :math:`w_i = 1/\rho` this reproduces :func:`mean_psi_exact` and :func:`variance_psi_exact`.
    """
    from scipy import integrate

    weights = np.asarray(weights, dtype=np.float64)
    if not np.all(np.isfinite(weights) & (weights >= 0)):
        raise ValueError(f"the weights must be finite and non-negative, got {weights}")
    weights = weights[weights > 0]
    if weights.size < 3:
        raise ValueError(f"Var[psi] is finite only with at least three positive weights, got {weights.size}")
    # S = c S' with c = sum(w) and S' the sum with normalised weights, so psi = psi' / sqrt(c): integrate for psi',
    # whose integrands fall off on the scale 1, and rescale.
    total = float(np.sum(weights))
    two_w = 2.0 * weights / total

    def laplace(u: float) -> float:
        return float(np.exp(-0.5 * np.sum(np.log1p(two_w * u))))

    opts = dict(epsabs=0.0, epsrel=1e-12, limit=200)
    pieces = [(0.0, 1.0), (1.0, np.inf)]  # split where the integrands turn from flat to decaying
    mean = 2.0 / np.sqrt(np.pi) * sum(integrate.quad(lambda v: laplace(v * v), a, b, **opts)[0] for a, b in pieces)
    second = sum(integrate.quad(laplace, a, b, **opts)[0] for a, b in pieces)
    return float(mean / np.sqrt(total)), float((second - mean**2) / total)


def ema_psi_moments(t: int, beta2: float) -> tuple[float, float]:
    r"""The exact mean and variance of Adam's adaptive learning rate :math:`\psi_t` itself (no SMA approximation).

    For i.i.d. :math:`g_i \sim N(0, \sigma^2)` with :math:`\sigma = 1`,
    :math:`\psi_t^2 = 1/\sum_{i=1}^t w_i g_i^2` with the EMA weights of :func:`ema_weights`, and
    :func:`weighted_chi2_psi_moments` gives

    .. math:: \left(E[\psi_t],\ \operatorname{Var}[\psi_t]\right), \qquad t \ge 3.

    The truth that the EMA-as-SMA approximation :math:`\operatorname{Var}[\psi_t] \approx
    \operatorname{Var}[\psi]\,|_{\rho = \rho_t}` is measured against; for another :math:`\sigma` divide the mean by
    :math:`\sigma` and the variance by :math:`\sigma^2`.
    """
    return weighted_chi2_psi_moments(ema_weights(t, beta2))


# ---------------------------------------------------------------------------------------------------------------------
# The paper's Figure 9: the variance of the adaptive learning rate, with and without rectification, by simulation
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdaptiveLRVariance:
    r"""The result of :func:`simulate_adaptive_lr_variance`.

    ``steps`` holds ``t = 1 .. n_steps``; ``mu`` the gradient means; ``var_psi[k, t-1]`` the variance across runs
    of :math:`\psi_t = 1/\sqrt{\hat v_t}` for ``mu[k]``; ``var_rectified[k, t-1]`` the variance of
    :math:`r_t \psi_t`, i.e. ``r[t-1]**2 * var_psi[k, t-1]`` (0 where RAdam takes no adaptive step);
    ``r`` the rectification terms used.
    """

    steps: np.ndarray
    mu: np.ndarray
    var_psi: np.ndarray
    var_rectified: np.ndarray
    r: np.ndarray
    beta2: float
    n_runs: int


def simulate_adaptive_lr_variance(
    mu: ArrayLike = (0.0, 0.001, 0.01, 0.1, 1.0, 10.0),
    n_runs: int = 5000,
    n_steps: int = 6000,
    beta2: float = 0.999,
    sigma: float = 1.0,
    seed: int = 0,
    threshold: float = 4.0,
    exact: bool = False,
) -> AdaptiveLRVariance:
    r"""Simulate the variance of Adam's adaptive learning rate with and without rectification (the paper's Fig. 9).

    For every mean :math:`\mu` and each of ``n_runs`` independent runs, gradients :math:`g_t \sim N(\mu, \sigma^2)`
    feed the bias-corrected second moment; per step the variance across runs is taken of

    .. math:: \psi_t = \frac{1}{\sqrt{\hat v_t}}, \quad
              \hat v_t = \frac{v_t}{1-\beta_2^t}, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2, \qquad
              \text{and of } r_t\,\psi_t,

    with :func:`r_t` (or :func:`r_t_exact` if ``exact``) at ``threshold``. The loop streams over the steps: the
    state is one ``(len(mu), n_runs)`` array and the outputs are ``(len(mu), n_steps)``, never runs by steps. The
    gradients come from ``numpy.random.default_rng(seed)``. The paper's size (6 means, 5,000 runs, 6,000 steps)
    takes 3 to 4.5 seconds on a 2-core CPU (measured on an AMD EPYC virtual machine), with under a megabyte of
    working memory besides the outputs.
    """
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n_steps + 1)
    rectifier = r_t_exact if exact else r_t
    r = rectifier(steps, beta2, threshold=threshold)
    bias_correction = -np.expm1(steps * np.log(beta2))  # 1 - beta2^t
    v = np.zeros((mu.size, n_runs))
    var_psi = np.empty((mu.size, n_steps))
    grad = np.empty_like(v)
    for k in range(n_steps):
        rng.standard_normal(out=grad)
        grad *= sigma
        grad += mu[:, None]
        v *= beta2
        v += (1.0 - beta2) * grad * grad
        var_psi[:, k] = np.var(np.sqrt(bias_correction[k] / v), axis=1, ddof=1)
    return AdaptiveLRVariance(
        steps=steps, mu=mu, var_psi=var_psi, var_rectified=r**2 * var_psi, r=r, beta2=float(beta2), n_runs=int(n_runs)
    )
