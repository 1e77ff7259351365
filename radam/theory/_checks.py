"""Argument checks shared by the theory functions: each names the argument and the range it must lie in."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["check_beta2", "check_step", "check_dof", "check_sigma"]


def check_beta2(beta2: ArrayLike) -> np.ndarray:
    """``beta2`` as float64, every value in the open interval (0, 1) (``ValueError`` otherwise, nan included)."""
    beta2 = np.asarray(beta2, dtype=np.float64)
    if not np.all((beta2 > 0.0) & (beta2 < 1.0)):  # written so that nan fails too
        raise ValueError(f"beta2 must lie in the open interval (0, 1), got {beta2}")
    return beta2


def check_step(t: ArrayLike) -> np.ndarray:
    """The step count ``t`` as float64, every value finite and at least 1 (``ValueError`` otherwise)."""
    t = np.asarray(t, dtype=np.float64)
    if not np.all((t >= 1.0) & np.isfinite(t)):
        raise ValueError(f"the step count t is a finite number starting at 1, got {t}")
    return t


def check_dof(rho: ArrayLike, minimum: float) -> np.ndarray:
    """The degrees of freedom ``rho`` as float64, every value finite and above ``minimum`` (ValueError otherwise)."""
    rho = np.asarray(rho, dtype=np.float64)
    if not np.all((rho > minimum) & np.isfinite(rho)):  # written so that nan fails too
        raise ValueError(f"the degrees of freedom rho must be a finite number above {minimum:g} here, got {rho}")
    return rho


def check_sigma(sigma: ArrayLike) -> np.ndarray:
    """The gradient scale ``sigma`` as float64, every value positive and finite (``ValueError`` otherwise)."""
    sigma = np.asarray(sigma, dtype=np.float64)
    if not np.all((sigma > 0.0) & np.isfinite(sigma)):
        raise ValueError(f"the gradient scale sigma must be a positive finite number, got {sigma}")
    return sigma
