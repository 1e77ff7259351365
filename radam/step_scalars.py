r"""The scalars of one RAdam step and the checks of its options: the one source every path uses.

A step :math:`t` needs a handful of numbers that do not depend on the tensors: the bias corrections
:math:`1-\beta_1^t` and :math:`1-\beta_2^t`, the length of the simple moving average that :math:`v_t` stands for,

.. math::

   \rho_\infty = \frac{2}{1-\beta_2} - 1, \qquad \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1-\beta_2^t},

the test :math:`\rho_t > \tau` (a rectified adaptive step, else a degenerate one) and the rectifier, the paper's or
the exact one (chapter 4 of the book),

.. math::

   r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\,\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\,\rho_t}}
   \quad\text{(paper)}, \qquad
   r_t = \sqrt{\frac{\operatorname{Var}[\psi]\,|_{\rho_\infty}}{\operatorname{Var}[\psi]\,|_{\rho_t}}}
   \quad\text{(exact)}.

:func:`host_scalars` computes them from a step count read back to the host, with Python floats, in torch's order of
operations (so the default path is ``torch.optim.RAdam`` bit for bit); :func:`device_scalars` computes them as
float64 tensors on the step's device, with the same formulas, for the capturable paths. The fused Triton kernel
computes them itself, from the same formulas, and takes :func:`variance_at_rho_inf` from here.

:func:`check_variant_options` is the one rule set for the options RAdam adds to torch's; every path (the optimizer,
the functional step, the fused step) calls it.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, NamedTuple

import numpy as np
import torch

from radam import theory
from radam._torch_compat import _get_capturable_supported_devices
from radam.theory import gamma_ratio

__all__ = [
    "DEGENERATE_MODES",
    "RECTIFIERS",
    "StepScalars",
    "check_capturable_devices",
    "check_dense_gradients",
    "check_variant_options",
    "device_scalars",
    "exact_rectifier",
    "host_scalars",
    "paper_rectifier",
    "rectifier_value",
    "rho_inf",
    "rho_t",
    "store_python_scalars",
    "variance_at_rho_inf",
    "variance_psi_tensor",
]

#: Allowed values of the ``degenerate`` option: what happens while :math:`\rho_t` is at or below the threshold.
DEGENERATE_MODES = ("sgd", "skip")
#: Allowed values of the ``rectifier`` option: which formula gives :math:`r_t`.
RECTIFIERS = ("paper", "exact")
#: Where each rectifier's formula starts to be real and finite: the threshold must be at least this.
_LOWEST_THRESHOLD = {"paper": 4.0, "exact": 2.0}


def check_variant_options(degenerate: Any, threshold: Any, rectifier: Any, amsgrad: Any) -> None:
    r"""Raise ``ValueError`` naming the option and its allowed values if a variant option is invalid.

    ``degenerate`` must be one of ``DEGENERATE_MODES``, ``rectifier`` one of ``RECTIFIERS``, ``amsgrad`` a bool
    (Python's or numpy's), and ``threshold`` a real number (any ``numbers.Real``, numpy scalars included; not a
    bool) with :math:`\tau \ge 4` for the paper's rectifier and :math:`\tau \ge 2` for the exact one. A step is
    adaptive only where :math:`\rho_t > \tau`, strictly, so these are the lowest thresholds that keep :math:`r_t`
    real and positive: the paper's formula is real for :math:`\rho_t > 4` (and 0 at 4), the exact variance of
    :math:`\psi` finite for :math:`\rho_t > 2` (and infinite at 2).
    """
    if not isinstance(degenerate, str) or degenerate not in DEGENERATE_MODES:
        raise ValueError(f"Invalid degenerate option: {degenerate!r}; allowed values are {DEGENERATE_MODES}")
    if not isinstance(rectifier, str) or rectifier not in RECTIFIERS:
        raise ValueError(f"Invalid rectifier option: {rectifier!r}; allowed values are {RECTIFIERS}")
    if not isinstance(amsgrad, (bool, np.bool_)):
        raise ValueError(f"Invalid amsgrad option: {amsgrad!r}; allowed values are (False, True)")
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real) or math.isnan(threshold):
        raise ValueError(f"Invalid threshold option: {threshold!r}; it must be a real number")
    lowest = _LOWEST_THRESHOLD[rectifier]
    if not threshold >= lowest:
        reason = (
            "the paper's rectifier is real only for rho_t > 4"
            if rectifier == "paper"
            else "the exact variance of psi is finite only for rho > 2"
        )
        raise ValueError(
            f"Invalid threshold option: {threshold} with rectifier={rectifier!r}; it must be >= {lowest:g} "
            f"(a step is adaptive where rho_t > threshold, and {reason})"
        )


def store_python_scalars(group: dict[str, Any]) -> None:
    """Store a param group's valid ``threshold`` as a Python float and ``amsgrad`` as a Python bool, in place.

    A numpy scalar set on a group (``group["threshold"] = np.float64(4.5)``) would otherwise reach the state dict,
    which ``torch.load(..., weights_only=True)`` then refuses. Call after :func:`check_variant_options`.
    """
    if type(group["threshold"]) is not float:
        group["threshold"] = float(group["threshold"])
    if type(group["amsgrad"]) is not bool:
        group["amsgrad"] = bool(group["amsgrad"])


def check_dense_gradients(grads: Any) -> None:
    """``RuntimeError`` if a gradient is sparse (torch's message): no path of RAdam steps sparse gradients."""
    for grad in grads:
        if grad is not None and grad.is_sparse:
            raise RuntimeError("RAdam does not support sparse gradients")


def check_capturable_devices(params: list[torch.Tensor], state_steps: list[torch.Tensor], xla: bool) -> None:
    """With ``capturable=True`` every parameter and its step must sit on the same device of a capturable kind.

    ``xla``: whether XLA counts as capturable (the single-tensor path: yes; the foreach path: no, as in torch).
    Unlike ``torch.optim.RAdam`` this also accepts the CPU: the capturable arithmetic (no host reads, ``torch.where``
    in place of Python branches) is correct on any device, and on the CPU it lets ``torch.compile`` and the tests
    exercise it.
    """
    supported = _get_capturable_supported_devices(supports_xla=xla) + ["cpu"]
    for p, step in zip(params, state_steps):
        if not (p.device.type == step.device.type and p.device.type in supported):
            raise AssertionError(
                f"If capturable=True, params and state_steps must be on supported devices: {supported}."
            )


# ---------------------------------------------------------------------------------------------------------------
# rho_t and the rectifiers
# ---------------------------------------------------------------------------------------------------------------


def rho_inf(beta2: float) -> float:
    r""":math:`\rho_\infty = 2/(1-\beta_2) - 1`: the longest SMA that an EMA with rate :math:`\beta_2` stands for."""
    return 2 / (1 - beta2) - 1


def rho_t(step: Any, beta2: float, bias_correction2: Any) -> Any:
    r""":math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`: the SMA length that :math:`v_t` stands for at step t.

    Written exactly as torch writes it (``bias_correction2`` is :math:`1-\beta_2^t`), for Python floats or float64
    tensors alike, so that every path takes the same branch as ``torch.optim.RAdam``'s default path.
    """
    return rho_inf(beta2) - 2 * step * (beta2**step) / bias_correction2


def paper_rectifier(rho_t: Any, rho_inf: float) -> Any:
    r"""The paper's :math:`r_t = \sqrt{(\rho_t-4)(\rho_t-2)\rho_\infty / ((\rho_\infty-4)(\rho_\infty-2)\rho_t)}`."""
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


def exact_rectifier(rho_t: Any, rho_inf: float) -> Any:
    r"""The exact :math:`r_t = \sqrt{\operatorname{Var}[\psi]|_{\rho_\infty} / \operatorname{Var}[\psi]|_{\rho_t}}`.

    From the :math:`\rho_t` the step was tested with, so that an adaptive step never gets :math:`r_t = 0`. A Python
    float goes to ``radam.theory.variance_psi_exact`` (cached); a tensor to :func:`variance_psi_tensor`, on the
    tensor's device.
    """
    if isinstance(rho_t, torch.Tensor):
        return torch.sqrt(variance_psi_tensor(torch.full_like(rho_t, rho_inf)) / variance_psi_tensor(rho_t))
    return _exact_rectifier_float(float(rho_t), rho_inf)


@functools.lru_cache(maxsize=256)  # the tensors of a group share their step: one theory call per (rho_t, rho_inf)
def _exact_rectifier_float(rho_t: float, rho_inf: float) -> float:
    return math.sqrt(float(theory.variance_psi_exact(rho_inf)) / float(theory.variance_psi_exact(rho_t)))


def rectifier_value(rho_t: Any, rho_inf: float, rectifier: str) -> Any:
    r""":math:`r_t` for an adaptive step (:math:`\rho_t` above the threshold): :func:`paper_rectifier` or
    :func:`exact_rectifier`, as ``rectifier`` says."""
    return paper_rectifier(rho_t, rho_inf) if rectifier == "paper" else exact_rectifier(rho_t, rho_inf)


@functools.lru_cache(maxsize=64)
def variance_at_rho_inf(beta2: float, threshold: float) -> float:
    r""":math:`\operatorname{Var}[\psi]|_{\rho_\infty}`, the numerator of the exact rectifier (the fused kernel
    computes the denominator itself); 1.0 where no step can be adaptive (:math:`\rho_\infty \le \tau`)."""
    infinity = rho_inf(beta2)
    return float(theory.variance_psi_exact(infinity)) if infinity > max(threshold, 2.0) else 1.0


# The coefficients of radam.theory's asymptotic series for log q, as Python floats (traceable by torch.compile)
_LOG_Q_COEFFS = tuple(float(c) for c in gamma_ratio.LOG_GAMMA_RATIO_COEFFS)
_LOG_Q_ASYMPTOTIC_FROM = float(gamma_ratio.ASYMPTOTIC_FROM)


def _log_q_tensor(rho: torch.Tensor) -> torch.Tensor:
    r""":math:`\log q` with :math:`q = (x-1)\,\Gamma(x-\tfrac12)^2/\Gamma(x)^2`, :math:`x = \rho/2`, in torch:
    ``lgamma`` below :math:`x = 10`, radam.theory's asymptotic series in :math:`1/x` above."""
    x = rho / 2.0
    direct = torch.log(torch.clamp(x - 1.0, min=1e-300)) + 2.0 * (
        torch.lgamma(torch.clamp(x - 0.5, min=1e-300)) - torch.lgamma(x)
    )
    inv_x = 1.0 / torch.clamp(x, min=_LOG_Q_ASYMPTOTIC_FROM)
    series = torch.zeros_like(inv_x)
    for coeff in reversed(_LOG_Q_COEFFS):  # Horner: sum_n c_n inv_x**n
        series = (series + coeff) * inv_x
    asymptotic = torch.log1p(-inv_x) + 2.0 * series
    return torch.where(x >= _LOG_Q_ASYMPTOTIC_FROM, asymptotic, direct)


def variance_psi_tensor(rho: torch.Tensor) -> torch.Tensor:
    r"""Torch twin of ``radam.theory.variance_psi_exact`` (:math:`\sigma = 1`):
    :math:`\operatorname{Var}[\psi] = \frac{\rho}{\rho-2}\,(1-q)`.

    Torch operations only (no ``.item()``, no numpy), so it runs on the tensor's device under CUDA graphs and
    ``torch.compile(fullgraph=True)``; matches the theory function to about 1e-12 in float64.
    """
    return rho / (rho - 2.0) * -torch.expm1(_log_q_tensor(rho))


# ---------------------------------------------------------------------------------------------------------------
# The scalars of one step, on the host or on the device
# ---------------------------------------------------------------------------------------------------------------


class StepScalars(NamedTuple):
    """The scalars of step t. Host path: Python floats and a bool. Capturable: tensors on the step's device."""

    bias_correction1: Any  # 1 - beta1^t
    bias_correction2: Any  # 1 - beta2^t
    adaptive: Any  # rho_t > threshold: a rectified adaptive step (else a degenerate one)
    rect: Any  # r_t on an adaptive step, 0 otherwise


def host_scalars(step: Any, beta1: float, beta2: float, threshold: float, rectifier: str) -> StepScalars:
    r"""The scalars of step t from a step count read back to the host: :math:`1-\beta_1^t`, :math:`1-\beta_2^t`,
    the test :math:`\rho_t > \tau` and :math:`r_t` (0 on a degenerate step); torch's arithmetic, operation for
    operation."""
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    rho = rho_t(step, beta2, bias_correction2)
    adaptive = rho > threshold
    rect = rectifier_value(rho, rho_inf(beta2), rectifier) if adaptive else 0.0  # r_t is real only above threshold
    return StepScalars(bias_correction1, bias_correction2, adaptive, rect)


def device_scalars(
    step: torch.Tensor, beta1: float, beta2: float, threshold: float, rectifier: str, dtype: torch.dtype
) -> StepScalars:
    r"""The scalars of step t as tensors on the step's device (no host read), for the capturable paths.

    Computed in float64 from ``step.to(torch.float64)`` with the same formulas as :func:`host_scalars` -- in
    float32, :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)` cancels catastrophically and picks the wrong
    branch for :math:`\beta_2 \ge 0.9995` -- then the bias corrections and :math:`r_t` are cast to ``dtype`` (the
    parameter's, where they are applied). ``adaptive`` is a bool tensor; ``step`` may hold several step counts.
    """
    t = step.to(torch.float64)
    bias_correction1 = 1 - beta1**t
    bias_correction2 = 1 - beta2**t
    rho = rho_t(t, beta2, bias_correction2)
    adaptive = rho > threshold
    infinity = rho_inf(beta2)
    if infinity > threshold:
        # r_t where adaptive, 0 elsewhere; evaluated at rho_inf where not adaptive (r = 1 there), so the unused
        # branch of torch.where stays finite and cannot put a nan into the gradients of a differentiable step
        rect = torch.where(adaptive, rectifier_value(torch.where(adaptive, rho, infinity), infinity, rectifier), 0.0)
    else:  # rho_t < rho_inf <= threshold: never adaptive (beta2 = 0 included)
        rect = torch.zeros_like(t)
    return StepScalars(bias_correction1.to(dtype), bias_correction2.to(dtype), adaptive, rect.to(dtype))
