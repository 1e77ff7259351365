r"""The power series of :math:`\log q` that the fused kernel uses for the exact rectifier (see :mod:`radam.fused`)."""

from __future__ import annotations

import numpy as np

__all__ = ["log_q_series"]


def log_q_series(n_terms: int = 16) -> np.ndarray:
    r"""Coefficients :math:`d_1, \dots, d_N` of :math:`\log q(y) = \sum_{n=1}^N d_n y^{-n}`, used for :math:`y \ge 10`.

    .. math:: \log q(y) = \log\Bigl(1 - \frac1y\Bigr) + 2\Bigl(\log\frac{\Gamma(y-\frac12)}{\Gamma(y)}
              + \frac12 \log y\Bigr) = \sum_{n \ge 1} \Bigl(-\frac1n + 2 c_n\Bigr) y^{-n},

    with :math:`c_n` the Bernoulli-polynomial coefficients of the large-:math:`y` expansion of the log-gamma ratio
    that :mod:`radam.theory` uses for the same quantity. At :math:`y \ge 10` sixteen terms give about 1e-16.
    """
    from radam.theory import _LOG_GAMMA_RATIO_COEFFS

    gamma_terms = np.zeros(n_terms)
    count = min(n_terms, len(_LOG_GAMMA_RATIO_COEFFS))
    gamma_terms[:count] = _LOG_GAMMA_RATIO_COEFFS[:count]
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    return -1.0 / n + 2.0 * gamma_terms
