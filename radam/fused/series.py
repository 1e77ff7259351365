r"""How the fused kernel computes the exact variance of :math:`\psi` with only :math:`+,-,\times,/`: the power series
of :math:`\log q`, its constants, and the kernel's recipe in numpy (see :mod:`radam.fused` for the derivation).

The kernel (``radam.fused.kernel``) reads :data:`N_SERIES`, :data:`SERIES_FROM` and :data:`EXPM1_TERMS` from here
and the coefficients :func:`radam.fused.log_q_series` from the device; :func:`variance_psi_by_shifting` performs
the same operations in numpy, so that its accuracy can be checked against :func:`radam.theory.variance_psi_exact`
on any machine.
"""

from __future__ import annotations

import numpy as np

__all__ = ["EXPM1_TERMS", "N_SERIES", "SERIES_FROM", "log_q_series", "variance_psi_by_shifting"]

N_SERIES = 16
r"""Coefficients of the power series of :math:`\log q(y)` in :math:`1/y`."""
SERIES_FROM = 10.0
r"""The series is used from :math:`y = 10`; a smaller :math:`x = \rho/2` is first shifted up to :math:`y \ge 10`."""
EXPM1_TERMS = 8
r"""Terms of Taylor's series of :math:`\mathrm{expm1}` (:math:`|\log q(y)| < 0.03` there: 8 terms reach 1e-19)."""


def log_q_series(n_terms: int = N_SERIES) -> np.ndarray:
    r"""Coefficients :math:`d_1, \dots, d_N` of :math:`\log q(y) = \sum_{n=1}^N d_n y^{-n}`, used for :math:`y \ge 10`.

    .. math:: \log q(y) = \log\Bigl(1 - \frac1y\Bigr) + 2\Bigl(\log\frac{\Gamma(y-\frac12)}{\Gamma(y)}
              + \frac12 \log y\Bigr) = \sum_{n \ge 1} \Bigl(-\frac1n + 2 c_n\Bigr) y^{-n},

    with :math:`c_n` the Bernoulli-polynomial coefficients of the large-:math:`y` expansion of the log-gamma ratio
    that :mod:`radam.theory` uses for the same quantity. At :math:`y \ge 10` sixteen terms give about 1e-16.
    """
    from radam.theory.gamma_ratio import LOG_GAMMA_RATIO_COEFFS

    gamma_terms = np.zeros(n_terms)
    count = min(n_terms, len(LOG_GAMMA_RATIO_COEFFS))
    gamma_terms[:count] = LOG_GAMMA_RATIO_COEFFS[:count]
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    return -1.0 / n + 2.0 * gamma_terms


def variance_psi_by_shifting(rho: np.ndarray | float) -> np.ndarray:
    r""":math:`\operatorname{Var}[\psi](\rho)` (:math:`\sigma = 1`) as the fused kernel computes it, in float64 numpy:

    .. math::
       \operatorname{Var}[\psi](\rho) = \frac{\rho}{\rho - 2}\bigl((1 - F) - F\,\mathrm{expm1}(\log q(y))\bigr),
       \quad F = \frac{(x-1) P^2}{y-1}, \quad P = \prod_{k=0}^{s-1} \frac{x+k}{x+k-\frac12},
       \quad y = x + s \ge 10, \quad x = \frac{\rho}{2},

    with :math:`\log q(y)` the series of :func:`radam.fused.log_q_series` (Horner's scheme) and
    :math:`\mathrm{expm1}` Taylor's series of :data:`EXPM1_TERMS` terms: no :math:`\log\Gamma`, which a GPU
    kernel lacks in float64. For :math:`\rho > 2`.
    """
    rho = np.asarray(rho, dtype=np.float64)
    x = rho / 2
    y, product = x.copy(), np.ones_like(x)
    while np.any(y < SERIES_FROM):  # Gamma(z + 1) = z Gamma(z), one step of x at a time
        small = y < SERIES_FROM
        product = np.where(small, product * y / (y - 0.5), product)
        y = np.where(small, y + 1.0, y)
    u = 1.0 / y
    log_q_y = np.zeros_like(x)
    for coefficient in log_q_series()[::-1]:  # Horner in u = 1/y, from the highest coefficient down
        log_q_y = (log_q_y + coefficient) * u
    expm1 = np.zeros_like(x)
    for k in range(EXPM1_TERMS, 0, -1):
        expm1 = (expm1 + 1.0) * log_q_y / k
    f = (x - 1.0) * product**2 / (y - 1.0)
    return rho / (rho - 2.0) * ((1.0 - f) - f * expm1)
