r"""The variance of psi estimated by sampling, with the standard error of the estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radam.theory.psi import sample_psi

__all__ = ["MonteCarloEstimate", "variance_psi_monte_carlo"]


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
