"""The quantities of the RAdam paper's analysis, as vectorised numpy functions.

Notation follows Liu et al. (2020), "On the Variance of the Adaptive Learning Rate and Beyond":

* ``beta2`` is Adam's second-moment decay rate, ``t = 1, 2, ...`` the step count;
* ``rho_t`` is the length of the simple moving average (SMA) whose centre of mass matches that of Adam's
  exponential moving average (EMA) of squared gradients after ``t`` steps; it plays the role of the degrees of
  freedom of the scaled inverse chi-square distribution of the squared adaptive learning rate;
* ``r_t`` is the rectification term that multiplies Adam's adaptive step once ``rho_t`` is large enough.

One file per concept (the book's chapters 2 to 4 use them); every name below is also ``radam.theory.<name>``:

* ``radam.theory.ema``: the EMA treated as an SMA: ``rho_inf``, ``rho_t``, the EMA weights, centres of mass, the SMA
  length by root finding, Kish's effective sample size;
* ``radam.theory.psi``: the adaptive learning rate ``psi``, the scaled inverse chi-square law of its square, its exact
  mean and variance and the paper's first-order approximation;
* ``radam.theory.gamma_ratio``: the ratio of gamma functions in those moments, with its asymptotic series (the one
  source of the series' coefficients, which the torch and Triton versions of the exact rectifier read);
* ``radam.theory.monte_carlo``: ``Var[psi]`` by sampling, with its standard error;
* ``radam.theory.ema_psi``: the exact moments of ``psi`` for the EMA itself, without the SMA approximation;
* ``radam.theory.rectifier``: the rectification terms ``r_t`` and ``r_t_exact`` and RAdam's first adaptive step;
* ``radam.theory.simulation``: the streaming simulation of the paper's Figure 9.

RAdam read as a warmup schedule, the untuned warmups and the effective warmup period live in :mod:`radam.schedules`,
the package's one warmup API.

Unless a docstring says otherwise, every function accepts scalars or numpy arrays (broadcast against each other)
and returns numpy float64 values.
No function returns ``nan`` or ``None``: where a formula is undefined (below a threshold) the function says what it
returns instead, in its docstring.
"""

from __future__ import annotations

from radam.theory.ema import (
    ema_centre_of_mass,
    ema_weights,
    kish_effective_sample_size,
    kish_effective_sample_size_of_weights,
    rho_inf,
    rho_t,
    sma_centre_of_mass,
    sma_length,
    sma_length_numeric,
)
from radam.theory.ema_psi import ema_psi_moments, weighted_chi2_psi_moments

# The names under which radam.functional and radam.fused read the series (radam.theory.gamma_ratio is its home)
from radam.theory.gamma_ratio import ASYMPTOTIC_FROM as _ASYMPTOTIC_FROM  # noqa: F401
from radam.theory.gamma_ratio import LOG_GAMMA_RATIO_COEFFS as _LOG_GAMMA_RATIO_COEFFS  # noqa: F401
from radam.theory.gamma_ratio import log_q as _log_q  # noqa: F401
from radam.theory.monte_carlo import MonteCarloEstimate, variance_psi_monte_carlo
from radam.theory.psi import (
    mean_psi_exact,
    mean_psi_squared,
    psi,
    psi_squared,
    sample_psi,
    scaled_inv_chi2,
    variance_psi_approx,
    variance_psi_exact,
    variance_psi_squared,
)
from radam.theory.rectifier import first_adaptive_step, r_t, r_t_exact
from radam.theory.simulation import AdaptiveLRVariance, simulate_adaptive_lr_variance

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
