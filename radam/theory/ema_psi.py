r"""The exact mean and variance of psi for the EMA itself, with no scaled-inverse-chi-square assumption.

The truth that the EMA-as-SMA approximation of :mod:`radam.theory.ema` is measured against.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from radam.theory.ema import ema_weights

__all__ = ["weighted_chi2_psi_moments", "ema_psi_moments"]


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
    # S = c S' with c = sum(w) and S' the sum with normalised weights, so psi = psi' / sqrt(c): integrate for psi'
    # and rescale. The integrands change on the scales 1/(2 w_i), which may span hundreds of orders of magnitude, so
    # both integrals are taken over s = log u (u = e^s, du = e^s ds), split at those scales.
    total = float(np.sum(weights))
    log_two_w = np.log(2.0 * weights / total)

    def log_laplace(s: float) -> float:  # log E[exp(-u S')] at u = e^s, without overflow for any s
        return -0.5 * float(np.sum(np.logaddexp(0.0, log_two_w + s)))

    # In s the integrands are e^s L(e^s) and e^(s/2) L(e^s) / sqrt(pi): below `lo` they are under e^(s/2) and
    # contribute under 1e-17 of the total; above `hi` they fall at least like e^(-s/2) (three or more weights), with
    # the same bound. Split points: the log scales of the weights (at most 16 of them).
    log_scales = -log_two_w
    lo, hi = float(log_scales.min()) - 80.0, float(log_scales.max()) + 80.0
    inner = np.unique(np.quantile(log_scales, np.linspace(0.0, 1.0, min(16, log_scales.size))))
    edges = np.concatenate([[lo], inner, [hi]])
    opts = dict(epsabs=0.0, epsrel=1e-13, limit=200)

    def integral(power: float) -> float:  # int e^(power s) L(e^s) ds
        return sum(
            integrate.quad(lambda s: np.exp(power * s + log_laplace(s)), a, b, **opts)[0]
            for a, b in zip(edges, edges[1:])
        )

    # E[psi'] = 2/sqrt(pi) int_0^inf L(v^2) dv = 1/sqrt(pi) int_0^inf L(u) u^(-1/2) du; E[psi'^2] = int_0^inf L(u) du
    mean = integral(0.5) / np.sqrt(np.pi)
    second = integral(1.0)
    # Var = E[psi'^2] - E[psi']^2 >= 0 (Jensen); a difference below the integrals' precision is rounding
    return float(mean / np.sqrt(total)), float(max(second - mean**2, 0.0) / total)


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
