r"""The ratio of gamma functions in the moments of psi, with full precision for large arguments.

The exact mean and variance of the adaptive learning rate (:func:`radam.theory.mean_psi_exact`,
:func:`radam.theory.variance_psi_exact`) need
:math:`\Gamma(x - \tfrac12)/\Gamma(x)` at :math:`x = \rho/2`, and the variance needs the logarithm of

.. math:: q = \left(\frac{\rho}{2}-1\right)\frac{\Gamma(\frac{\rho-1}{2})^2}{\Gamma(\frac{\rho}{2})^2},

which is within :math:`1/\rho` of 1, so that :math:`1 - q` loses digits unless :math:`\log q` is accurate. For
:math:`x \ge` :data:`ASYMPTOTIC_FROM` both come from the large-:math:`x` series with the coefficients
:data:`LOG_GAMMA_RATIO_COEFFS` (from Bernoulli polynomials),

.. math:: \log\frac{\Gamma(x+a)}{\Gamma(x+b)} = (a-b)\log x
          + \sum_{n\ge1} \frac{(-1)^{n+1}\,[B_{n+1}(a) - B_{n+1}(b)]}{n\,(n+1)\,x^n},
          \qquad a = -\tfrac12,\ b = 0,

and below it from log-gamma. These coefficients and the switch point are the one source of this series: the torch
twin of the exact rectifier (:mod:`radam.functional`) and the fused kernel (:mod:`radam.fused`) read them from here.
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy.special import bernoulli, gammaln

__all__ = ["LOG_GAMMA_RATIO_COEFFS", "ASYMPTOTIC_FROM", "log_q", "log_sqrt_x_gamma_ratio"]


def _bernoulli_polynomial(n: int, x: float) -> float:
    r"""The Bernoulli polynomial :math:`B_n(x) = \sum_k \binom{n}{k} B_k x^{n-k}`."""
    numbers = bernoulli(n)
    return float(sum(comb(n, k) * numbers[k] * x ** (n - k) for k in range(n + 1)))


LOG_GAMMA_RATIO_TERMS = 12
#: Coefficients :math:`c_1, \dots, c_{12}` of :math:`\log(\sqrt{x}\,\Gamma(x-\tfrac12)/\Gamma(x)) = \sum_n c_n x^{-n}`.
LOG_GAMMA_RATIO_COEFFS = np.array(
    [
        (-1) ** (n + 1) * (_bernoulli_polynomial(n + 1, -0.5) - _bernoulli_polynomial(n + 1, 0.0)) / (n * (n + 1))
        for n in range(1, LOG_GAMMA_RATIO_TERMS + 1)
    ]
)
#: The :math:`x = \rho/2` from which the series is used (its truncation error there is about 1e-13, relative).
ASYMPTOTIC_FROM = 10.0


def log_q(rho: np.ndarray) -> np.ndarray:
    """log of q = (rho/2 - 1) Gamma((rho-1)/2)^2 / Gamma(rho/2)^2, accurate even when q is within 1e-7 of 1."""
    x = rho / 2.0
    direct = np.log(np.maximum(x - 1.0, 1e-300)) + 2.0 * (gammaln(np.maximum(x - 0.5, 1e-300)) - gammaln(x))
    inv_x = 1.0 / np.maximum(x, ASYMPTOTIC_FROM)
    series = np.polynomial.polynomial.polyval(inv_x, np.concatenate([[0.0], LOG_GAMMA_RATIO_COEFFS]))
    asymptotic = np.log1p(-inv_x) + 2.0 * series
    return np.where(x >= ASYMPTOTIC_FROM, asymptotic, direct)


def log_sqrt_x_gamma_ratio(x: np.ndarray) -> np.ndarray:
    """log( sqrt(x) Gamma(x - 1/2) / Gamma(x) ) for x > 1/2, with full relative precision for large x."""
    direct = 0.5 * np.log(x) + gammaln(np.maximum(x - 0.5, 1e-300)) - gammaln(x)
    inv_x = 1.0 / np.maximum(x, ASYMPTOTIC_FROM)
    series = np.polynomial.polynomial.polyval(inv_x, np.concatenate([[0.0], LOG_GAMMA_RATIO_COEFFS]))
    return np.where(x >= ASYMPTOTIC_FROM, series, direct)
